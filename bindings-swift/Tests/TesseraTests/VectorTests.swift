import Foundation
import Tessera
import XCTest

/// Every row of vectors/otp.json (RFC 4226, 6238, 6287 answers).
final class VectorTests: XCTestCase {
    func testHotpVectors() throws {
        let rows = try Vectors.rows("hotp")
        XCTAssertFalse(rows.isEmpty)
        for (i, v) in rows.enumerated() {
            let code = try hotp(
                secret: hex(v.string("secret_hex")), counter: v.number("counter"),
                digits: UInt8(v.number("digits")), algorithm: algorithm(v.string("algorithm")))
            XCTAssertEqual(code, v.string("code"), "hotp[\(i)]")
        }
    }

    func testTotpVectors() throws {
        let rows = try Vectors.rows("totp")
        XCTAssertFalse(rows.isEmpty)
        for (i, v) in rows.enumerated() {
            let code = try totp(
                secret: hex(v.string("secret_hex")), unixTime: v.number("time"), period: v.number("period"),
                digits: UInt8(v.number("digits")), algorithm: algorithm(v.string("algorithm")))
            XCTAssertEqual(code, v.string("code"), "totp[\(i)] \(v.string("algorithm")) time=\(v.number("time"))")
        }
    }

    func testOcraVectors() throws {
        let rows = try Vectors.rows("ocra")
        XCTAssertFalse(rows.isEmpty)
        for (i, v) in rows.enumerated() {
            let params = OcraParams(
                counter: v.uint64("counter"),
                question: v["question"] as? String,
                password: v["password"] as? String,
                session: (v["session_hex"] as? String).map(hex),
                unixTime: v.uint64("time"))
            let code = try ocra(suite: v.string("suite"), key: hex(v.string("key_hex")), params: params)
            XCTAssertEqual(code, v.string("code"), "ocra[\(i)] \(v.string("suite"))")
        }
    }
}
