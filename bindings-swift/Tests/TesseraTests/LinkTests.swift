import Foundation
import Tessera
import XCTest

// Flow 1 (linking a phone with a single-use QR code) through the Swift
// bindings: the golden bytes of vectors/link.json, then every outcome of a
// full flow with the portal and the device in the same process (they talk
// through strings, as over a network). Times are fixed; only the randomness
// of keys and nonces varies between runs. Same cases as the Kotlin tests.

let linkNow: UInt64 = 1_800_000_000
let linkPasscode = "493817"
let linkAccount = "anna@example.org"
let linkDeviceName = "Anna's Pixel"
/// The default portal policy: exactly 6 digits, biometrics allowed.
let linkRules = PasscodeRules(minLen: 6, maxLen: 6, digitsOnly: true, biometricsAllowed: true)

/// A network text with one character in the middle changed (base64url).
func tamperText(_ s: String) -> String {
    var chars = Array(s)
    let i = chars.count / 2
    chars[i] = chars[i] == "A" ? "B" : "A"
    return String(chars)
}

/// A copy of `b` with one bit flipped at `index`.
func flipBit(_ b: Data, _ index: Int) -> Data {
    var c = Data(b)
    c[c.startIndex + index] ^= 0x01
    return c
}

/// A wrong 6-digit code (differs from `code`).
func otherCode(_ code: String) -> String { code == "000000" ? "000001" : "000000" }

func newPortal() throws -> TesseraPortal { try TesseraPortal.generate(name: "Example Bank") }
func newDevice() throws -> TesseraDevice { try TesseraDevice(storageKey: try newStorageKey()) }

/// Offer → scan → start → open → accept (at now+11) → finish, each step checked.
struct Linked {
    let portal: TesseraPortal
    let device: TesseraDevice
    let qrText: String
    let accept: AcceptResult
    let offer: StoredOffer
    let pending: StoredPendingLink
    let finish: LinkFinishResult
    let biometricSecret: Data?
    let now: UInt64
    var state: Data { finish.state }

    /// Confirm with the right check code at now+20; returns the registry entry.
    func confirm(file: StaticString = #filePath, line: UInt = #line) throws -> StoredDevice {
        let c = try portal.confirmLink(pending: pending, code: finish.checkCode, now: now + 20)
        XCTAssertTrue(c.linked, "confirm refused: \(c.errorCode ?? "")", file: file, line: line)
        return try XCTUnwrap(c.device, file: file, line: line)
    }
}

func linkDevice(_ portal: TesseraPortal, _ device: TesseraDevice, account: String = linkAccount, name: String = linkDeviceName,
                biometrics: Bool = false, now: UInt64 = linkNow) throws -> Linked {
    let created = try portal.createOffer(account: account, ttl: 300, rules: linkRules, now: now)
    let start = try device.startLink(qrText: created.qrText, deviceName: name, passcode: linkPasscode, biometrics: biometrics,
                                     currentState: nil, now: now + 10)
    let request = try portal.openLinkRequest(request: start.request)
    XCTAssertEqual(request.offerId(), created.offer.offerId)
    let accept = try request.accept(portal: portal, offer: created.offer, now: now + 11)
    XCTAssertTrue(accept.accepted, "accept refused: \(accept.errorCode ?? "")")
    let finish = try start.pending.finish(answer: accept.answer)
    return Linked(portal: portal, device: device, qrText: created.qrText, accept: accept, offer: try XCTUnwrap(accept.offer),
                  pending: try XCTUnwrap(accept.pending), finish: finish, biometricSecret: start.biometricSecret, now: now)
}

/// Every field of vectors/link.json (see core/tests/link_vectors.rs).
final class LinkVectorTests: XCTestCase {
    /// The golden pending link, reopened and finished with the golden answer.
    func finished(_ v: Row) throws -> LinkFinishResult {
        let device = try TesseraDevice(storageKey: hex(v.string("storage_key_hex")))
        return try device.openPendingLink(sealed: hex(v.string("pending_sealed_hex"))).finish(answer: v.string("answer"))
    }

    func testScanAtScanTime() throws {
        let v = try Vectors.link()
        let info = try newDevice().scanLinkQr(qrText: v.string("qr_text"), now: v.number("scan_time"))
        XCTAssertEqual(info.portalName, v.string("portal_name"))
        XCTAssertEqual(info.portalFingerprint, v.string("portal_fingerprint"))
        XCTAssertEqual(info.expiresAt, v.number("expires_at"))
        XCTAssertEqual(info.passcodeRules, linkRules)
    }

    func testFinishGivesCheckCodeAndDeviceId() throws {
        let v = try Vectors.link()
        let f = try finished(v)
        XCTAssertEqual(f.checkCode, v.string("check_code"))
        XCTAssertEqual(f.account.deviceId, v.string("device_id"))
        XCTAssertEqual(f.account.account, v.string("account"))
        XCTAssertEqual(f.account.deviceName, v.string("device_name"))
        XCTAssertEqual(f.account.portalName, v.string("portal_name"))
        XCTAssertEqual(f.account.portalFingerprint, v.string("portal_fingerprint"))
        XCTAssertEqual(f.account.linkedAt, v.number("accept_time"))
        XCTAssertEqual(f.account.confirmBy, v.number("confirm_by"))
        XCTAssertEqual(f.account.biometrics, v.bool("biometrics"))
    }

    func testTotpWithPasscodeAndBiometricSecret() throws {
        let v = try Vectors.link()
        let state = try finished(v).state
        let device = try TesseraDevice(storageKey: hex(v.string("storage_key_hex")))
        let t = v.number("totp_time")
        XCTAssertEqual(try device.totp(state: state, unlock: .passcode(passcode: v.string("passcode")), now: t), v.string("totp"))
        XCTAssertEqual(try device.totp(state: state, unlock: .biometric(secret: hex(v.string("biometric_secret_hex"))), now: t),
                       v.string("totp"))
    }

    func testPortalFromSecretOpensTheRequest() throws {
        let v = try Vectors.link()
        let portal = try TesseraPortal.fromSecret(secret: hex(v.string("portal_secret_hex")), name: v.string("portal_name"))
        XCTAssertEqual(portal.fingerprint(), v.string("portal_fingerprint"))
        XCTAssertEqual(portal.name(), v.string("portal_name"))
        let request = try portal.openLinkRequest(request: v.string("request"))
        XCTAssertEqual(request.offerId(), v.string("offer_id"))
        XCTAssertEqual(request.deviceId(), v.string("device_id"))
        XCTAssertEqual(request.deviceName(), v.string("device_name"))
    }
}

/// Every outcome of flow 1, portal and device in one process.
final class LinkFlowTests: XCTestCase {
    let now = linkNow

    func testDefaults() throws {
        // createOffer without ttl lives 300 s; PasscodeRules() is exactly 6 digits; verifier config defaults to SHA1.
        let created = try newPortal().createOffer(account: "anna", rules: PasscodeRules(), now: now)
        XCTAssertEqual(created.offer.expiresAt, now + 300)
        XCTAssertEqual(try newDevice().scanLinkQr(qrText: created.qrText, now: now).passcodeRules, linkRules)
        let cfg = OtpVerifierConfig(secret: Data("12345678901234567890".utf8))
        let code = try totp(secret: cfg.secret, unixTime: 59, period: 30, digits: 6, algorithm: .sha1)
        XCTAssertTrue(try totpVerify(config: cfg, code: code, unixTime: 59, state: OtpVerifierState()).accepted)
    }

    func testSuccess() throws {
        let portal = try newPortal()
        let device = try newDevice()
        let created = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now)
        XCTAssertEqual(created.offer.account, linkAccount)
        XCTAssertEqual(created.offer.expiresAt, now + 300)
        XCTAssertNil(created.offer.usedAt)
        XCTAssertTrue(created.qrText.hasPrefix("TS:"), created.qrText)

        let info = try device.scanLinkQr(qrText: created.qrText, now: now + 5)
        XCTAssertEqual(info.portalName, "Example Bank")
        XCTAssertEqual(info.portalFingerprint, portal.fingerprint())
        XCTAssertEqual(info.expiresAt, now + 300)
        XCTAssertEqual(info.passcodeRules, linkRules)

        let start = try device.startLink(qrText: created.qrText, deviceName: linkDeviceName, passcode: linkPasscode,
                                         biometrics: true, currentState: nil, now: now + 10)
        XCTAssertEqual(try XCTUnwrap(start.biometricSecret).count, 32)
        let request = try portal.openLinkRequest(request: start.request)
        XCTAssertEqual(request.offerId(), created.offer.offerId)
        XCTAssertEqual(request.deviceName(), linkDeviceName)
        XCTAssertEqual(request.deviceId().count, 16)

        let acc = try request.accept(portal: portal, offer: created.offer, now: now + 11)
        XCTAssertTrue(acc.accepted)
        XCTAssertNil(acc.errorCode)
        let usedOffer = try XCTUnwrap(acc.offer)
        XCTAssertEqual(usedOffer.offerId, created.offer.offerId)
        XCTAssertEqual(usedOffer.usedAt, now + 11)
        let pending = try XCTUnwrap(acc.pending)
        XCTAssertEqual(pending.deviceId, request.deviceId())
        XCTAssertEqual(pending.account, linkAccount)
        XCTAssertEqual(pending.deviceName, linkDeviceName)
        XCTAssertEqual(pending.confirmBy, now + 11 + 600)
        XCTAssertEqual(pending.attempts, 0)
        XCTAssertFalse(pending.closed)
        XCTAssertEqual(acc.events, [LinkEvent(kind: "link_requested", account: linkAccount, deviceId: request.deviceId(),
                                              deviceName: linkDeviceName, at: now + 11)])

        let fin = try start.pending.finish(answer: acc.answer)
        XCTAssertTrue(fin.checkCode.count == 6 && fin.checkCode.allSatisfy(\.isNumber), "check code")
        let expected = LinkedAccount(portalName: "Example Bank", portalFingerprint: portal.fingerprint(), account: linkAccount,
                                     deviceId: request.deviceId(), deviceName: linkDeviceName, linkedAt: now + 11,
                                     confirmBy: pending.confirmBy, biometrics: true)
        XCTAssertEqual(fin.account, expected)
        XCTAssertEqual(try device.account(state: fin.state), expected)

        let c = try portal.confirmLink(pending: pending, code: fin.checkCode, now: now + 20)
        XCTAssertTrue(c.linked, c.errorCode ?? "")
        XCTAssertNil(c.errorCode)
        XCTAssertTrue(c.pending.closed)
        let rec = try XCTUnwrap(c.device)
        XCTAssertEqual(rec.deviceId, request.deviceId())
        XCTAssertEqual(rec.account, linkAccount)
        XCTAssertEqual(rec.name, linkDeviceName)
        XCTAssertEqual(rec.linkedAt, now + 20)
        XCTAssertNil(rec.lastUsedAt)
        XCTAssertEqual(rec.status, .active)
        XCTAssertFalse(rec.sealed.isEmpty)
        XCTAssertEqual(c.events, [LinkEvent(kind: "device_linked", account: linkAccount, deviceId: rec.deviceId,
                                            deviceName: linkDeviceName, at: now + 20)])

        // Confirming the closed pending link again is refused.
        XCTAssertEqual(try portal.confirmLink(pending: c.pending, code: fin.checkCode, now: now + 21).errorCode, "INVALID_STATE")
        // The new device's code is accepted.
        let t = now + 100
        let code = try device.totp(state: fin.state, unlock: .passcode(passcode: linkPasscode), now: t)
        XCTAssertTrue(try portal.verifyDeviceTotp(device: rec, code: code, now: t).accepted)
    }

    func testSecondUseOfTheSameQr() throws {
        let portal = try newPortal()
        let created = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now)
        let phoneA = try newDevice()
        let phoneB = try newDevice()
        let a = try phoneA.startLink(qrText: created.qrText, deviceName: "Phone A", passcode: linkPasscode, biometrics: false,
                                     currentState: nil, now: now + 10)
        let b = try phoneB.startLink(qrText: created.qrText, deviceName: "Phone B", passcode: "728194", biometrics: false,
                                     currentState: nil, now: now + 10)
        let first = try portal.openLinkRequest(request: a.request).accept(portal: portal, offer: created.offer, now: now + 11)
        XCTAssertTrue(first.accepted)
        let used = try XCTUnwrap(first.offer) // what the host stored
        let requestB = try portal.openLinkRequest(request: b.request)
        XCTAssertEqual(requestB.offerId(), created.offer.offerId)
        let second = try requestB.accept(portal: portal, offer: used, now: now + 12)
        XCTAssertFalse(second.accepted)
        XCTAssertEqual(second.errorCode, "TOKEN_ALREADY_USED")
        XCTAssertNil(second.offer)
        XCTAssertNil(second.pending)
        XCTAssertTrue(second.events.isEmpty)
        XCTAssertEqual(failure { try b.pending.finish(answer: second.answer) }?.code, "TOKEN_ALREADY_USED")
        XCTAssertEqual(try a.pending.finish(answer: first.answer).account.account, linkAccount)
    }

    func testExpiredQr() throws {
        let portal = try newPortal()
        let device = try newDevice()
        let created = try portal.createOffer(account: linkAccount, ttl: 60, rules: linkRules, now: now)
        XCTAssertEqual(created.offer.expiresAt, now + 60)
        XCTAssertEqual(failure { try device.scanLinkQr(qrText: created.qrText, now: now + 60) }?.code, "TOKEN_EXPIRED")
        XCTAssertEqual(failure {
            try device.startLink(qrText: created.qrText, deviceName: linkDeviceName, passcode: linkPasscode, biometrics: false,
                                 currentState: nil, now: now + 60)
        }?.code, "TOKEN_EXPIRED")
        let start = try device.startLink(qrText: created.qrText, deviceName: linkDeviceName, passcode: linkPasscode,
                                         biometrics: false, currentState: nil, now: now + 59)
        let acc = try portal.openLinkRequest(request: start.request).accept(portal: portal, offer: created.offer, now: now + 61)
        XCTAssertFalse(acc.accepted)
        XCTAssertEqual(acc.errorCode, "TOKEN_EXPIRED")
        XCTAssertEqual(failure { try start.pending.finish(answer: acc.answer) }?.code, "TOKEN_EXPIRED")
    }

    func testUnknownOffer() throws {
        let portal = try newPortal()
        let device = try newDevice()
        let created = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now)
        let start = try device.startLink(qrText: created.qrText, deviceName: linkDeviceName, passcode: linkPasscode,
                                         biometrics: false, currentState: nil, now: now + 10)
        let acc = try portal.openLinkRequest(request: start.request).accept(portal: portal, offer: nil, now: now + 11)
        XCTAssertFalse(acc.accepted)
        XCTAssertEqual(acc.errorCode, "TOKEN_UNKNOWN")
        XCTAssertEqual(failure { try start.pending.finish(answer: acc.answer) }?.code, "TOKEN_UNKNOWN")
        // The host looked up the wrong row: refused the same way.
        let other = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now).offer
        let start2 = try device.startLink(qrText: created.qrText, deviceName: linkDeviceName, passcode: linkPasscode,
                                          biometrics: false, currentState: nil, now: now + 10)
        XCTAssertEqual(try portal.openLinkRequest(request: start2.request).accept(portal: portal, offer: other, now: now + 11).errorCode,
                       "TOKEN_UNKNOWN")
        // Another portal cannot read the request at all.
        XCTAssertEqual(failure { try newPortal().openLinkRequest(request: start2.request) }?.code, "MESSAGE_TAMPERED")
    }

    func testDeviceAlreadyLinked() throws {
        let portal = try newPortal()
        let l = try linkDevice(portal, try newDevice())
        let qr = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now).qrText
        XCTAssertEqual(failure {
            try l.device.startLink(qrText: qr, deviceName: "Again", passcode: linkPasscode, biometrics: false,
                                   currentState: l.state, now: now + 10)
        }?.code, "DEVICE_ALREADY_LINKED")
    }

    func testWeakPasscode() throws {
        let qr = try newPortal().createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now).qrText
        let device = try newDevice()
        XCTAssertEqual(failure {
            try device.startLink(qrText: qr, deviceName: linkDeviceName, passcode: "123456", biometrics: false, currentState: nil, now: now)
        }?.code, "WEAK_PASSCODE")
    }

    func testPasscodePolicy() throws {
        let qr = try newPortal().createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now).qrText
        let device = try newDevice()
        XCTAssertEqual(failure {
            try device.startLink(qrText: qr, deviceName: linkDeviceName, passcode: "49381", biometrics: false, currentState: nil, now: now)
        }?.code, "PASSCODE_POLICY")
    }

    func testGarbageQr() throws {
        let device = try newDevice()
        XCTAssertEqual(failure { try device.scanLinkQr(qrText: "hello", now: now) }?.code, "MALFORMED_MESSAGE")
        XCTAssertEqual(failure {
            try device.startLink(qrText: "hello", deviceName: linkDeviceName, passcode: linkPasscode, biometrics: false,
                                 currentState: nil, now: now)
        }?.code, "MALFORMED_MESSAGE")
    }

    func testTamperedAnswer() throws {
        let portal = try newPortal()
        let device = try newDevice()
        let created = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now)
        let start = try device.startLink(qrText: created.qrText, deviceName: linkDeviceName, passcode: linkPasscode,
                                         biometrics: false, currentState: nil, now: now + 10)
        let saved = try start.pending.sealed()
        let acc = try portal.openLinkRequest(request: start.request).accept(portal: portal, offer: created.offer, now: now + 11)
        XCTAssertEqual(failure { try start.pending.finish(answer: tamperText(acc.answer)) }?.code, "MESSAGE_TAMPERED")
        let fin = try device.openPendingLink(sealed: saved).finish(answer: acc.answer)
        XCTAssertTrue(try portal.confirmLink(pending: try XCTUnwrap(acc.pending), code: fin.checkCode, now: now + 20).linked)
    }

    func testTamperedState() throws {
        let l = try linkDevice(try newPortal(), try newDevice())
        for i in [l.state.count / 2, l.state.count - 1] {
            let bad = flipBit(l.state, i)
            XCTAssertEqual(failure { try l.device.account(state: bad) }?.code, "STATE_CORRUPT", "byte \(i)")
            XCTAssertEqual(failure { try l.device.totp(state: bad, unlock: .passcode(passcode: linkPasscode), now: now) }?.code,
                           "STATE_CORRUPT", "byte \(i)")
        }
        XCTAssertEqual(failure { try l.device.account(state: l.state.prefix(10)) }?.code, "STATE_CORRUPT")
    }

    func testWrongStorageKey() throws {
        let portal = try newPortal()
        let l = try linkDevice(portal, try newDevice())
        let stranger = try newDevice()
        XCTAssertEqual(failure { try stranger.account(state: l.state) }?.code, "STATE_CORRUPT")
        XCTAssertEqual(failure { try stranger.statusRequest(state: l.state, now: now) }?.code, "STATE_CORRUPT")
        let qr = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now).qrText
        let start = try l.device.startLink(qrText: qr, deviceName: "P", passcode: linkPasscode, biometrics: false,
                                           currentState: nil, now: now)
        let sealed = try start.pending.sealed()
        XCTAssertEqual(failure { try stranger.openPendingLink(sealed: sealed) }?.code, "STATE_CORRUPT")
    }

    func testStorageKeyOfWrongLength() throws {
        for n in [31, 33, 0] {
            XCTAssertEqual(failure { try TesseraDevice(storageKey: Data(count: n)) }?.code, "INVALID_INPUT", "\(n) bytes")
        }
        XCTAssertEqual(try newStorageKey().count, 32)
        XCTAssertNotEqual(try newStorageKey(), try newStorageKey())
    }

    func testFinishTwice() throws {
        let portal = try newPortal()
        let created = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now)
        let start = try newDevice().startLink(qrText: created.qrText, deviceName: linkDeviceName, passcode: linkPasscode,
                                              biometrics: false, currentState: nil, now: now + 10)
        let acc = try portal.openLinkRequest(request: start.request).accept(portal: portal, offer: created.offer, now: now + 11)
        _ = try start.pending.finish(answer: acc.answer)
        XCTAssertEqual(failure { try start.pending.finish(answer: acc.answer) }?.code, "ALREADY_CONSUMED")
        XCTAssertEqual(failure { try start.pending.sealed() }?.code, "ALREADY_CONSUMED")
    }

    func testAcceptTwice() throws {
        let portal = try newPortal()
        let created = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now)
        let start = try newDevice().startLink(qrText: created.qrText, deviceName: linkDeviceName, passcode: linkPasscode,
                                              biometrics: false, currentState: nil, now: now + 10)
        let request = try portal.openLinkRequest(request: start.request)
        XCTAssertTrue(try request.accept(portal: portal, offer: created.offer, now: now + 11).accepted)
        XCTAssertEqual(failure { try request.accept(portal: portal, offer: created.offer, now: now + 12) }?.code, "ALREADY_CONSUMED")
        // The host's compare-and-set on the offer lost: tell the device, authenticated.
        let refusal = try request.refuse(portal: portal, code: "TOKEN_ALREADY_USED")
        XCTAssertEqual(failure { try start.pending.finish(answer: refusal) }?.code, "TOKEN_ALREADY_USED")
        XCTAssertEqual(request.offerId(), created.offer.offerId) // accessors stay readable
    }

    func testRefuseGivesTheDeviceTheTypedError() throws {
        let portal = try newPortal()
        let created = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now)
        let start = try newDevice().startLink(qrText: created.qrText, deviceName: linkDeviceName, passcode: linkPasscode,
                                              biometrics: false, currentState: nil, now: now + 10)
        let request = try portal.openLinkRequest(request: start.request)
        XCTAssertEqual(failure { try request.refuse(portal: portal, code: "NOT_A_CODE") }?.code, "INVALID_INPUT")
        let answer = try request.refuse(portal: portal, code: "TOKEN_ALREADY_USED")
        XCTAssertEqual(failure { try start.pending.finish(answer: answer) }?.code, "TOKEN_ALREADY_USED")
    }

    func testPendingLinkSurvivesAnAppRestart() throws {
        let portal = try newPortal()
        let key = try newStorageKey()
        let created = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now)
        // Before the restart: start, save the sealed pending link, drop everything.
        let request: String
        let saved: Data
        do {
            let device = try TesseraDevice(storageKey: key)
            let start = try device.startLink(qrText: created.qrText, deviceName: linkDeviceName, passcode: linkPasscode,
                                             biometrics: true, currentState: nil, now: now + 10)
            request = start.request
            saved = try start.pending.sealed()
        }
        let acc = try portal.openLinkRequest(request: request).accept(portal: portal, offer: created.offer, now: now + 11)
        // After the restart: a new device object with the same key.
        let fin = try TesseraDevice(storageKey: key).openPendingLink(sealed: saved).finish(answer: acc.answer)
        XCTAssertEqual(fin.account.deviceName, linkDeviceName)
        XCTAssertTrue(fin.account.biometrics)
        XCTAssertTrue(try portal.confirmLink(pending: try XCTUnwrap(acc.pending), code: fin.checkCode, now: now + 20).linked)
    }

    func testWrongCheckCodeFiveTimesLocksOut() throws {
        let l = try linkDevice(try newPortal(), try newDevice())
        let wrong = otherCode(l.finish.checkCode)
        var p = l.pending
        for i in 1...4 {
            let c = try l.portal.confirmLink(pending: p, code: wrong, now: now + 20 + UInt64(i))
            XCTAssertFalse(c.linked)
            XCTAssertEqual(c.errorCode, "CHECK_CODE_MISMATCH")
            XCTAssertNil(c.device)
            XCTAssertTrue(c.events.isEmpty)
            XCTAssertEqual(c.pending.attempts, UInt32(i))
            XCTAssertFalse(c.pending.closed)
            p = c.pending
        }
        let locked = try l.portal.confirmLink(pending: p, code: wrong, now: now + 30)
        XCTAssertFalse(locked.linked)
        XCTAssertEqual(locked.errorCode, "LOCKED_OUT")
        XCTAssertEqual(locked.pending.attempts, 5)
        XCTAssertTrue(locked.pending.closed)
        XCTAssertNil(locked.device)
        // Even the right code is refused now.
        let after = try l.portal.confirmLink(pending: locked.pending, code: l.finish.checkCode, now: now + 31)
        XCTAssertFalse(after.linked)
        XCTAssertEqual(after.errorCode, "INVALID_STATE")
    }

    func testCheckCodeAfterConfirmBy() throws {
        let l = try linkDevice(try newPortal(), try newDevice())
        let c = try l.portal.confirmLink(pending: l.pending, code: l.finish.checkCode, now: l.pending.confirmBy)
        XCTAssertFalse(c.linked)
        XCTAssertEqual(c.errorCode, "TOKEN_EXPIRED")
        XCTAssertTrue(c.pending.closed)
    }

    func testBiometricTotpEqualsPasscodeTotp() throws {
        let l = try linkDevice(try newPortal(), try newDevice(), biometrics: true)
        let bio = try XCTUnwrap(l.biometricSecret)
        XCTAssertEqual(bio.count, 32)
        var rec = try l.confirm()
        let t = now + 100
        let code = try l.device.totp(state: l.state, unlock: .passcode(passcode: linkPasscode), now: t)
        let bioCode = try l.device.totp(state: l.state, unlock: .biometric(secret: bio), now: t)
        XCTAssertEqual(bioCode, code)
        let ok = try l.portal.verifyDeviceTotp(device: rec, code: bioCode, now: t)
        XCTAssertTrue(ok.accepted, "refused: \(ok.errorCode ?? "")")
        XCTAssertNil(ok.errorCode)
        XCTAssertEqual(ok.device.lastUsedAt, t)
        rec = ok.device
        XCTAssertEqual(try l.portal.verifyDeviceTotp(device: rec, code: code, now: t).errorCode, "OTP_REPLAYED")
        XCTAssertEqual(failure { try l.device.totp(state: l.state, unlock: .biometric(secret: bio.prefix(31)), now: t) }?.code,
                       "INVALID_INPUT")
    }

    func testNoBiometricSecretWithoutBiometrics() throws {
        let l = try linkDevice(try newPortal(), try newDevice(), biometrics: false)
        XCTAssertNil(l.biometricSecret)
        XCTAssertFalse(l.finish.account.biometrics)
    }

    func testWrongPasscodeTotpIsRefused() throws {
        let l = try linkDevice(try newPortal(), try newDevice())
        let rec = try l.confirm()
        let t = now + 200
        let bad = try l.device.totp(state: l.state, unlock: .passcode(passcode: "000111"), now: t)
        XCTAssertEqual(bad.count, 6)
        XCTAssertNotEqual(try l.device.totp(state: l.state, unlock: .passcode(passcode: linkPasscode), now: t), bad)
        let c = try l.portal.verifyDeviceTotp(device: rec, code: bad, now: t)
        XCTAssertFalse(c.accepted)
        XCTAssertEqual(c.errorCode, "OTP_MISMATCH")
    }

    func testUnlinkAtThePortalReachesTheDevice() throws {
        let l = try linkDevice(try newPortal(), try newDevice())
        var rec = try l.confirm()
        // Still linked.
        let check = try l.device.statusRequest(state: l.state, now: now + 50)
        XCTAssertEqual(try l.portal.statusRequestDevice(request: check.request), rec.deviceId)
        let ans = try l.portal.answerStatus(request: check.request, device: rec, now: now + 50)
        XCTAssertNoThrow(try l.device.readStatusAnswer(state: l.state, probe: check.probe, answer: ans.answer))
        XCTAssertEqual(ans.device.lastUsedAt, now + 50)
        rec = ans.device
        // Rename, then unlink without the device (lost phone).
        let renamed = try l.portal.renameDevice(device: rec, name: "Lost phone", now: now + 60)
        XCTAssertEqual(renamed.device.name, "Lost phone")
        XCTAssertEqual(renamed.event, LinkEvent(kind: "device_renamed", account: linkAccount, deviceId: rec.deviceId,
                                                deviceName: "Lost phone", at: now + 60))
        let unlinked = try l.portal.unlinkDevice(device: renamed.device, now: now + 70)
        XCTAssertEqual(unlinked.device.status, .unlinked)
        XCTAssertEqual(unlinked.event, LinkEvent(kind: "device_unlinked", account: linkAccount, deviceId: rec.deviceId,
                                                 deviceName: nil, at: now + 70))
        rec = unlinked.device
        XCTAssertEqual(failure { try l.portal.unlinkDevice(device: rec, now: now + 71) }?.code, "INVALID_STATE")
        // The device learns it on its next status check.
        let check2 = try l.device.statusRequest(state: l.state, now: now + 80)
        let ans2 = try l.portal.answerStatus(request: check2.request, device: rec, now: now + 80)
        XCTAssertEqual(failure { try l.device.readStatusAnswer(state: l.state, probe: check2.probe, answer: ans2.answer) }?.code,
                       "DEVICE_REVOKED")
        XCTAssertEqual(failure {
            try l.device.readStatusAnswer(state: l.state, probe: check2.probe, answer: tamperText(ans2.answer))
        }?.code, "MESSAGE_TAMPERED")
        let t = now + 90
        let code = try l.device.totp(state: l.state, unlock: .passcode(passcode: linkPasscode), now: t)
        XCTAssertEqual(try l.portal.verifyDeviceTotp(device: rec, code: code, now: t).errorCode, "DEVICE_REVOKED")
    }

    func testUnlinkLocallyThenLinkAgain() throws {
        let portal = try newPortal()
        let device = try newDevice()
        let first = try linkDevice(portal, device)
        let rec1 = try first.confirm()
        let facts = try device.unlinkLocally(state: first.state)
        XCTAssertEqual(facts, try device.account(state: first.state))
        XCTAssertEqual(facts.deviceId, rec1.deviceId)
        // The app deleted the state: no current state any more.
        let second = try linkDevice(portal, device, name: "Anna's Pixel (2)", now: now + 1000)
        let rec2 = try second.confirm()
        XCTAssertNotEqual(rec2.deviceId, rec1.deviceId)
        XCTAssertEqual(try device.account(state: second.state).deviceName, "Anna's Pixel (2)")
        let t = now + 1100
        let code = try device.totp(state: second.state, unlock: .passcode(passcode: linkPasscode), now: t)
        XCTAssertTrue(try portal.verifyDeviceTotp(device: rec2, code: code, now: t).accepted)
    }
}

/// Object lifetimes: Swift frees an object when its last reference goes (the
/// end of a scope); a released object cannot be reached any more, which is
/// Swift's form of Kotlin's "closed object is not usable".
final class LinkLifetimeTests: XCTestCase {
    let now = linkNow

    func testDeviceIsFreedAtTheEndOfItsScope() throws {
        weak var weakDevice: TesseraDevice?
        do {
            let device = try newDevice()
            weakDevice = device
            XCTAssertEqual(failure { try device.scanLinkQr(qrText: "hello", now: now) }?.code, "MALFORMED_MESSAGE")
        }
        XCTAssertNil(weakDevice, "TesseraDevice was not freed")
    }

    func testPendingLinkOutlivesItsDeviceAndIsFreedWithItsResult() throws {
        let portal = try newPortal()
        let key = try newStorageKey()
        let created = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now)
        weak var weakDevice: TesseraDevice?
        weak var weakPending: PendingLink?
        let request: String
        let saved: Data
        do {
            let start: LinkStartResult
            do {
                let device = try TesseraDevice(storageKey: key)
                weakDevice = device
                start = try device.startLink(qrText: created.qrText, deviceName: linkDeviceName, passcode: linkPasscode,
                                             biometrics: false, currentState: nil, now: now + 10)
            }
            XCTAssertNil(weakDevice, "TesseraDevice was not freed")
            weakPending = start.pending
            request = start.request
            saved = try start.pending.sealed() // usable after its device is gone
        }
        XCTAssertNil(weakPending, "PendingLink was not freed with its LinkStartResult")
        let acc = try portal.openLinkRequest(request: request).accept(portal: portal, offer: created.offer, now: now + 11)
        // The saved copy, reopened by a device that is dropped right away, finishes.
        let pending: PendingLink
        do {
            let device = try TesseraDevice(storageKey: key)
            weakDevice = device
            pending = try device.openPendingLink(sealed: saved)
        }
        XCTAssertNil(weakDevice, "TesseraDevice was not freed")
        let fin = try pending.finish(answer: acc.answer)
        XCTAssertTrue(try portal.confirmLink(pending: try XCTUnwrap(acc.pending), code: fin.checkCode, now: now + 20).linked)
        // A finished PendingLink is consumed for good.
        XCTAssertEqual(failure { try pending.finish(answer: acc.answer) }?.code, "ALREADY_CONSUMED")
    }

    func testManyObjectsDroppedWithoutFinishing() throws {
        let portal = try newPortal()
        let created = try portal.createOffer(account: linkAccount, ttl: 600, rules: linkRules, now: now)
        weak var weakLast: PendingLink?
        for i in 0..<50 {
            let device = try newDevice()
            let start = try device.startLink(qrText: created.qrText, deviceName: "P\(i)", passcode: linkPasscode, biometrics: false,
                                             currentState: nil, now: now)
            _ = try start.pending.sealed()
            _ = try portal.openLinkRequest(request: start.request)
            weakLast = start.pending
        }
        XCTAssertNil(weakLast, "PendingLink was not freed")
        // Still healthy afterwards.
        XCTAssertEqual(try linkDevice(portal, try newDevice()).finish.account.account, linkAccount)
    }
}
