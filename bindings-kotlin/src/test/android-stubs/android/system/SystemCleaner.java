// Compile-time stand-in (see ../../README.md): android.system.SystemCleaner, API 33.
package android.system;

public final class SystemCleaner {
    private SystemCleaner() {}

    public static java.lang.ref.Cleaner cleaner() {
        throw new UnsupportedOperationException("stub");
    }
}
