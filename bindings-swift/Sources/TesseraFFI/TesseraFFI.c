// Intentionally empty. SwiftPM needs one source file in a C target; the
// declarations are in the generated include/TesseraFFI.h and the code is in
// the Rust library libtessera_ffi, linked through the target's settings.
