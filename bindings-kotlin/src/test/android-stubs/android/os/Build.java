// Compile-time stand-in (see ../../README.md): android.os.Build, API 35.
package android.os;

public class Build {
    public static class VERSION {
        public static final int SDK_INT = 0;
    }

    public static class VERSION_CODES {
        public static final int UPSIDE_DOWN_CAKE = 34;
    }
}
