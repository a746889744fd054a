// The Tessera Android library (AAR) as a standalone Gradle build. Build it
// with scripts/android-build.sh, which first writes what this module does not
// commit: src/main/jniLibs/<abi>/libtessera_ffi.so (cargo-ndk) and
// src/main/kotlin/dev/tessera/tessera.kt (uniffi-bindgen, Android variant).
// An app can also include it: includeBuild("path/to/bindings-kotlin/android")
// in its settings, then implementation("dev.tessera:tessera-android").
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "tessera-android"
