// swift-tools-version:6.0
// Tessera for Swift: the UniFFI-generated `Tessera` module over the C module
// `TesseraFFI` (header + module map) and the Rust library `libtessera_ffi`.
//
// The generated files (Sources/Tessera/Tessera.swift,
// Sources/TesseraFFI/include/TesseraFFI.h and module.modulemap) are not in
// git: `bindings-swift/test.sh` builds the Rust library and generates them.
// The linker finds libtessera_ffi through `-Xlinker -L<dir>` on the swift
// command line (see test.sh).
import PackageDescription

let package = Package(
    name: "Tessera",
    products: [
        .library(name: "Tessera", targets: ["Tessera"]),
    ],
    targets: [
        .target(
            name: "TesseraFFI",
            path: "Sources/TesseraFFI",
            linkerSettings: [.linkedLibrary("tessera_ffi")]
        ),
        .target(
            name: "Tessera",
            dependencies: ["TesseraFFI"],
            path: "Sources/Tessera"
        ),
        .testTarget(
            name: "TesseraTests",
            dependencies: ["Tessera"],
            path: "Tests/TesseraTests"
        ),
    ]
)
