// swift-tools-version:5.9
// Tessera for iOS and macOS apps: the UniFFI-generated `Tessera` module over
// the binary target `TesseraFFI` (an XCFramework of the static Rust library
// libtessera_ffi with its C header and module map).
//
// * Development (this file as committed): `bash scripts/xcframework.sh` on
//   macOS writes build/TesseraFFI.xcframework and the Swift source
//   bindings-swift/Sources/Tessera/Tessera.swift (both gitignored); then
//   `swift build` here, or add this folder to Xcode as a local package.
// * Releases: `scripts/swift-release.sh VERSION URL` sets `release` below to
//   the zipped XCFramework's URL and SwiftPM checksum, and tags a commit that
//   also holds the generated Swift source, so that apps depend on the tag:
//   .package(url: "https://…/tessera.git", exact: "VERSION").
//
// This package is for Apple platforms only (an XCFramework does not exist on
// Linux). The Swift tests run on Linux from bindings-swift/, a separate
// package that links the host-built library (bindings-swift/test.sh, which
// also validates this manifest with `swift package dump-package`).
import PackageDescription

// (url, checksum) of a release; nil: the local build/TesseraFFI.xcframework.
let release: (url: String, checksum: String)? = nil

let ffi: Target
if let release {
    ffi = .binaryTarget(name: "TesseraFFI", url: release.url, checksum: release.checksum)
} else {
    ffi = .binaryTarget(name: "TesseraFFI", path: "build/TesseraFFI.xcframework")
}

let package = Package(
    name: "Tessera",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Tessera", targets: ["Tessera"]),
    ],
    targets: [
        ffi,
        .target(
            name: "Tessera",
            dependencies: ["TesseraFFI"],
            path: "bindings-swift/Sources/Tessera"
        ),
    ]
)
