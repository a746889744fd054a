import Foundation
import Tessera
import XCTest

// What only the Swift surface can get wrong: the error enum and its codes,
// `Date` as the clock, descriptions, default arguments and object lifetimes,
// and the Swift shape of a payment approval on the phone (an enum with
// associated values to switch on, a refusal verdict to match). Behaviour
// (linking, codes, verifiers, challenges) is in the scenario files.

let rfcSecret = Data("12345678901234567890".utf8)

final class ErrorCodeTests: XCTestCase {
    /// `frozenCode` (Support.swift) switches over every case without a
    /// `default`; here its strings are checked against the table and docs.
    func testEveryCodeHasItsDocumentedString() throws {
        let codes = errorCodes()
        XCTAssertEqual(Set(codes).count, codes.count)
        XCTAssertEqual(Set(codes.map(frozenCode)).count, codes.count)
        let doc = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/ERRORS.md"), encoding: .utf8)
        for c in codes {
            let s = frozenCode(c)
            XCTAssertTrue(doc.contains("`\(s)`"), "\(s) is not in docs/ERRORS.md")
            // The Swift case name is the code in lowerCamelCase.
            let camel = String(describing: c)
            let snake = camel.reduce(into: "") { out, ch in
                if ch.isUppercase { out += "_" }
                out += ch.uppercased()
            }
            XCTAssertEqual(snake, s, camel)
        }
    }

    /// The API's own code string equals the frozen one; every code has a summary.
    func testCodeStringAndSummaryAreExported() {
        for c in errorCodes() {
            XCTAssertEqual(c.codeString(), frozenCode(c))
            XCTAssertFalse(c.summary().trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "no summary for \(c)")
        }
        XCTAssertEqual(ErrorCode.tokenExpired.codeString(), "TOKEN_EXPIRED")
    }

    /// `Verdict.check()`: nothing unless refused; a refusal throws its code and detail.
    func testVerdictCheckThrowsTheRefusal() throws {
        XCTAssertNoThrow(try Verdict.accepted.check())
        XCTAssertNoThrow(try Verdict.repeated.check())
        for c in [ErrorCode.checkCodeMismatch, .lockedOut, .otpReplayed] {
            let f = failure { try Verdict.refused(code: c, detail: "refused for the test").check() }
            XCTAssertEqual(f?.code, c)
            XCTAssertEqual(f?.detail, "refused for the test")
        }
        let config = OtpVerifierConfig(secret: rfcSecret)
        let refused = try verifyHotp(config: config, state: newVerifierState(), code: "000000", time: date(1_800_000_000))
        guard case .refused = refused.verdict else { return XCTFail("\(refused.verdict)") }
        XCTAssertEqual(failure { try refused.verdict.check() }?.code, .otpMismatch)
        let accepted = try verifyHotp(config: config, state: newVerifierState(), code: "755224", time: date(1_800_000_000))
        XCTAssertNoThrow(try accepted.verdict.check())
    }

    func testAThrownErrorCarriesItsCode() {
        do {
            _ = try hotp(secret: rfcSecret, counter: 0, digits: 3, algorithm: .sha1)
            XCTFail("digits 3 must be refused")
        } catch TesseraError.Failure(code: .invalidDigits, let detail) {
            XCTAssertFalse(detail.isEmpty)
        } catch {
            XCTFail("unexpected \(error)")
        }
        // The one case, matched exhaustively; the error is Equatable and a LocalizedError.
        do {
            _ = try totp(secret: rfcSecret, time: Date(), periodSeconds: 0, digits: 6, algorithm: .sha1)
            XCTFail("period 0 must be refused")
        } catch let e as TesseraError {
            switch e {
            case let .Failure(code, detail):
                XCTAssertEqual(code, .invalidTime)
                XCTAssertEqual(e, .Failure(code: .invalidTime, detail: detail))
                XCTAssertTrue((e.errorDescription ?? "").contains("invalidTime"), e.errorDescription ?? "nil")
                XCTAssertTrue(e.localizedDescription.contains(detail), e.localizedDescription)
            }
        } catch {
            XCTFail("unexpected \(error)")
        }
        XCTAssertEqual(failure { try base32Decode(text: "!!") }?.code, .invalidSecret)
        XCTAssertEqual(failure { try Device(storageKey: Data(count: 31)) }?.code, .invalidInput)
    }

    func testARefusalVerdictCarriesItsCode() throws {
        let check = try verifyTotp(config: OtpVerifierConfig(secret: rfcSecret), state: newVerifierState(), code: "000000",
                                   time: date(1_700_000_000))
        guard case let .refused(code, detail) = check.verdict else { return XCTFail("\(check.verdict)") }
        XCTAssertEqual(code, .otpMismatch)
        XCTAssertFalse(detail.isEmpty)
        XCTAssertEqual(check.state.consecutiveFailures, 1)
    }
}

final class ClockTests: XCTestCase {
    /// A whole link and a device code with `Date()` as the clock.
    func testDateNowIsTheClock() throws {
        let portal = try Portal.generate(name: "Example Bank")
        let device = try Device(storageKey: newStorageKey())
        let now = Date()
        let offer = try portal.createOffer(account: "anna", settings: OfferSettings(), now: now)
        // Whole seconds: the sub-second part is dropped, then 300 s (the default).
        XCTAssertEqual(offer.expiresAt, date(secs(now) + 300))
        XCTAssertEqual(try device.scanLinkQr(qrText: offer.qrText, now: Date(), pinnedPortalKey: portal.publicKey()).expiresAt,
                       offer.expiresAt)
        let pending = try device.startLink(qrText: offer.qrText, choices: LinkChoices(deviceName: "Pixel", passcode: "493817"),
                                           currentState: nil, now: Date(), pinnedPortalKey: nil)
        XCTAssertGreaterThan(try pending.giveUpAt(), now)
        let request = try portal.openLinkRequest(request: pending.request())
        let answer = try request.accept(lookup: LinkLookup(offer: offer.change.writes.compactMap {
            if case let .offer(row, _) = $0 { return row } else { return nil }
        }.first, deviceKeySeen: false), now: Date())
        XCTAssertEqual(answer.verdict, .accepted)
        let finish = try pending.finish(answer: answer.answer)
        let pendings: [StoredPendingLink] = answer.change.writes.compactMap {
            if case let .pendingLink(row, _) = $0 { return row } else { return nil }
        }
        let confirmed = try portal.confirmLink(pendings: pendings, code: finish.checkCode, now: Date())
        XCTAssertEqual(confirmed.verdict, .accepted)
        let row = try XCTUnwrap(confirmed.device)
        XCTAssertLessThanOrEqual(abs(row.linkedAt.timeIntervalSinceNow), 60)
        let t = Date()
        let code = try device.code(state: finish.state, unlock: .passcode(passcode: "493817"), now: t)
        XCTAssertEqual(try portal.verifyDeviceCode(device: row, code: code, now: t).verdict, .accepted)
    }

    func testSubSecondsAreDroppedAndTimesOutsideTheYears2000To3000AreInvalid() throws {
        // RFC 6238: 94287082 at 59 s, and still at 59.999 s.
        XCTAssertEqual(try totp(secret: rfcSecret, time: Date(timeIntervalSince1970: 59.999), periodSeconds: 30, digits: 8,
                                algorithm: .sha1), "94287082")
        let portal = try Portal.generate(name: "P")
        for t in [Date(timeIntervalSince1970: -1), Date(timeIntervalSince1970: 0), Date.distantPast, Date.distantFuture] {
            XCTAssertEqual(failure { try portal.createOffer(account: "anna", settings: OfferSettings(), now: t) }?.code, .invalidTime,
                           "\(t)")
            // The host's clock is wrong, not the user's code: thrown, nothing counted.
            XCTAssertEqual(failure {
                try verifyTotp(config: OtpVerifierConfig(secret: rfcSecret), state: newVerifierState(), code: "000000", time: t)
            }?.code, .invalidTime, "\(t)")
        }
    }
}

final class DescriptionTests: XCTestCase {
    /// Objects and errors, whose descriptions we control, print no secret.
    func testObjectsAndErrorsPrintNoSecret() throws {
        let key = try newStorageKey()
        let device = try Device(storageKey: key)
        let portal = try Portal.generate(name: "Example Bank")
        let offer = try portal.createOffer(account: "anna", settings: OfferSettings(), now: Date())
        let passcode = "493817"
        let pending = try device.startLink(qrText: offer.qrText, choices: LinkChoices(deviceName: "Pixel", passcode: passcode, biometrics: true),
                                           currentState: nil, now: Date(), pinnedPortalKey: nil)
        let secrets = [passcode, hexString(key), hexString(portal.secret()), hexString(try XCTUnwrap(pending.biometricSecret()))]
        for text in [String(describing: device), String(reflecting: device), String(describing: portal), String(reflecting: portal),
                     String(describing: pending), String(reflecting: pending)] {
            for s in secrets { XCTAssertFalse(text.contains(s), "\(text) shows a secret") }
        }
        // A refused passcode is not repeated in the error.
        for weak in ["123456", "111111", "12345", "abcdef"] {
            do {
                _ = try device.startLink(qrText: offer.qrText, choices: LinkChoices(deviceName: "Pixel", passcode: weak),
                                         currentState: nil, now: Date(), pinnedPortalKey: nil)
                XCTFail("\(weak) must be refused")
            } catch let e as TesseraError {
                for text in [String(describing: e), String(reflecting: e), e.errorDescription ?? "", e.localizedDescription] {
                    XCTAssertFalse(text.contains(weak), "\(text) shows the passcode")
                }
            }
        }
    }

    /// Known limitation (README): the generated records are plain structs
    /// and enums, so Swift's default description prints every field, String
    /// secrets included (a passcode in `LinkChoices` or `Unlock.passcode`, an
    /// OCRA password); `Data` prints only its size. The Rust `Debug` impls
    /// that redact them do not cross the FFI. If this test fails, UniFFI
    /// redacts now: drop the limitation from the README.
    func testRecordDescriptionsPrintStringFieldsButNotBytes() throws {
        XCTAssertTrue(String(describing: LinkChoices(deviceName: "Pixel", passcode: "493817")).contains("493817"))
        XCTAssertTrue(String(describing: Unlock.passcode(passcode: "493817")).contains("493817"))
        let secret = try newOtpSecret()
        let config = String(describing: OtpVerifierConfig(secret: secret))
        XCTAssertFalse(config.contains(hexString(secret)), config)
        XCTAssertTrue(config.contains("20 bytes"), config)
        // Flow 3: a new authenticator's factory record holds its factory secret, as a String.
        let made = try OfflineAuthenticator(storageKey: newStorageKey()).create(serial: "TS00012345")
        XCTAssertTrue(String(describing: made).contains(made.factoryRecord))
    }
}

func hexString(_ d: Data) -> String { d.map { String(format: "%02x", $0) }.joined() }

final class GeneratedApiTests: XCTestCase {
    /// Rust's defaults arrive as Swift default arguments.
    func testRecordDefaults() {
        XCTAssertEqual(PasscodeRules(), PasscodeRules(minLen: 6, maxLen: 6, digitsOnly: true, biometricsAllowed: true))
        XCTAssertEqual(OfferSettings(), OfferSettings(ttlSeconds: nil, rules: nil, deviceCodes: nil))
        XCTAssertEqual(DeviceCodeRules(), DeviceCodeRules(algorithm: nil, digits: 6, periodSeconds: 30))
        XCTAssertEqual(ChallengeSettings(), ChallengeSettings(digits: nil, ttlSeconds: nil))
        XCTAssertEqual(newVerifierState(), OtpVerifierState(lastAccepted: nil, nextCounter: 0, consecutiveFailures: 0, locked: false,
                                                            lockedUntil: nil))
        XCTAssertEqual(LinkChoices(deviceName: "P", passcode: "493817").biometrics, false)
        XCTAssertEqual(OcraParams(), OcraParams(counter: nil, question: nil, password: nil, session: nil, time: nil))
    }

    /// Swift frees an object with its last reference; a pending link outlives
    /// the device that made it and finishes after a device is dropped.
    func testObjectLifetimes() throws {
        let portal = try Portal.generate(name: "Example Bank")
        let key = try newStorageKey()
        let offer = try portal.createOffer(account: "anna", settings: OfferSettings(), now: Date())
        weak var weakDevice: Device?
        weak var weakPending: PendingLink?
        let request: String
        let saved: Data
        do {
            let pending: PendingLink
            do {
                let device = try Device(storageKey: key)
                weakDevice = device
                pending = try device.startLink(qrText: offer.qrText, choices: LinkChoices(deviceName: "P", passcode: "493817"),
                                               currentState: nil, now: Date(), pinnedPortalKey: nil)
            }
            XCTAssertNil(weakDevice, "Device was not freed")
            weakPending = pending
            request = try pending.request()
            saved = try pending.sealed()
        }
        XCTAssertNil(weakPending, "PendingLink was not freed")
        let row = offer.change.writes.compactMap { if case let .offer(r, _) = $0 { return r } else { return nil } }.first
        let answer = try portal.openLinkRequest(request: request).accept(lookup: LinkLookup(offer: row, deviceKeySeen: false),
                                                                         now: Date())
        let pending = try Device(storageKey: key).openPendingLink(sealed: saved)
        XCTAssertEqual(try pending.finish(answer: answer.answer).account.account, "anna")
        XCTAssertEqual(failure { try pending.finish(answer: answer.answer) }?.code, .alreadyConsumed)
    }
}

final class ChallengeTests: XCTestCase {
    /// Links a phone to "anna" (passcode `passcode`): the phone's state and the portal's device row.
    private func linkedPhone(_ portal: Portal, _ device: Device, passcode: String) throws -> (state: Data, row: StoredDevice) {
        let offer = try portal.createOffer(account: "anna", settings: OfferSettings(), now: Date())
        let pending = try device.startLink(qrText: offer.qrText, choices: LinkChoices(deviceName: "Anna's iPhone", passcode: passcode),
                                           currentState: nil, now: Date(), pinnedPortalKey: portal.publicKey())
        let offerRow = offer.change.writes.compactMap { if case let .offer(row, _) = $0 { return row } else { return nil } }.first
        let answer = try portal.openLinkRequest(request: pending.request())
            .accept(lookup: LinkLookup(offer: offerRow, deviceKeySeen: false), now: Date())
        let linked = try pending.finish(answer: answer.answer)
        // The portal set the device's time-based codes in its offer (here its defaults).
        XCTAssertEqual(linked.account.deviceCodes, DeviceCodeRules(algorithm: .sha256, digits: 6, periodSeconds: 30))
        let pendings = answer.change.writes.compactMap { if case let .pendingLink(row, _) = $0 { return row } else { return nil } }
        let confirmed = try portal.confirmLink(pendings: pendings, code: linked.checkCode, now: Date())
        try confirmed.verdict.check()
        return (linked.state, try XCTUnwrap(confirmed.device))
    }

    /// The device side of a payment approval (PSD2 dynamic linking): the
    /// phone reads the challenge QR code, shows exactly what is approved and
    /// gives the code to type for the passcode. A wrong passcode still gives
    /// a code; only the portal refuses it, as `.invalidAnswer`, which never
    /// says what was wrong.
    func testApprovingATransactionOnThePhone() throws {
        let portal = try Portal.generate(name: "Example Bank")
        let device = try Device(storageKey: newStorageKey())
        let linked = try linkedPhone(portal, device, passcode: "493817")
        let state = linked.state
        var deviceRow = linked.row

        // Portal: the payment, as a QR code only the account's devices can read.
        let issued = try portal.createChallenge(
            devices: [deviceRow],
            approval: .transaction(amount: "125.50", currency: "EUR", payee: "ACME Energy Ltd", text: ["Invoice 2026-118"]),
            settings: ChallengeSettings(), now: Date())
        guard issued.change.writes.count == 1, case let .challenge(inserted, nil)? = issued.change.writes.first else {
            return XCTFail("one challenge row insert expected: \(issued.change.writes)")
        }
        var challengeRow = inserted
        XCTAssertEqual(challengeRow.challengeId, issued.challengeId)
        XCTAssertEqual(challengeRow.deviceIds, [deviceRow.deviceId])
        XCTAssertEqual(challengeRow.status, .open)
        XCTAssertEqual(issued.change.events, [])

        /// Stores a change in the rows this test keeps, as compare-and-sets.
        func apply(_ change: PortalChange) {
            for w in change.writes {
                switch w {
                case let .challenge(row, expected):
                    XCTAssertEqual(expected, challengeRow.version)
                    challengeRow = row
                case let .device(row, expected):
                    XCTAssertEqual(expected, deviceRow.version)
                    deviceRow = row
                case .offer, .pendingLink, .authenticator, .order, .activation, .credentials:
                    XCTFail("unexpected write \(w)")
                }
            }
        }

        // Phone: what the user approves, before they approve it.
        let view = try device.readChallenge(state: state, qrText: issued.qrText, now: Date())
        XCTAssertEqual(view.portalName, "Example Bank")
        XCTAssertEqual(view.account, "anna")
        XCTAssertEqual(view.challengeId, issued.challengeId)
        XCTAssertEqual(view.expiresAt, issued.expiresAt)
        XCTAssertEqual(view.digits, 8)
        switch view.approval {
        case let .transaction(amount, currency, payee, text):
            XCTAssertEqual(amount, "125.50")                            // shown exactly as the portal sent it
            XCTAssertEqual(currency, "EUR")
            XCTAssertEqual(payee, "ACME Energy Ltd")
            XCTAssertEqual(text, ["Invoice 2026-118"])
        case .login, .linkDevice:
            XCTFail("a transaction was expected, not \(view.approval)")
        }

        // A wrong passcode: a code of the same shape that the portal refuses.
        let wrong = try device.answerChallenge(state: state, qrText: issued.qrText, unlock: .passcode(passcode: "000111"), now: Date())
        XCTAssertEqual(wrong.count, 8)
        let refused = try portal.verifyAnswer(challenge: challengeRow, devices: [deviceRow], answer: wrong, now: Date())
        apply(refused.change)                                           // stored whichever the verdict: it counts
        guard case let .refused(code: .invalidAnswer, detail: detail) = refused.verdict else {
            return XCTFail("expected .invalidAnswer, got \(refused.verdict)")
        }
        XCTAssertFalse(detail.contains("000111"), detail)
        XCTAssertNil(refused.deviceId)
        XCTAssertEqual(failure { try refused.verdict.check() }?.code, .invalidAnswer)
        XCTAssertEqual(challengeRow.status, .open)

        // The right passcode: approved once, by this device.
        let code = try device.answerChallenge(state: state, qrText: issued.qrText, unlock: .passcode(passcode: "493817"), now: Date())
        XCTAssertEqual(code.count, 8)
        XCTAssertTrue(code.allSatisfy(\.isNumber), code)
        let now = Date()
        let check = try portal.verifyAnswer(challenge: challengeRow, devices: [deviceRow], answer: code, now: now)
        apply(check.change)
        XCTAssertEqual(check.verdict, .accepted)
        XCTAssertEqual(check.deviceId, deviceRow.deviceId)
        XCTAssertEqual(check.change.events.count, 1)
        guard case let .challengeAnswered(account, challengeId, deviceId, at)? = check.change.events.first else {
            return XCTFail("\(check.change.events)")
        }
        XCTAssertEqual([account, challengeId, deviceId], ["anna", issued.challengeId, deviceRow.deviceId])
        XCTAssertEqual(at, date(secs(now)))
        XCTAssertEqual(challengeRow.status, .answered)
        let again = try portal.verifyAnswer(challenge: challengeRow, devices: [deviceRow], answer: code, now: Date())
        guard case .refused(code: .tokenAlreadyUsed, detail: _) = again.verdict else {
            return XCTFail("expected .tokenAlreadyUsed, got \(again.verdict)")
        }
    }
}

final class OfflineAuthenticatorTests: XCTestCase {
    /// Flow 3 from Swift: an app acting as an offline authenticator (the
    /// firmware's logic, `OfflineAuthenticator`) is imported, ordered and
    /// activated against the portal API, scanning each QR code and typing
    /// what it shows, step by step to `.done`. A wrong entry is a refusal
    /// with that step's own code (stored: it counts), and another device
    /// cannot read the activation's QR codes.
    func testAnAppActsAsAnOfflineAuthenticator() throws {
        let portal = try Portal.generate(name: "Example Bank")
        let settings = ActivationSettings(hashIterations: 10_000)     // the minimum: fast enough for a test
        let t0 = date(1_800_000_000)

        // The app: a new authenticator, and its line of a maker's file.
        let app = try OfflineAuthenticator(storageKey: newStorageKey())
        let made = try app.create(serial: "TS00012345")
        var state = made.state
        XCTAssertEqual(try app.info(state: state), AuthenticatorInfo(serial: "TS00012345", userId: nil, portalName: nil, deviceId: nil))
        XCTAssertTrue(made.factoryRecord.hasPrefix("TS00012345 "), "a factory record starts with the serial")

        // The portal's rows, changed only as compare-and-sets.
        var authenticators: [String: StoredAuthenticator] = [:]
        var orders: [String: StoredOrder] = [:]
        var activations: [String: StoredActivation] = [:]
        var credentials: [String: StoredCredentials] = [:]
        var devices: [String: StoredDevice] = [:]
        var events: [PortalEvent] = []
        func apply(_ change: PortalChange) {
            for w in change.writes {
                switch w {
                case let .authenticator(row, expected):
                    XCTAssertEqual(expected, authenticators[row.serial]?.version)
                    authenticators[row.serial] = row
                case let .order(row, expected):
                    XCTAssertEqual(expected, orders[row.userId]?.version)
                    orders[row.userId] = row
                case let .activation(row, expected):
                    XCTAssertEqual(expected, activations[row.activationId]?.version)
                    activations[row.activationId] = row
                case let .credentials(row, expected):
                    XCTAssertEqual(expected, credentials[row.account]?.version)
                    credentials[row.account] = row
                case let .device(row, expected):
                    XCTAssertEqual(expected, devices[row.deviceId]?.version)
                    devices[row.deviceId] = row
                case .offer, .pendingLink, .challenge:
                    XCTFail("unexpected write \(w)")
                }
            }
            events += change.events
        }

        // Import: the maker's file; the serials already held are passed in.
        let file = "tessera-factory-records v1\n\(made.factoryRecord)\n"
        XCTAssertEqual(try factoryFileSerials(file: file), ["TS00012345"])
        let imported = try portal.importDevices(file: file, alreadyImported: [], now: t0)
        XCTAssertEqual(imported.serials, ["TS00012345"])
        apply(imported.change)
        XCTAssertEqual(authenticators["TS00012345"]?.status, .inStock)
        XCTAssertEqual(failure { try portal.importDevices(file: file, alreadyImported: ["TS00012345"], now: t0) }?.code,
                       .duplicateRecord)

        // Order: the letter (user ID, initial password) goes out with the device.
        let order = try portal.orderDevice(account: "anna", activationCode: "271828",
                                           authenticator: try XCTUnwrap(authenticators["TS00012345"]), settings: settings,
                                           now: t0 + 10)
        apply(order.change)
        XCTAssertEqual(order.serial, "TS00012345")
        XCTAssertEqual(order.userId.count, 10)
        XCTAssertTrue(order.userId.allSatisfy(\.isNumber), order.userId)
        XCTAssertEqual(order.initialPassword.count, 14)                 // ABCD-EFGH-JKLM
        XCTAssertEqual(orders[order.userId]?.status, .ordered)
        XCTAssertEqual(authenticators["TS00012345"]?.status, .assigned)

        // Start: the first QR code.
        var update = try portal.startActivation(order: try XCTUnwrap(orders[order.userId]),
                                                authenticator: try XCTUnwrap(authenticators[order.serial]),
                                                settings: settings, now: t0 + 60)
        apply(update.change)
        XCTAssertEqual(update.verdict, .accepted)
        XCTAssertEqual(update.step, .deviceCode)
        let firstQr = try XCTUnwrap(update.qrText)
        let id = update.activationId

        var clock = t0 + 60
        /// The user's entry for the current step, with the rows read from the store.
        func next(_ input: String) throws -> ActivationUpdate {
            clock += 5
            let row = try XCTUnwrap(activations[id])
            let u = try portal.activationNext(activation: row, order: try XCTUnwrap(orders[row.userId]),
                                              authenticator: try XCTUnwrap(authenticators[row.serial]),
                                              credentials: credentials[row.account], input: input, settings: settings,
                                              now: clock)
            apply(u.change)                                             // whichever the verdict
            XCTAssertEqual(u.activationId, id)
            return u
        }
        /// The app scans a QR code: store its new state every time.
        func scan(_ qr: String?) throws -> AuthenticatorScreen {
            let screen = try app.scan(state: state, qrText: try XCTUnwrap(qr, "this step shows a QR code"))
            state = screen.state
            return screen
        }

        // 1. The device code, 10 digits. A wrong one first: refused with its own code, counted, same step.
        var screen = try scan(firstQr)
        XCTAssertEqual(screen.kind, .deviceCode)
        XCTAssertEqual(screen.portalName, "Example Bank")
        XCTAssertEqual(screen.code.count, 10)
        XCTAssertNil(screen.userId)
        let wrong = try next(wrongCode(screen.code))
        guard case .refused(code: .deviceCodeMismatch, detail: _) = wrong.verdict else {
            return XCTFail("expected .deviceCodeMismatch, got \(wrong.verdict)")
        }
        XCTAssertEqual(failure { try wrong.verdict.check() }?.code, .deviceCodeMismatch)
        XCTAssertEqual(wrong.step, .deviceCode)
        XCTAssertEqual(wrong.qrText, firstQr)                           // show the same QR code again
        XCTAssertEqual(activations[id]?.failures, 1)
        XCTAssertEqual(activations[id]?.status, .open)
        // Another device cannot read this activation's QR codes.
        let other = try OfflineAuthenticator(storageKey: newStorageKey())
        let otherState = try other.create(serial: "TS00067890").state
        XCTAssertEqual(failure { try other.scan(state: otherState, qrText: firstQr) }?.code, .notForThisDevice)
        update = try next(screen.code)
        XCTAssertEqual(update.verdict, .accepted)
        XCTAssertEqual(update.step, .activationCode)
        XCTAssertNil(update.qrText)

        // 2. The activation code chosen when ordering.
        update = try next("271828")
        XCTAssertEqual(update.step, .bindingCode)

        // 3. The binding QR code: the app is bound to this user; 8 digits.
        screen = try scan(update.qrText)
        XCTAssertEqual(screen.kind, .bindingCode)
        XCTAssertEqual(screen.userId, order.userId)
        XCTAssertEqual(screen.code.count, 8)
        XCTAssertFalse(screen.replaced)
        XCTAssertEqual(failure { try other.scan(state: otherState, qrText: try XCTUnwrap(update.qrText)) }?.code, .notForThisDevice)
        update = try next(screen.code)
        XCTAssertEqual(update.step, .serial)

        // 4. The serial number from the back of the device.
        update = try next("TS00012345")
        XCTAssertEqual(update.step, .testOtp)

        // 5. A test challenge, answered as any later login.
        screen = try scan(update.qrText)
        XCTAssertEqual(screen.kind, .challenge)
        XCTAssertEqual(screen.approval, .login)
        update = try next(screen.code)
        XCTAssertEqual(update.step, .initialPassword)

        // 6. The letter's initial password, 7. a new password.
        update = try next(order.initialPassword)
        XCTAssertEqual(update.step, .newPassword)
        update = try next("correct horse battery staple")
        XCTAssertEqual(update.verdict, .accepted)
        XCTAssertEqual(update.step, .done)
        XCTAssertNil(update.qrText)
        XCTAssertEqual(update.recoveryCodes.count, 10)
        let deviceId = try XCTUnwrap(update.deviceId)
        let usableFrom = try XCTUnwrap(update.usableFrom)
        XCTAssertEqual(usableFrom, clock + 4 * 3600)                    // the default delay
        guard case let .deviceActivated(account, activated, serial, from, at)? = events.last else {
            return XCTFail("\(events)")
        }
        XCTAssertEqual([account, activated, serial], ["anna", deviceId, "TS00012345"])
        XCTAssertEqual([from, at], [usableFrom, clock])

        // The stored rows, and the app's binding.
        XCTAssertEqual(activations[id]?.status, .done)
        XCTAssertEqual(orders[order.userId]?.status, .activated)
        XCTAssertEqual(authenticators["TS00012345"]?.status, .active)
        let device = try XCTUnwrap(devices[deviceId])
        XCTAssertEqual(device.account, "anna")
        XCTAssertEqual(device.serial, "TS00012345")
        XCTAssertEqual(device.usableFrom, usableFrom)
        XCTAssertEqual(try app.info(state: state),
                       AuthenticatorInfo(serial: "TS00012345", userId: order.userId, portalName: "Example Bank", deviceId: deviceId))
        XCTAssertEqual(try portal.activationStatus(activation: try XCTUnwrap(activations[id])).step, .done)

        // The account's password and recovery codes.
        let row = try XCTUnwrap(credentials["anna"])
        XCTAssertEqual(row.recoveryCodesLeft, 10)
        XCTAssertEqual(try portal.verifyPassword(credentials: row, password: "correct horse battery staple", now: clock).verdict,
                       .accepted)
        let redeemed = try portal.redeemRecoveryCode(credentials: row, code: update.recoveryCodes[0], now: clock)
        XCTAssertEqual(redeemed.verdict, .accepted)
        XCTAssertEqual(redeemed.recoveryCodesLeft, 9)
    }
}
