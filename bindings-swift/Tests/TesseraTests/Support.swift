import Foundation
import Tessera
import XCTest

/// Bytes of a hex string.
func hex(_ s: String) -> Data {
    precondition(s.count % 2 == 0, "odd hex length")
    var out = Data(capacity: s.count / 2)
    var i = s.startIndex
    while i < s.endIndex {
        let j = s.index(i, offsetBy: 2)
        out.append(UInt8(s[i..<j], radix: 16)!)
        i = j
    }
    return out
}

func algorithm(_ name: String) -> OtpAlgorithm {
    switch name.lowercased() {
    case "sha1": return .sha1
    case "sha256": return .sha256
    case "sha512": return .sha512
    default: fatalError("unknown algorithm \(name)")
    }
}

typealias Row = [String: Any]

/// The shared vectors (vectors/otp.json at the repository root; override with
/// TESSERA_VECTORS).
enum Vectors {
    static var url: URL {
        if let p = ProcessInfo.processInfo.environment["TESSERA_VECTORS"], !p.isEmpty {
            return URL(fileURLWithPath: p)
        }
        // Tests/TesseraTests/Support.swift -> repository root
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("vectors/otp.json")
    }

    /// vectors/link.json: one flat object (override with TESSERA_LINK_VECTORS;
    /// default: next to otp.json).
    static var linkURL: URL {
        if let p = ProcessInfo.processInfo.environment["TESSERA_LINK_VECTORS"], !p.isEmpty {
            return URL(fileURLWithPath: p)
        }
        return url.deletingLastPathComponent().appendingPathComponent("link.json")
    }

    /// The link vector object, read with JSONSerialization.
    static func link() throws -> Row {
        guard let v = try JSONSerialization.jsonObject(with: Data(contentsOf: linkURL)) as? Row else {
            throw NSError(domain: "vectors", code: 2, userInfo: [NSLocalizedDescriptionKey: "\(linkURL.path) is not a JSON object"])
        }
        return v
    }

    /// The rows of one array ("hotp", "totp", "ocra"), read with Foundation's
    /// JSONSerialization (re-read per call: `[String: Any]` is not Sendable).
    static func rows(_ key: String) throws -> [Row] {
        let document = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
        guard let rows = document?[key] as? [Row] else {
            throw NSError(domain: "vectors", code: 1, userInfo: [NSLocalizedDescriptionKey: "no '\(key)' array in \(url.path)"])
        }
        return rows
    }
}

extension Dictionary where Key == String, Value == Any {
    func string(_ k: String) -> String {
        guard let v = self[k] as? String else { fatalError("vector field '\(k)' missing") }
        return v
    }

    func uint64(_ k: String) -> UInt64? {
        switch self[k] {
        case nil, is NSNull: return nil
        case let n as NSNumber: return n.uint64Value
        case let i as Int: return UInt64(i)
        default: fatalError("vector field '\(k)' is not a number")
        }
    }

    func bool(_ k: String) -> Bool {
        switch self[k] {
        case let b as Bool: return b
        case let n as NSNumber: return n.boolValue
        default: fatalError("vector field '\(k)' is not a boolean")
        }
    }

    func number(_ k: String) -> UInt64 {
        guard let v = uint64(k) else { fatalError("vector field '\(k)' missing") }
        return v
    }
}

/// Runs `body`, which must throw `TesseraError.Failure`, and returns its code
/// and detail (nil after recording an XCTest failure).
func failure<T>(_ body: () throws -> T, file: StaticString = #filePath, line: UInt = #line) -> (code: String, detail: String)? {
    do {
        _ = try body()
        XCTFail("expected a TesseraError", file: file, line: line)
    } catch let TesseraError.Failure(code, detail) {
        return (code, detail)
    } catch {
        XCTFail("expected a TesseraError, got \(error)", file: file, line: line)
    }
    return nil
}
