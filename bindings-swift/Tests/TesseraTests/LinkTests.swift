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

extension Array where Element == RecordWrite {
    /// The row of each kind among the writes of one result (nil when there is none).
    var offer: StoredOffer? { one { if case let .offer(row, _) = $0 { return row } else { return nil } } }
    var pending: StoredPendingLink? { one { if case let .pendingLink(row, _) = $0 { return row } else { return nil } } }
    var device: StoredDevice? { one { if case let .device(row, _) = $0 { return row } else { return nil } } }
    /// The expected version of each write, in order (nil: insert).
    var expectedVersions: [UInt64?] {
        map {
            switch $0 {
            case let .offer(_, v), let .pendingLink(_, v), let .device(_, v): return v
            }
        }
    }
    private func one<T>(_ f: (RecordWrite) -> T?) -> T? {
        let rows = compactMap(f)
        return rows.count == 1 ? rows[0] : nil
    }
}

/// A host's store as docs/DESIGN.md ("Host contract") describes it: each write
/// is an INSERT (expectedVersion nil) or an UPDATE … WHERE version = expected,
/// and the writes of one result apply all or nothing.
final class Store {
    var offers: [String: StoredOffer] = [:]
    var pending: [String: StoredPendingLink] = [:]
    var devices: [String: StoredDevice] = [:]

    /// True when every check passed and all writes were applied; false (nothing applied) on a conflict.
    func apply(_ writes: [RecordWrite]) -> Bool {
        let ok = writes.allSatisfy { w in
            switch w {
            case let .offer(row, expected): return offers[row.offerId]?.version == expected
            case let .pendingLink(row, expected): return pending[row.deviceId]?.version == expected
            case let .device(row, expected): return devices[row.deviceId]?.version == expected
            }
        }
        guard ok else { return false }
        for w in writes {
            switch w {
            case let .offer(row, _): offers[row.offerId] = row
            case let .pendingLink(row, _): pending[row.deviceId] = row
            case let .device(row, _): devices[row.deviceId] = row
            }
        }
        return true
    }

    /// Whether a pending link or device row (of any account) has this device id.
    func seen(_ deviceId: String) -> Bool { pending[deviceId] != nil || devices[deviceId] != nil }
}

/// A copy of `value` changed by `change` (records are structs).
func moved<T>(_ value: T, _ change: (inout T) -> Void) -> T {
    var v = value
    change(&v)
    return v
}

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
        return try XCTUnwrap(c.writes.device, file: file, line: line)
    }
}

func linkDevice(_ portal: TesseraPortal, _ device: TesseraDevice, account: String = linkAccount, name: String = linkDeviceName,
                biometrics: Bool = false, now: UInt64 = linkNow) throws -> Linked {
    let created = try portal.createOffer(account: account, ttl: 300, rules: linkRules, now: now)
    let start = try device.startLink(qrText: created.qrText, deviceName: name, passcode: linkPasscode, biometrics: biometrics,
                                     currentState: nil, now: now + 10)
    let request = try portal.openLinkRequest(request: start.request)
    XCTAssertEqual(request.offerId(), created.offer.offerId)
    let accept = try request.accept(portal: portal, offer: created.offer, deviceKeySeen: false, now: now + 11)
    XCTAssertTrue(accept.accepted, "accept refused: \(accept.errorCode ?? "")")
    let finish = try start.pending.finish(answer: accept.answer)
    return Linked(portal: portal, device: device, qrText: created.qrText, accept: accept, offer: try XCTUnwrap(accept.writes.offer),
                  pending: try XCTUnwrap(accept.writes.pending), finish: finish, biometricSecret: start.biometricSecret, now: now)
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

    func testPortalPublicKeyAndPinnedScan() throws {
        let v = try Vectors.link()
        let key = hex(v.string("portal_public_key_hex"))
        let portal = try TesseraPortal.fromSecret(secret: hex(v.string("portal_secret_hex")), name: v.string("portal_name"))
        XCTAssertEqual(portal.publicKey(), key)
        let device = try newDevice()
        let info = try device.scanLinkQr(qrText: v.string("qr_text"), now: v.number("scan_time"), portalKey: key)
        XCTAssertEqual(info.portalFingerprint, v.string("portal_fingerprint"))
        let stranger = try newPortal().publicKey()
        XCTAssertEqual(failure {
            try device.scanLinkQr(qrText: v.string("qr_text"), now: v.number("scan_time"), portalKey: stranger)
        }?.code, "WRONG_ACCOUNT")
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
        let code = try totp(secret: cfg.secret, unixTime: now, period: 30, digits: 6, algorithm: .sha1)
        XCTAssertTrue(try totpVerify(config: cfg, code: code, unixTime: now, state: OtpVerifierState()).accepted)
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

        XCTAssertEqual(created.offer.version, 1)
        let acc = try request.accept(portal: portal, offer: created.offer, deviceKeySeen: false, now: now + 11)
        XCTAssertTrue(acc.accepted)
        XCTAssertFalse(acc.repeated)
        XCTAssertNil(acc.errorCode)
        // Two compare-and-sets: update the offer (version 1 -> 2), insert the pending link.
        XCTAssertEqual(acc.writes.count, 2)
        XCTAssertEqual(acc.writes.expectedVersions, [1, nil])
        let usedOffer = try XCTUnwrap(acc.writes.offer)
        XCTAssertEqual(usedOffer.offerId, created.offer.offerId)
        XCTAssertEqual(usedOffer.usedAt, now + 11)
        XCTAssertEqual(usedOffer.version, 2)
        let pending = try XCTUnwrap(acc.writes.pending)
        XCTAssertEqual(pending.version, 1)
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
        // Update the pending link (version 1 -> 2, closed), insert the device.
        XCTAssertEqual(c.writes.count, 2)
        XCTAssertEqual(c.writes.expectedVersions, [1, nil])
        let closed = try XCTUnwrap(c.writes.pending)
        XCTAssertTrue(closed.closed)
        XCTAssertEqual(closed.version, 2)
        let rec = try XCTUnwrap(c.writes.device)
        XCTAssertEqual(rec.version, 1)
        XCTAssertEqual(rec.deviceId, request.deviceId())
        XCTAssertEqual(rec.account, linkAccount)
        XCTAssertEqual(rec.name, linkDeviceName)
        XCTAssertEqual(rec.linkedAt, now + 20)
        XCTAssertNil(rec.lastUsedAt)
        XCTAssertEqual(rec.status, .active)
        XCTAssertFalse(rec.sealed.isEmpty)
        XCTAssertEqual(c.events, [LinkEvent(kind: "device_linked", account: linkAccount, deviceId: rec.deviceId,
                                            deviceName: linkDeviceName, at: now + 20)])

        // Confirming the closed pending link again is refused, and writes nothing.
        let again = try portal.confirmLink(pending: closed, code: fin.checkCode, now: now + 21)
        XCTAssertEqual(again.errorCode, "INVALID_STATE")
        XCTAssertTrue(again.writes.isEmpty)
        // The new device's code is accepted: the device row is written (version 2).
        let t = now + 100
        let code = try device.totp(state: fin.state, unlock: .passcode(passcode: linkPasscode), now: t)
        let ok = try portal.verifyDeviceTotp(device: rec, code: code, now: t)
        XCTAssertTrue(ok.accepted, ok.errorCode ?? "")
        XCTAssertEqual(ok.writes.expectedVersions, [1])
        XCTAssertEqual(ok.writes.device?.version, 2)
        XCTAssertEqual(ok.writes.device?.lastUsedAt, t)
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
        let first = try portal.openLinkRequest(request: a.request)
            .accept(portal: portal, offer: created.offer, deviceKeySeen: false, now: now + 11)
        XCTAssertTrue(first.accepted)
        let used = try XCTUnwrap(first.writes.offer) // what the host stored
        let requestB = try portal.openLinkRequest(request: b.request)
        XCTAssertEqual(requestB.offerId(), created.offer.offerId)
        let second = try requestB.accept(portal: portal, offer: used, deviceKeySeen: false, now: now + 12)
        XCTAssertFalse(second.accepted)
        XCTAssertFalse(second.repeated)
        XCTAssertEqual(second.errorCode, "TOKEN_ALREADY_USED")
        XCTAssertTrue(second.writes.isEmpty)
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
        let acc = try portal.openLinkRequest(request: start.request)
            .accept(portal: portal, offer: created.offer, deviceKeySeen: false, now: now + 61)
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
        let acc = try portal.openLinkRequest(request: start.request).accept(portal: portal, offer: nil, deviceKeySeen: false, now: now + 11)
        XCTAssertFalse(acc.accepted)
        XCTAssertEqual(acc.errorCode, "TOKEN_UNKNOWN")
        XCTAssertEqual(failure { try start.pending.finish(answer: acc.answer) }?.code, "TOKEN_UNKNOWN")
        // The host looked up the wrong row: refused the same way.
        let other = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now).offer
        let start2 = try device.startLink(qrText: created.qrText, deviceName: linkDeviceName, passcode: linkPasscode,
                                          biometrics: false, currentState: nil, now: now + 10)
        let wrongRow = try portal.openLinkRequest(request: start2.request)
            .accept(portal: portal, offer: other, deviceKeySeen: false, now: now + 11)
        XCTAssertEqual(wrongRow.errorCode, "TOKEN_UNKNOWN")
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
        let acc = try portal.openLinkRequest(request: start.request)
            .accept(portal: portal, offer: created.offer, deviceKeySeen: false, now: now + 11)
        XCTAssertEqual(failure { try start.pending.finish(answer: tamperText(acc.answer)) }?.code, "MESSAGE_TAMPERED")
        let fin = try device.openPendingLink(sealed: saved).finish(answer: acc.answer)
        XCTAssertTrue(try portal.confirmLink(pending: try XCTUnwrap(acc.writes.pending), code: fin.checkCode, now: now + 20).linked)
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
        let acc = try portal.openLinkRequest(request: start.request)
            .accept(portal: portal, offer: created.offer, deviceKeySeen: false, now: now + 11)
        _ = try start.pending.finish(answer: acc.answer)
        XCTAssertEqual(failure { try start.pending.finish(answer: acc.answer) }?.code, "ALREADY_CONSUMED")
        XCTAssertEqual(failure { try start.pending.sealed() }?.code, "ALREADY_CONSUMED")
    }

    func testAcceptAgainAfterAWriteConflict() throws {
        let portal = try newPortal()
        let store = Store()
        let created = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now)
        XCTAssertTrue(store.apply([.offer(row: created.offer, expectedVersion: nil)]))
        let a = try newDevice().startLink(qrText: created.qrText, deviceName: "Phone A", passcode: linkPasscode, biometrics: false,
                                          currentState: nil, now: now + 10)
        let b = try newDevice().startLink(qrText: created.qrText, deviceName: "Phone B", passcode: "728194", biometrics: false,
                                          currentState: nil, now: now + 10)
        let reqA = try portal.openLinkRequest(request: a.request)
        let reqB = try portal.openLinkRequest(request: b.request)
        // Two servers read the same offer row; B commits first, A's compare-and-set fails.
        let accA = try reqA.accept(portal: portal, offer: store.offers[reqA.offerId()], deviceKeySeen: false, now: now + 11)
        let accB = try reqB.accept(portal: portal, offer: store.offers[reqB.offerId()], deviceKeySeen: false, now: now + 11)
        XCTAssertTrue(accA.accepted && accB.accepted)
        XCTAssertTrue(store.apply(accB.writes))
        XCTAssertFalse(store.apply(accA.writes))
        XCTAssertEqual(store.offers[reqA.offerId()]?.version, 2)
        XCTAssertNil(store.pending[reqA.deviceId()])
        // A reads again and calls the same request object again.
        let retry = try reqA.accept(portal: portal, offer: store.offers[reqA.offerId()], deviceKeySeen: store.seen(reqA.deviceId()),
                                    now: now + 12)
        XCTAssertFalse(retry.accepted)
        XCTAssertEqual(retry.errorCode, "TOKEN_ALREADY_USED")
        XCTAssertTrue(retry.writes.isEmpty)
        XCTAssertEqual(failure { try a.pending.finish(answer: retry.answer) }?.code, "TOKEN_ALREADY_USED")
        XCTAssertEqual(try b.pending.finish(answer: accB.answer).account.deviceName, "Phone B")
        // A host that gives up sends an authenticated refusal of its own (the same bytes every time).
        XCTAssertEqual(try reqA.refuse(code: "TOKEN_ALREADY_USED"), try reqA.refuse(code: "TOKEN_ALREADY_USED"))
        XCTAssertEqual(reqA.offerId(), created.offer.offerId) // accessors stay readable
    }

    func testRefuseGivesTheDeviceTheTypedError() throws {
        let portal = try newPortal()
        let created = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now)
        let start = try newDevice().startLink(qrText: created.qrText, deviceName: linkDeviceName, passcode: linkPasscode,
                                              biometrics: false, currentState: nil, now: now + 10)
        let request = try portal.openLinkRequest(request: start.request)
        XCTAssertEqual(failure { try request.refuse(code: "NOT_A_CODE") }?.code, "INVALID_INPUT")
        let answer = try request.refuse(code: "TOKEN_ALREADY_USED")
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
        let acc = try portal.openLinkRequest(request: request)
            .accept(portal: portal, offer: created.offer, deviceKeySeen: false, now: now + 11)
        // After the restart: a new device object with the same key.
        let fin = try TesseraDevice(storageKey: key).openPendingLink(sealed: saved).finish(answer: acc.answer)
        XCTAssertEqual(fin.account.deviceName, linkDeviceName)
        XCTAssertTrue(fin.account.biometrics)
        XCTAssertTrue(try portal.confirmLink(pending: try XCTUnwrap(acc.writes.pending), code: fin.checkCode, now: now + 20).linked)
    }

    func testWrongCheckCodeFiveTimesLocksOut() throws {
        let l = try linkDevice(try newPortal(), try newDevice())
        let wrong = otherCode(l.finish.checkCode)
        var p = l.pending
        for i in 1...4 {
            let c = try l.portal.confirmLink(pending: p, code: wrong, now: now + 20 + UInt64(i))
            XCTAssertFalse(c.linked)
            XCTAssertEqual(c.errorCode, "CHECK_CODE_MISMATCH")
            XCTAssertTrue(c.events.isEmpty)
            XCTAssertEqual(c.writes.expectedVersions, [UInt64(i)])
            let row = try XCTUnwrap(c.writes.pending)
            XCTAssertEqual(row.version, UInt64(i) + 1)
            XCTAssertEqual(row.attempts, UInt32(i))
            XCTAssertFalse(row.closed)
            p = row
        }
        let locked = try l.portal.confirmLink(pending: p, code: wrong, now: now + 30)
        XCTAssertFalse(locked.linked)
        XCTAssertEqual(locked.errorCode, "LOCKED_OUT")
        XCTAssertEqual(locked.writes.count, 1)
        let lp = try XCTUnwrap(locked.writes.pending)
        XCTAssertEqual(lp.attempts, 5)
        XCTAssertEqual(lp.version, 6)
        XCTAssertTrue(lp.closed)
        // Even the right code is refused now, and nothing is written.
        let after = try l.portal.confirmLink(pending: lp, code: l.finish.checkCode, now: now + 31)
        XCTAssertFalse(after.linked)
        XCTAssertEqual(after.errorCode, "INVALID_STATE")
        XCTAssertTrue(after.writes.isEmpty)
    }

    func testWrongCheckCodesRacingOnTwoServersCountExactlyFive() throws {
        let l = try linkDevice(try newPortal(), try newDevice())
        let id = l.pending.deviceId
        let store = Store()
        XCTAssertTrue(store.apply([.pendingLink(row: l.pending, expectedVersion: nil)]))
        let wrong = otherCode(l.finish.checkCode)
        var codes: [String?] = []
        var versions: [UInt64] = []
        for round in 0..<4 {
            let t = now + 30 + UInt64(round)
            // Both servers read the same row and decide; the first commits, the second conflicts.
            let read = try XCTUnwrap(store.pending[id])
            let first = try l.portal.confirmLink(pending: read, code: wrong, now: t)
            let second = try l.portal.confirmLink(pending: read, code: wrong, now: t)
            XCTAssertTrue(store.apply(first.writes))
            codes.append(first.errorCode)
            versions.append(try XCTUnwrap(store.pending[id]).version)
            if !second.writes.isEmpty { XCTAssertFalse(store.apply(second.writes), "a stale write must conflict") }
            // The loser reads again and repeats the call.
            let retry = try l.portal.confirmLink(pending: try XCTUnwrap(store.pending[id]), code: wrong, now: t)
            XCTAssertTrue(store.apply(retry.writes))
            codes.append(retry.errorCode)
            versions.append(try XCTUnwrap(store.pending[id]).version)
        }
        let mismatch = "CHECK_CODE_MISMATCH"
        XCTAssertEqual(codes, [mismatch, mismatch, mismatch, mismatch, "LOCKED_OUT", "INVALID_STATE", "INVALID_STATE", "INVALID_STATE"])
        XCTAssertEqual(versions, [2, 3, 4, 5, 6, 6, 6, 6])
        let p = try XCTUnwrap(store.pending[id])
        XCTAssertEqual(p.attempts, 5)
        XCTAssertTrue(p.closed)
        XCTAssertEqual(try l.portal.confirmLink(pending: p, code: l.finish.checkCode, now: now + 40).errorCode, "INVALID_STATE")
        XCTAssertTrue(store.devices.isEmpty)
    }

    func testCheckCodeMustMatchExactly() throws {
        // "", 1 digit, a 5-digit prefix, 7 digits: CHECK_CODE_MISMATCH.
        let l = try linkDevice(try newPortal(), try newDevice())
        let cc = l.finish.checkCode
        for typed in ["", String(cc.prefix(1)), String(cc.prefix(5)), cc + "0", cc + String(cc.last!), " ", "abcdef"] {
            let c = try l.portal.confirmLink(pending: l.pending, code: typed, now: now + 20)
            XCTAssertFalse(c.linked, "'\(typed)'")
            XCTAssertEqual(c.errorCode, "CHECK_CODE_MISMATCH", "'\(typed)'")
            XCTAssertEqual(c.writes.pending?.attempts, 1, "'\(typed)'")
        }
        // White space around the right code is fine.
        XCTAssertTrue(try l.portal.confirmLink(pending: l.pending, code: " \(cc) ", now: now + 20).linked)
    }

    func testCheckCodeAfterConfirmBy() throws {
        let l = try linkDevice(try newPortal(), try newDevice())
        let c = try l.portal.confirmLink(pending: l.pending, code: l.finish.checkCode, now: l.pending.confirmBy)
        XCTAssertFalse(c.linked)
        XCTAssertEqual(c.errorCode, "TOKEN_EXPIRED")
        XCTAssertEqual(c.writes.pending?.closed, true)
        // One second earlier it is still accepted.
        XCTAssertTrue(try l.portal.confirmLink(pending: l.pending, code: l.finish.checkCode, now: l.pending.confirmBy - 1).linked)
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
        rec = try XCTUnwrap(ok.writes.device)
        XCTAssertEqual(rec.lastUsedAt, t)
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
        // Still linked; a status answer writes nothing.
        let check = try l.device.statusRequest(state: l.state, now: now + 50)
        XCTAssertEqual(try l.portal.statusRequestDevice(request: check.request), rec.deviceId)
        let ans = try l.portal.answerStatus(request: check.request, device: rec, pending: l.pending, now: now + 50)
        XCTAssertEqual(try l.device.readStatusAnswer(state: l.state, probe: check.probe, answer: ans), .active)
        // The time window: 300 s either way, not 301.
        let late = try l.portal.answerStatus(request: check.request, device: rec, pending: nil, now: now + 350)
        XCTAssertEqual(try l.device.readStatusAnswer(state: l.state, probe: check.probe, answer: late), .active)
        XCTAssertEqual(failure { try l.portal.answerStatus(request: check.request, device: rec, pending: nil, now: now + 351) }?.code,
                       "INVALID_TIME")
        // Rename, then unlink without the device (lost phone).
        let renamed = try l.portal.renameDevice(device: rec, name: "Lost phone", now: now + 60)
        XCTAssertEqual(renamed.writes.expectedVersions, [1])
        let rw = try XCTUnwrap(renamed.writes.device)
        XCTAssertEqual(rw.name, "Lost phone")
        XCTAssertEqual(renamed.events, [LinkEvent(kind: "device_renamed", account: linkAccount, deviceId: rec.deviceId,
                                                  deviceName: "Lost phone", at: now + 60)])
        XCTAssertEqual(failure { try l.portal.renameDevice(device: rw, name: "Bad\u{202E}name", now: now + 61) }?.code, "INVALID_INPUT")
        let unlinked = try l.portal.unlinkDevice(device: rw, now: now + 70)
        rec = try XCTUnwrap(unlinked.writes.device)
        XCTAssertEqual(rec.status, .unlinked)
        XCTAssertEqual(rec.version, 3)
        XCTAssertEqual(unlinked.events, [LinkEvent(kind: "device_unlinked", account: linkAccount, deviceId: rec.deviceId,
                                                   deviceName: nil, at: now + 70)])
        let gone = rec
        XCTAssertEqual(failure { try l.portal.unlinkDevice(device: gone, now: now + 71) }?.code, "INVALID_STATE")
        XCTAssertEqual(failure { try l.portal.renameDevice(device: gone, name: "Found phone", now: now + 72) }?.code, "INVALID_STATE")
        // The device learns it on its next status check.
        let check2 = try l.device.statusRequest(state: l.state, now: now + 80)
        let ans2 = try l.portal.answerStatus(request: check2.request, device: rec, pending: nil, now: now + 80)
        XCTAssertEqual(failure { try l.device.readStatusAnswer(state: l.state, probe: check2.probe, answer: ans2) }?.code,
                       "DEVICE_REVOKED")
        XCTAssertEqual(failure {
            try l.device.readStatusAnswer(state: l.state, probe: check2.probe, answer: tamperText(ans2))
        }?.code, "MESSAGE_TAMPERED")
        let t = now + 90
        let code = try l.device.totp(state: l.state, unlock: .passcode(passcode: linkPasscode), now: t)
        let revoked = try l.portal.verifyDeviceTotp(device: rec, code: code, now: t)
        XCTAssertEqual(revoked.errorCode, "DEVICE_REVOKED")
        XCTAssertTrue(revoked.writes.isEmpty)
    }

    func testRepeatedRequestGetsTheSameAnswerBytes() throws {
        let portal = try newPortal()
        let device = try newDevice()
        let store = Store()
        let created = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now)
        XCTAssertTrue(store.apply([.offer(row: created.offer, expectedVersion: nil)]))
        /// A host serving one request: read, accept, apply; on a conflict read again and repeat.
        func serve(_ text: String, _ t: UInt64) throws -> AcceptResult {
            let req = try portal.openLinkRequest(request: text)
            while true {
                let r = try req.accept(portal: portal, offer: store.offers[req.offerId()],
                                       deviceKeySeen: store.seen(req.deviceId()), now: t)
                if store.apply(r.writes) { return r }
            }
        }
        let start = try device.startLink(qrText: created.qrText, deviceName: linkDeviceName, passcode: linkPasscode,
                                         biometrics: false, currentState: nil, now: now + 10)
        let first = try serve(start.request, now + 11)
        XCTAssertTrue(first.accepted)
        XCTAssertFalse(first.repeated)
        XCTAssertEqual(first.writes.count, 2)
        // The answer was lost: the phone sends its request again, byte for byte.
        XCTAssertEqual(try start.pending.request(), start.request)
        let again = try serve(try start.pending.request(), now + 40)
        XCTAssertTrue(again.accepted)
        XCTAssertTrue(again.repeated)
        XCTAssertNil(again.errorCode)
        XCTAssertTrue(again.writes.isEmpty)
        XCTAssertTrue(again.events.isEmpty)
        XCTAssertEqual(again.answer, first.answer)
        let fin = try start.pending.finish(answer: again.answer)
        XCTAssertEqual(failure { try start.pending.request() }?.code, "ALREADY_CONSUMED")
        let c = try portal.confirmLink(pending: try XCTUnwrap(store.pending[fin.account.deviceId]), code: fin.checkCode, now: now + 50)
        XCTAssertTrue(c.linked, c.errorCode ?? "")
        XCTAssertTrue(store.apply(c.writes))
        // A device id the host already has (a pending link or device, any account) cannot link again.
        let other = try portal.createOffer(account: "mallory", ttl: 300, rules: linkRules, now: now)
        let request = try device.startLink(qrText: other.qrText, deviceName: linkDeviceName, passcode: linkPasscode, biometrics: false,
                                           currentState: nil, now: now + 60).request
        let seen = try portal.openLinkRequest(request: request).accept(portal: portal, offer: other.offer, deviceKeySeen: true,
                                                                       now: now + 61)
        XCTAssertEqual(seen.errorCode, "DEVICE_ALREADY_LINKED")
        XCTAssertTrue(seen.writes.isEmpty)
    }

    func testPinnedScanRefusesALookAlikeQr() throws {
        let portal = try newPortal()
        let device = try newDevice()
        let key = portal.publicKey()
        XCTAssertEqual(key.count, 33)
        let qr = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now).qrText
        XCTAssertEqual(try device.scanLinkQr(qrText: qr, now: now, portalKey: key).portalFingerprint, portal.fingerprint())
        // Same name, another key: unpinned it looks the same; pinned it is refused.
        let lookAlike = try newPortal().createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now).qrText
        XCTAssertEqual(try device.scanLinkQr(qrText: lookAlike, now: now).portalName, "Example Bank")
        XCTAssertEqual(failure { try device.scanLinkQr(qrText: lookAlike, now: now, portalKey: key) }?.code, "WRONG_ACCOUNT")
        XCTAssertEqual(failure {
            try device.startLink(qrText: lookAlike, deviceName: linkDeviceName, passcode: linkPasscode, biometrics: false,
                                 currentState: nil, now: now, portalKey: key)
        }?.code, "WRONG_ACCOUNT")
        XCTAssertEqual(failure { try device.scanLinkQr(qrText: qr, now: now, portalKey: key.prefix(32)) }?.code, "WRONG_ACCOUNT")
        let start = try device.startLink(qrText: qr, deviceName: linkDeviceName, passcode: linkPasscode, biometrics: false,
                                         currentState: nil, now: now, portalKey: key)
        XCTAssertEqual(try portal.openLinkRequest(request: start.request).deviceName(), linkDeviceName)
    }

    func testOrphanedPhoneLearnsItsLinkWasNeverConfirmed() throws {
        let l = try linkDevice(try newPortal(), try newDevice())
        func ask(_ device: StoredDevice?, _ pending: StoredPendingLink?, _ t: UInt64) throws -> LinkStatus {
            let c = try l.device.statusRequest(state: l.state, now: t)
            let answer = try l.portal.answerStatus(request: c.request, device: device, pending: pending, now: t)
            return try l.device.readStatusAnswer(state: l.state, probe: c.probe, answer: answer)
        }
        // Until confirmBy plus the servers' clock skew (300 s) a confirmation may still be committing.
        let by = l.pending.confirmBy
        XCTAssertEqual(try ask(nil, l.pending, now + 60), .awaitingConfirmation)
        XCTAssertEqual(try ask(nil, l.pending, by + 299), .awaitingConfirmation)
        XCTAssertEqual(failure { try ask(nil, l.pending, by + 300) }?.code, "LINK_NOT_CONFIRMED")
        // Locked out by wrong codes: the same.
        var p = l.pending
        for _ in 0..<5 {
            p = try XCTUnwrap(try l.portal.confirmLink(pending: p, code: otherCode(l.finish.checkCode), now: now + 30).writes.pending)
        }
        XCTAssertTrue(p.closed)
        XCTAssertEqual(failure { try ask(nil, p, now + 60) }?.code, "LINK_NOT_CONFIRMED")
        // Neither row: DEVICE_UNKNOWN at the portal.
        XCTAssertEqual(failure { try ask(nil, nil, now + 60) }?.code, "DEVICE_UNKNOWN")
        // Confirmed: the device row answers; a confirmed pending link without its device row
        // (reads that were not one snapshot) is DEVICE_UNKNOWN, never a reason to wipe.
        let c = try l.portal.confirmLink(pending: l.pending, code: l.finish.checkCode, now: now + 20)
        XCTAssertEqual(try ask(c.writes.device, c.writes.pending, now + 60), .active)
        XCTAssertEqual(failure { try ask(nil, c.writes.pending, now + 60) }?.code, "DEVICE_UNKNOWN")
    }

    func testSealedRowMovedToAnotherAccountKeyOrVersionIsStateCorrupt() throws {
        let portal = try newPortal()
        let l = try linkDevice(portal, try newDevice())
        let p = l.pending
        for bad in [moved(p) { $0.account = "mallory" }, moved(p) { $0.version = 2 }, moved(p) { $0.deviceId = "0011223344556677" }] {
            XCTAssertEqual(failure { try portal.confirmLink(pending: bad, code: l.finish.checkCode, now: now + 20) }?.code, "STATE_CORRUPT")
            let request = try l.device.statusRequest(state: l.state, now: now + 20).request
            XCTAssertEqual(failure { try portal.answerStatus(request: request, device: nil, pending: bad, now: now + 20) }?.code,
                           "STATE_CORRUPT")
        }
        let rec = try l.confirm()
        let rec2 = try linkDevice(portal, try newDevice(), account: "mallory").confirm()
        let rows = [moved(rec) { $0.account = "mallory" }, moved(rec) { $0.version = 2 }, moved(rec) { $0.sealed = rec2.sealed },
                    moved(rec2) { $0.sealed = rec.sealed }]
        for bad in rows {
            XCTAssertEqual(failure { try portal.verifyDeviceTotp(device: bad, code: "123456", now: now + 30) }?.code, "STATE_CORRUPT")
            XCTAssertEqual(failure { try portal.unlinkDevice(device: bad, now: now + 30) }?.code, "STATE_CORRUPT")
            XCTAssertEqual(failure { try portal.renameDevice(device: bad, name: "P", now: now + 30) }?.code, "STATE_CORRUPT")
        }
        // A flipped bit, another portal's row, another record type in the row.
        let flipped = moved(rec) { $0.sealed = flipBit(rec.sealed, rec.sealed.count - 1) }
        XCTAssertEqual(failure { try portal.unlinkDevice(device: flipped, now: now + 30) }?.code, "STATE_CORRUPT")
        XCTAssertEqual(failure { try newPortal().unlinkDevice(device: rec, now: now + 30) }?.code, "STATE_CORRUPT")
        XCTAssertEqual(failure { try portal.unlinkDevice(device: moved(rec) { $0.sealed = p.sealed }, now: now + 30) }?.code,
                       "STATE_CORRUPT")
        // An offer row: moved to another version or account, the accept throws before answering.
        let created = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now)
        let start = try newDevice().startLink(qrText: created.qrText, deviceName: "P", passcode: linkPasscode, biometrics: false,
                                              currentState: nil, now: now)
        let req = try portal.openLinkRequest(request: start.request)
        for bad in [moved(created.offer) { $0.version = 2 }, moved(created.offer) { $0.account = "mallory" }] {
            XCTAssertEqual(failure { try req.accept(portal: portal, offer: bad, deviceKeySeen: false, now: now + 1) }?.code,
                           "STATE_CORRUPT")
        }
        XCTAssertTrue(try req.accept(portal: portal, offer: created.offer, deviceKeySeen: false, now: now + 1).accepted)
    }

    func testTimeInMillisecondsIsInvalidTimeAndWritesNothing() throws {
        let ms = now * 1000
        let portal = try newPortal()
        let device = try newDevice()
        XCTAssertEqual(failure { try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: ms) }?.code, "INVALID_TIME")
        let created = try portal.createOffer(account: linkAccount, ttl: 300, rules: linkRules, now: now)
        XCTAssertEqual(failure { try device.scanLinkQr(qrText: created.qrText, now: ms) }?.code, "INVALID_TIME")
        XCTAssertEqual(failure { try device.scanLinkQr(qrText: created.qrText, now: 59) }?.code, "INVALID_TIME")
        XCTAssertEqual(failure {
            try device.startLink(qrText: created.qrText, deviceName: linkDeviceName, passcode: linkPasscode, biometrics: false,
                                 currentState: nil, now: ms)
        }?.code, "INVALID_TIME")
        let start = try device.startLink(qrText: created.qrText, deviceName: linkDeviceName, passcode: linkPasscode,
                                         biometrics: false, currentState: nil, now: now)
        let acc = try portal.openLinkRequest(request: start.request).accept(portal: portal, offer: created.offer, deviceKeySeen: false,
                                                                            now: ms)
        XCTAssertFalse(acc.accepted)
        XCTAssertEqual(acc.errorCode, "INVALID_TIME")
        XCTAssertTrue(acc.writes.isEmpty)
        // The portal's clock is not the phone's fault: the pending link stays, the request can be sent again.
        XCTAssertEqual(failure { try start.pending.finish(answer: acc.answer) }?.code, "INVALID_TIME")
        let retry = try portal.openLinkRequest(request: try start.pending.request())
            .accept(portal: portal, offer: created.offer, deviceKeySeen: false, now: now + 1)
        XCTAssertEqual(try start.pending.finish(answer: retry.answer).account.account, linkAccount)

        let l = try linkDevice(portal, device)
        let c = try portal.confirmLink(pending: l.pending, code: l.finish.checkCode, now: ms)
        XCTAssertEqual(c.errorCode, "INVALID_TIME")
        XCTAssertTrue(c.writes.isEmpty, "a bad clock must not count or cancel")
        XCTAssertEqual(failure { try device.totp(state: l.state, unlock: .passcode(passcode: linkPasscode), now: ms) }?.code,
                       "INVALID_TIME")
        XCTAssertEqual(failure { try device.statusRequest(state: l.state, now: ms) }?.code, "INVALID_TIME")
        let rec = try l.confirm()
        for t in [ms, 0] {
            let v = try portal.verifyDeviceTotp(device: rec, code: "123456", now: t)
            XCTAssertEqual(v.errorCode, "INVALID_TIME")
            XCTAssertTrue(v.writes.isEmpty)
        }
        XCTAssertEqual(failure { try portal.renameDevice(device: rec, name: "P", now: ms) }?.code, "INVALID_TIME")
        XCTAssertEqual(failure { try portal.unlinkDevice(device: rec, now: ms) }?.code, "INVALID_TIME")
        let request = try device.statusRequest(state: l.state, now: now + 30).request
        XCTAssertEqual(failure { try portal.answerStatus(request: request, device: rec, pending: nil, now: ms) }?.code, "INVALID_TIME")
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
        let acc = try portal.openLinkRequest(request: request)
            .accept(portal: portal, offer: created.offer, deviceKeySeen: false, now: now + 11)
        // The saved copy, reopened by a device that is dropped right away, finishes.
        let pending: PendingLink
        do {
            let device = try TesseraDevice(storageKey: key)
            weakDevice = device
            pending = try device.openPendingLink(sealed: saved)
        }
        XCTAssertNil(weakDevice, "TesseraDevice was not freed")
        let fin = try pending.finish(answer: acc.answer)
        XCTAssertTrue(try portal.confirmLink(pending: try XCTUnwrap(acc.writes.pending), code: fin.checkCode, now: now + 20).linked)
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
