import Foundation
import Tessera
import XCTest

// The Swift examples of bindings-swift/README.md, verbatim (the test below
// checks it), inside stubs that give them their app: so the README cannot
// drift from the generated API. The OTP example also runs.

/// Stubs of a phone app.
final class PhoneExample {
    let keyFromKeychain = Data(count: 32)
    let qr = "TS:…"
    let passcode = "493817"
    let savedState: Data? = nil
    func show(_ parts: String...) {}
    func save(_ blob: Data) {}
    func load() -> Data { Data() }
    func keepBehindBiometrics(_ secret: Data?) {}
    func send(_ message: String) throws -> String { message }

    func readmeExample() throws {
        let device = try Device(storageKey: keyFromKeychain)            // newStorageKey() once, kept in the keychain
        let offer = try device.scanLinkQr(qrText: qr, now: Date(), pinnedPortalKey: nil)
        show(offer.portalName, offer.portalFingerprint)                 // link to this portal?
        let pending = try device.startLink(qrText: qr,
                                           choices: LinkChoices(deviceName: "Anna's iPhone", passcode: passcode, biometrics: true),
                                           currentState: savedState, now: Date(), pinnedPortalKey: nil)
        save(try pending.sealed())                                      // until the answer arrives
        keepBehindBiometrics(pending.biometricSecret())                 // only right after startLink
        let answer = try send(try pending.request())                    // the same request again if the answer is lost
        do {
            let linked = try pending.finish(answer: answer)
            save(linked.state)
            show(linked.checkCode)                                      // the user types it on the portal
        } catch TesseraError.Failure(.tokenExpired, _), TesseraError.Failure(.tokenAlreadyUsed, _) {
            show("Scan a new QR code")
        } catch TesseraError.Failure(let code, let detail) {
            show("\(code)", detail)                                     // .messageTampered: finish again with the genuine answer
        }

        // Later: the code the portal asks for, and whether the link still exists.
        let state = load()
        show(try device.code(state: state, unlock: .passcode(passcode: passcode), now: Date()))
        let probe = try device.statusRequest(state: state, now: Date())
        switch try probe.read(answer: try send(probe.request())) {
        case .active: break
        case .awaitingConfirmation: show("Type the check code on the portal")
        }                                                               // throws .deviceRevoked, .linkNotConfirmed: wipe
    }
}

/// Stubs of a portal: its database and its messages.
final class PortalExample {
    final class Database {
        @discardableResult func apply(_ change: PortalChange) throws -> Bool { true }
        func offer(id: String) -> StoredOffer? { nil }
        func hasPendingOrDevice(id: String) -> Bool { false }
        func openPendingLinks(account: String) -> [StoredPendingLink] { [] }
        func device(id: String) throws -> StoredDevice { throw ScenarioFailure("no device \(id)") }
    }

    let db = Database()
    let secretFromVault = Data(count: 32)
    let fromPhone = ""
    let typed = "123456"
    let typedCode = "123456"
    let deviceId = "0011223344556677"
    func show(_ parts: String...) {}
    func reply(_ message: String) {}
    func notify(_ account: String, _ deviceName: String) {}

    func readmeExample() throws {
        let portal = try Portal.fromSecret(secret: secretFromVault, name: "Example Bank")

        let offer = try portal.createOffer(account: "anna", settings: OfferSettings(), now: Date())
        try db.apply(offer.change)                                      // inserts the offer row
        show(try qrSvg(text: offer.qrText))

        // A phone's link request, with the rows it needs read in one snapshot.
        let request = try portal.openLinkRequest(request: fromPhone)
        let lookup = LinkLookup(offer: db.offer(id: request.offerId()),
                                deviceKeySeen: db.hasPendingOrDevice(id: request.deviceId()))
        let answer = try request.accept(lookup: lookup, now: Date())
        let stored = try db.apply(answer.change)                        // false: still conflicting after retries
        reply(stored ? answer.answer : answer.ifNotStored)
        for case let .linkRequested(account, _, deviceName, _) in answer.change.events { notify(account, deviceName) }

        // The check code typed on the portal, against every open pending link of the account.
        let confirmation = try portal.confirmLink(pendings: db.openPendingLinks(account: "anna"), code: typed, now: Date())
        try db.apply(confirmation.change)                               // a refusal too: attempts count
        switch confirmation.verdict {
        case .accepted: show("Linked", confirmation.device?.name ?? "")
        case .repeated: break
        case let .refused(code, detail): show("\(code)", detail)        // .checkCodeMismatch, .lockedOut, .tokenExpired, …
        }

        let check = try portal.verifyDeviceCode(device: db.device(id: deviceId), code: typedCode, now: Date())
        try db.apply(check.change)                                      // replay and lockout state, whichever the verdict
    }
}

/// Stubs of a portal and a phone around a challenge.
final class ChallengeExample {
    final class Database {
        @discardableResult func apply(_ change: PortalChange) throws -> Bool { true }
        func devices(account: String) -> [StoredDevice] { [] }
        func devices(ids: [String]) -> [StoredDevice] { [] }
        func challenge(id: String) throws -> StoredChallenge { throw ScenarioFailure("no challenge \(id)") }
    }

    let db = Database()
    let portal: Portal
    let device: Device
    let state = Data()
    let scanned = "TS:…"
    let passcode = "493817"
    let typed = "12345678"
    func show(_ parts: String...) {}
    func notify(_ account: String) {}

    init() throws {
        portal = try Portal.generate(name: "Example Bank")
        device = try Device(storageKey: newStorageKey())
    }

    func readmeExample() throws {
        // Portal: a payment to approve, as a QR code on the logged-in computer.
        let issued = try portal.createChallenge(devices: db.devices(account: "anna"),
                                                approval: .transaction(amount: "125.50", currency: "EUR",
                                                                       payee: "ACME Energy Ltd", text: ["Invoice 2026-118"]),
                                                settings: ChallengeSettings(), now: Date())
        try db.apply(issued.change)                                     // inserts the challenge row
        show(try qrSvg(text: issued.qrText))

        // Phone: exactly what is approved, then the code to type on the portal.
        let view = try device.readChallenge(state: state, qrText: scanned, now: Date())   // .notForThisDevice: another device's
        if case let .transaction(amount, currency, payee, _) = view.approval { show("Pay \(amount) \(currency) to \(payee)?") }
        show(try device.answerChallenge(state: state, qrText: scanned, unlock: .passcode(passcode: passcode), now: Date()))

        // Portal: the typed code, with the challenge row and its devices' rows (one snapshot).
        let row = try db.challenge(id: issued.challengeId)
        let check = try portal.verifyAnswer(challenge: row, devices: db.devices(ids: row.deviceIds), answer: typed, now: Date())
        try db.apply(check.change)                                      // a refusal too: single use, lockout count
        switch check.verdict {
        case .accepted: show("Approved by", check.deviceId ?? "")
        case .repeated: break
        case let .refused(code, _): show("\(code)")                     // .invalidAnswer (never says why), .lockedOut, .deviceCloned, …
        }
        for case let .deviceLocked(account, _, _) in check.change.events { notify(account) }  // re-identify, then portal.unlockDevice
    }
}

/// Stubs of an OTP verifier's host.
final class OtpExample {
    let storedState = newVerifierState()
    let typed = "123456"
    var shown: [String] = []
    var stored: OtpVerifierState?
    func show(_ parts: String...) { shown += parts }
    func store(_ state: OtpVerifierState) { stored = state }

    func readmeExample() throws {
        let text = "otpauth://totp/ACME:anna?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME"
        let key = try parseOtpauthUri(uri: text)                        // kind, issuer, account, secret, algorithm, digits
        show(key.account, try otpauthCode(uri: text, time: Date()))

        // A verifier: store the new state after every check, accepted or not.
        let check = try verifyTotp(config: OtpVerifierConfig(secret: key.secret), state: storedState, code: typed, time: Date())
        store(check.state)
        if case let .refused(code, _) = check.verdict { show("\(code)") }  // .otpMismatch, .otpReplayed, .lockedOut, …
    }
}

final class ReadmeExampleTests: XCTestCase {
    /// Every ```swift block of the README (without its imports) is in this file, line for line.
    func testTheReadmeExamplesAreTheseOnes() throws {
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("bindings-swift/README.md"), encoding: .utf8)
        let here = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let lines = { (s: Substring) in s.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
        let source = lines(here[...])
        let blocks = readme.components(separatedBy: "```swift\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        XCTAssertEqual(blocks.count, 4)
        for block in blocks {
            let want = lines(block[...]).filter { !$0.hasPrefix("import ") }
            let found = source.indices.contains { i in source[i...].starts(with: want) }
            XCTAssertTrue(found, "README block not in ReadmeExamples.swift:\n\(want.joined(separator: "\n"))")
        }
    }

    func testTheOtpExampleRuns() throws {
        let app = OtpExample()
        try app.readmeExample()
        XCTAssertEqual(app.shown.first, "anna")
        XCTAssertEqual(app.shown[1].count, 6)
        XCTAssertTrue(app.shown[1].allSatisfy(\.isNumber), app.shown[1])
        XCTAssertNotNil(app.stored, "the state is stored whichever the verdict")
    }
}
