import Foundation
import Tessera
import XCTest

// The golden vectors no scenario op reaches: every row of vectors/otp.json
// (RFC 4226, 6238, 6287, including OCRA) and the fixed bytes of
// vectors/link.json (a portal restored from its secret, a sealed pending link
// reopened and finished), read with Foundation's JSONSerialization.

private func document(_ url: URL) throws -> JSONObject {
    guard let v = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? JSONObject else {
        throw ScenarioFailure("\(url.path) is not a JSON object")
    }
    return v
}

private extension Dictionary where Key == String, Value == Any {
    func string(_ k: String) throws -> String {
        guard let v = self[k] as? String else { throw ScenarioFailure("vector field '\(k)' missing") }
        return v
    }

    func int(_ k: String) throws -> Int64 {
        guard let v = try jsonInt(self[k], k) else { throw ScenarioFailure("vector field '\(k)' missing") }
        return v
    }

    func bytes(_ k: String) throws -> Data { try hexField(self[k], k) }
}

final class OtpVectorTests: XCTestCase {
    let url = vectorsURL("otp.json", env: "TESSERA_VECTORS")

    func rows(_ key: String) throws -> [JSONObject] {
        guard let rows = try document(url)[key] as? [JSONObject], !rows.isEmpty else {
            throw ScenarioFailure("no '\(key)' rows in \(url.path)")
        }
        return rows
    }

    func testHotp() throws {
        for (i, v) in try rows("hotp").enumerated() {
            let code = try hotp(secret: v.bytes("secret_hex"), counter: v.int("counter"), digits: Int32(v.int("digits")),
                                algorithm: algorithm(v["algorithm"] as Any, "algorithm"))
            XCTAssertEqual(code, try v.string("code"), "hotp[\(i)]")
        }
    }

    func testTotp() throws {
        for (i, v) in try rows("totp").enumerated() {
            let code = try totp(secret: v.bytes("secret_hex"), time: date(v.int("time")), periodSeconds: v.int("period"),
                                digits: Int32(v.int("digits")), algorithm: algorithm(v["algorithm"] as Any, "algorithm"))
            let time = try v.int("time")
            XCTAssertEqual(code, try v.string("code"), "totp[\(i)] time \(time)")
        }
    }

    func testOcra() throws {
        for (i, v) in try rows("ocra").enumerated() {
            let params = OcraParams(counter: try jsonInt(v["counter"], "counter"), question: v["question"] as? String,
                                    password: v["password"] as? String, session: try (v["session_hex"]).map { try hexField($0, "session_hex") },
                                    time: try jsonInt(v["time"], "time").map(date))
            let suite = try v.string("suite")
            XCTAssertEqual(try ocra(suite: suite, key: v.bytes("key_hex"), params: params), try v.string("code"), "ocra[\(i)] \(suite)")
        }
    }
}

final class LinkVectorTests: XCTestCase {
    func vectors() throws -> JSONObject { try document(vectorsURL("link.json", env: "TESSERA_LINK_VECTORS")) }

    func testGoldenPendingLinkFinishes() throws {
        let v = try vectors()
        let device = try Device(storageKey: v.bytes("storage_key_hex"))
        let info = try device.scanLinkQr(qrText: v.string("qr_text"), now: date(v.int("scan_time")), pinnedPortalKey: nil)
        XCTAssertEqual(info.portalName, try v.string("portal_name"))
        XCTAssertEqual(info.portalFingerprint, try v.string("portal_fingerprint"))
        XCTAssertEqual(info.expiresAt, date(try v.int("expires_at")))
        XCTAssertEqual(info.passcodeRules, PasscodeRules())

        let f = try device.openPendingLink(sealed: v.bytes("pending_sealed_hex")).finish(answer: v.string("answer"))
        XCTAssertEqual(f.checkCode, try v.string("check_code"))
        XCTAssertEqual(f.account, LinkedAccount(
            portalName: try v.string("portal_name"), portalFingerprint: try v.string("portal_fingerprint"),
            account: try v.string("account"), deviceId: try v.string("device_id"), deviceName: try v.string("device_name"),
            linkedAt: date(try v.int("accept_time")), confirmBy: date(try v.int("confirm_by")), biometrics: v["biometrics"] as? Bool ?? false,
            // The golden offer sets no device codes: the defaults (TOTP-SHA256, 6 digits, 30 s).
            deviceCodes: DeviceCodeRules(algorithm: .sha256, digits: 6, periodSeconds: 30)))
        let t = date(try v.int("totp_time"))
        XCTAssertEqual(try device.code(state: f.state, unlock: .passcode(passcode: v.string("passcode")), now: t), try v.string("totp"))
        XCTAssertEqual(try device.code(state: f.state, unlock: .biometric(secret: v.bytes("biometric_secret_hex")), now: t),
                       try v.string("totp"))
    }

    func testPortalFromSecretOpensTheGoldenRequest() throws {
        let v = try vectors()
        let portal = try Portal.fromSecret(secret: v.bytes("portal_secret_hex"), name: v.string("portal_name"))
        XCTAssertEqual(portal.fingerprint(), try v.string("portal_fingerprint"))
        XCTAssertEqual(portal.publicKey(), try v.bytes("portal_public_key_hex"))
        XCTAssertEqual(portal.name(), try v.string("portal_name"))
        let request = try portal.openLinkRequest(request: v.string("request"))
        XCTAssertEqual(request.offerId(), try v.string("offer_id"))
        XCTAssertEqual(request.deviceId(), try v.string("device_id"))
        XCTAssertEqual(request.deviceName(), try v.string("device_name"))
        // Pinned to the golden portal's key, the golden QR scans; pinned to another portal's, it is WRONG_ACCOUNT.
        let device = try Device(storageKey: newStorageKey())
        let scanTime = date(try v.int("scan_time"))
        XCTAssertNoThrow(try device.scanLinkQr(qrText: v.string("qr_text"), now: scanTime, pinnedPortalKey: portal.publicKey()))
        let stranger = try Portal.generate(name: "Stranger").publicKey()
        XCTAssertEqual(failure { try device.scanLinkQr(qrText: v.string("qr_text"), now: scanTime, pinnedPortalKey: stranger) }?.code,
                       .wrongAccount)
    }
}
