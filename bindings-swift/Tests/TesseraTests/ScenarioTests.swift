import Foundation
import Tessera
import XCTest

// The scenario runner of the Swift binding: every vectors/scenarios/*.json
// (format: vectors/scenarios/README.md) through the generated Swift API, with
// the same world and semantics as the Rust runner (host/tests/scenarios.rs):
// one portal over an in-memory store that applies each change as
// compare-and-sets (offer, pending-link, device and challenge rows; for
// flow 3 authenticator, order, activation and credentials rows), phones by
// name, offline authenticators ("tokens") by name, saved QR texts (a
// challenge's var also names its row, an activation's var its activation),
// orders by var, OTP verifiers by name.
// A file fails on an unknown op or key; a failure names the file and step.

/// A scenario file that does not hold, or a step that does not meet its expectation.
struct ScenarioFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

typealias JSONObject = [String: Any]

/// The scenario folder: vectors/scenarios, or TESSERA_SCENARIOS.
var scenariosURL: URL { vectorsURL("scenarios", env: "TESSERA_SCENARIOS") }

/// A compact rendering of a JSON value for failure messages.
func render(_ v: Any?) -> String {
    guard let v else { return "absent" }
    if let s = v as? String { return "\"\(s)\"" }
    if JSONSerialization.isValidJSONObject(v),
       let d = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys]),
       let s = String(data: d, encoding: .utf8) {
        return s
    }
    return "\(v)"
}

/// Whether a JSON value equals an observed value (String, Int64, arrays and objects of them).
func sameJSON(_ expected: Any, _ actual: Any) -> Bool {
    switch (expected, actual) {
    case let (e as String, a as String): return e == a
    case let (e as [Any], a as [Any]):
        return e.count == a.count && zip(e, a).allSatisfy { sameJSON($0, $1) }
    case let (e as JSONObject, a as JSONObject):
        return Set(e.keys) == Set(a.keys) && e.allSatisfy { k, v in sameJSON(v, a[k]!) }
    case let (e as NSNumber, a as Bool): return jsonNumberType(e) == "c" && e.boolValue == a
    case let (e as NSNumber, a as Int64): return (try? jsonInt(e, "")) == a
    default: return false
    }
}

/// The inputs each op takes (besides `do`, `at`, `expect`, `events`, `skip`)
/// and the keys its `expect` object may name; nil: an unknown op.
func opKeys(_ op: String) -> (inputs: Set<String>, expect: Set<String>)? {
    switch op {
    case "portal": return (["name"], [])
    case "offer": return (["account", "ttl", "rules", "deviceCodes", "save"], [])
    case "offerNewDevice": return (["account", "save"], [])
    case "challenge": return (["account", "phone", "approval", "digits", "ttl", "save"], [])
    case "linkChallenge": return (["phone", "digits", "ttl", "save"], [])
    case "readChallenge": return (["phone", "qr", "edit"], ["portalName", "account", "approval", "digits"])
    case "answer": return (["phone", "qr", "passcode", "biometric", "signed", "edit"], [])
    case "verify": return (["challenge", "answer", "edit"], ["device"])
    case "vouch": return (["phone", "challenge", "answer", "edit"], [])
    case "unlockDevice": return (["phone"], [])
    case "clone": return (["phone", "from"], [])
    case "scan": return (["phone", "qr", "pinned", "edit"], ["portalName", "expiresAt"])
    case "startLink": return (["phone", "qr", "name", "passcode", "biometrics", "pinned", "edit"], [])
    case "accept": return (["phone", "edit", "offer", "deviceKeySeen"], [])
    case "finish": return (["phone", "edit", "answer"], [])
    case "confirm": return (["account", "code"], [])
    case "devices": return (["account"], ["devices"])
    case "rename": return (["phone", "name"], [])
    case "unlink": return (["phone", "token"], [])
    case "activationSettings": return (["settings"], [])
    case "token": return (["token", "serial"], [])
    case "importDevices": return (["tokens", "lines", "header"], ["serials"])
    case "order": return (["account", "activationCode", "token", "save"], [])
    case "activationStart": return (["order", "save"], ["step", "qr"])
    case "activationNext": return (["activation", "input"], ["step", "qr", "recoveryCodes"])
    case "tokenScan": return (["token", "qr", "edit"], ["kind", "digits", "portalName", "userId", "approval", "replaced"])
    case "verifyPassword": return (["account", "password"], [])
    case "redeemRecoveryCode": return (["account", "code"], ["left"])
    case "status": return (["phone", "edit", "again"], ["status"])
    case "deviceCode": return (["phone", "passcode", "biometric", "replay"], [])
    case "wipe": return (["phone"], [])
    case "hotp": return (["secret", "counter", "digits", "algorithm"], ["code"])
    case "totp": return (["secret", "period", "digits", "algorithm"], ["code"])
    case "verifyHotp", "verifyTotp": return (["verifier", "config", "state", "code"], ["matched", "drift"])
    case "resyncHotp": return (["verifier", "config", "state", "code1", "code2", "window"], ["matched", "drift"])
    case "unlock": return (["verifier"], [])
    default: return nil
    }
}

let commonKeys: Set<String> = ["do", "at", "expect", "events", "skip"]

/// One step: its op, its keys (checked against the op's), typed accessors.
struct Step {
    let raw: JSONObject
    let op: String
    let expectKeys: Set<String>

    init(_ raw: JSONObject) throws {
        self.raw = raw
        guard let op = raw["do"] as? String else { throw ScenarioFailure("a step needs \"do\" (a string)") }
        self.op = op
        guard let keys = opKeys(op) else { throw ScenarioFailure("unknown op \"\(op)\"") }
        expectKeys = keys.expect
        let unknown = Set(raw.keys).subtracting(commonKeys).subtracting(keys.inputs)
        if !unknown.isEmpty { throw ScenarioFailure("unknown key(s) \(unknown.sorted())") }
    }

    func string(_ k: String) throws -> String {
        guard let v = try optString(k) else { throw ScenarioFailure("missing input \"\(k)\"") }
        return v
    }

    func optString(_ k: String) throws -> String? {
        guard let v = raw[k] else { return nil }
        guard let s = v as? String else { throw ScenarioFailure("\"\(k)\" must be a string, not \(render(v))") }
        return s
    }

    func int(_ k: String) throws -> Int64 {
        guard let v = try optInt(k) else { throw ScenarioFailure("missing input \"\(k)\"") }
        return v
    }

    func optInt(_ k: String) throws -> Int64? { try jsonInt(raw[k], k) }

    func bool(_ k: String) throws -> Bool {
        guard let v = raw[k] else { return false }
        return try jsonBool(v, k)
    }

    func object(_ k: String) throws -> JSONObject? {
        guard let v = raw[k] else { return nil }
        guard let o = v as? JSONObject else { throw ScenarioFailure("\"\(k)\" must be an object, not \(render(v))") }
        return o
    }

    /// The step's clock, `at` (Unix seconds), as a `Date`.
    func at() throws -> Date {
        guard let t = try jsonInt(raw["at"], "at") else { throw ScenarioFailure("missing \"at\"") }
        guard t >= 0 else { throw ScenarioFailure("\"at\" must be Unix seconds, not \(t)") }
        return date(t)
    }
}

/// The Foundation type code of a JSON number: "c" for true/false
/// (`__NSCFBoolean`), "d" for a fraction or exponent, an integer type else.
func jsonNumberType(_ v: Any) -> String? {
    guard let n = v as? NSNumber else { return nil }
    return String(cString: n.objCType)
}

/// An integer (not a boolean, not a number written with a fraction), as the Rust runner's `as_i64`.
func jsonInt(_ v: Any?, _ k: String) throws -> Int64? {
    guard let v else { return nil }
    guard !(v is String), let t = jsonNumberType(v), !["c", "d", "f"].contains(t), let n = v as? NSNumber else {
        throw ScenarioFailure("\"\(k)\" must be an integer, not \(render(v))")
    }
    return n.int64Value
}

func jsonBool(_ v: Any, _ k: String) throws -> Bool {
    guard jsonNumberType(v) == "c", let b = v as? Bool else { throw ScenarioFailure("\"\(k)\" must be true or false, not \(render(v))") }
    return b
}

/// What a step expects (`expect`, absent: `"ok"`).
enum Expectation {
    case ok
    case accepted
    case repeated
    case refused(String)
    case error(String)
    /// Op-specific values (`{"code": …}`, `{"status": …}`, …).
    case values(JSONObject)

    init(_ v: Any?) throws {
        switch v {
        case nil: self = .ok
        case let s as String:
            switch s {
            case "ok": self = .ok
            case "accepted": self = .accepted
            case "repeated": self = .repeated
            default: throw ScenarioFailure("unknown expectation \"\(s)\"")
            }
        case let o as JSONObject:
            if o.count == 1, let c = o["refused"] {
                guard let c = c as? String else { throw ScenarioFailure("\"refused\" must be a code string") }
                self = .refused(c)
            } else if o.count == 1, let c = o["error"] {
                guard let c = c as? String else { throw ScenarioFailure("\"error\" must be a code string") }
                self = .error(c)
            } else if o["refused"] != nil || o["error"] != nil {
                throw ScenarioFailure("\"refused\"/\"error\" stand alone in an expectation: \(render(o))")
            } else {
                self = .values(o)
            }
        default: throw ScenarioFailure("unknown expectation \(render(v))")
        }
    }
}

extension Expectation: CustomStringConvertible {
    var description: String {
        switch self {
        case .ok: return "ok"
        case .accepted: return "accepted"
        case .repeated: return "repeated"
        case let .refused(c): return "refused \(c)"
        case let .error(c): return "error \(c)"
        case let .values(v): return render(v)
        }
    }
}

/// What an op observed: the verdict (ops that judge an input) and the values
/// an op-specific expectation may name.
struct Observed {
    var verdict: Verdict?
    var values: [String: Any] = [:]
}

/// The portal's store: rows by key, changed only by compare-and-set writes.
final class ScenarioStore {
    var offers: [String: StoredOffer] = [:]
    var pending: [String: StoredPendingLink] = [:]
    var devices: [String: StoredDevice] = [:]
    var challenges: [String: StoredChallenge] = [:]
    /// Flow 3: authenticators by serial, orders by user ID, activations by
    /// activation id, credentials by account.
    var authenticators: [String: StoredAuthenticator] = [:]
    var orders: [String: StoredOrder] = [:]
    var activations: [String: StoredActivation] = [:]
    var credentials: [String: StoredCredentials] = [:]

    /// Applies every write of a change, all or nothing: an insert needs a new
    /// key, an update the stored version it expects.
    func apply(_ change: PortalChange) throws {
        var offers = self.offers, pending = self.pending, devices = self.devices, challenges = self.challenges
        var authenticators = self.authenticators, orders = self.orders, activations = self.activations
        var credentials = self.credentials
        func cas(_ what: String, _ key: String, _ stored: Int64?, _ expected: Int64?) throws {
            switch (stored, expected) {
            case (nil, nil): return
            case let (s?, nil): throw ScenarioFailure("insert of \(what) \(key) conflicts: the row exists (version \(s))")
            case let (nil, e?): throw ScenarioFailure("update of \(what) \(key) expects version \(e): no such row")
            case let (s?, e?) where s != e: throw ScenarioFailure("update of \(what) \(key) expects version \(e), stored \(s)")
            default: return
            }
        }
        for w in change.writes {
            switch w {
            case let .offer(row, expected):
                try cas("offer", row.offerId, offers[row.offerId]?.version, expected)
                offers[row.offerId] = row
            case let .pendingLink(row, expected):
                try cas("pending link", row.deviceId, pending[row.deviceId]?.version, expected)
                pending[row.deviceId] = row
            case let .device(row, expected):
                try cas("device", row.deviceId, devices[row.deviceId]?.version, expected)
                devices[row.deviceId] = row
            case let .challenge(row, expected):
                try cas("challenge", row.challengeId, challenges[row.challengeId]?.version, expected)
                challenges[row.challengeId] = row
            case let .authenticator(row, expected):
                try cas("authenticator", row.serial, authenticators[row.serial]?.version, expected)
                authenticators[row.serial] = row
            case let .order(row, expected):
                try cas("order", row.userId, orders[row.userId]?.version, expected)
                orders[row.userId] = row
            case let .activation(row, expected):
                try cas("activation", row.activationId, activations[row.activationId]?.version, expected)
                activations[row.activationId] = row
            case let .credentials(row, expected):
                try cas("credentials", row.account, credentials[row.account]?.version, expected)
                credentials[row.account] = row
            }
        }
        self.offers = offers
        self.pending = pending
        self.devices = devices
        self.challenges = challenges
        self.authenticators = authenticators
        self.orders = orders
        self.activations = activations
        self.credentials = credentials
    }
}

/// A phone: its own storage key, and what it keeps between steps.
final class Phone {
    /// Replaced by `clone` (a copy of another phone's storage).
    var storageKey: Data
    var device: Device
    var pending: PendingLink?
    var request: String?
    var answer: String?
    var ifNotStored: String?
    var state: Data?
    var deviceId: String?
    var checkCode: String?
    var biometricSecret: Data?
    var lastCode: String?
    /// The last status probe and the portal's genuine answer to it.
    var lastStatus: (StatusProbe, String)?
    /// The last challenge answer: a typed code or a signed answer's text.
    var lastAnswer: String?

    init() throws {
        storageKey = try newStorageKey()
        device = try Device(storageKey: storageKey)
    }
}

func eventKind(_ e: PortalEvent) -> String {
    switch e {
    case .linkRequested: return "linkRequested"
    case .deviceLinked: return "deviceLinked"
    case .deviceRenamed: return "deviceRenamed"
    case .deviceUnlinked: return "deviceUnlinked"
    case .challengeAnswered: return "challengeAnswered"
    case .deviceLocked: return "deviceLocked"
    case .deviceCloneSuspected: return "deviceCloneSuspected"
    case .deviceActivated: return "deviceActivated"
    case .orderLocked: return "orderLocked"
    case .credentialsLocked: return "credentialsLocked"
    }
}

/// An offline authenticator (flow 3): an `OfflineAuthenticator` with its own
/// storage key, and what it keeps between steps.
final class Token {
    let app: OfflineAuthenticator
    var state: Data
    /// As `info` reads it from the state.
    let serial: String
    /// Its line of a factory file.
    let factoryRecord: String
    /// The last code it showed.
    var lastCode: String?
    /// Its registry id, from `info` after every scan (nil until bound).
    var deviceId: String?

    init(app: OfflineAuthenticator, state: Data, serial: String, factoryRecord: String) {
        self.app = app
        self.state = state
        self.serial = serial
        self.factoryRecord = factoryRecord
    }
}

/// An order's user ID and the letter's initial password.
struct OrderVar {
    let userId: String
    let initialPassword: String
}

/// `settings` of `activationSettings`: the API's `ActivationSettings` JSON
/// (each key optional, `null` as absent but for `blocklist`), unknown keys refused.
func activationSettings(_ o: JSONObject) throws -> ActivationSettings {
    try checkKeys(o, ["hashIterations", "usableAfterSeconds", "activationTtlSeconds", "orderTtlSeconds", "challengeDigits",
                      "passwordMinLength", "passwordMaxLength", "blocklist"], "settings")
    func int(_ k: String) throws -> Int64? { o[k] is NSNull ? nil : try jsonInt(o[k], k) }
    var blocklist: [String] = []
    if let b = o["blocklist"] {
        guard let list = b as? [Any], let words = list as? [String], words.count == list.count else {
            throw ScenarioFailure("\"blocklist\" must be a list of strings, not \(render(b))")
        }
        blocklist = words
    }
    return ActivationSettings(
        hashIterations: try int("hashIterations"), usableAfterSeconds: try int("usableAfterSeconds"),
        activationTtlSeconds: try int("activationTtlSeconds"), orderTtlSeconds: try int("orderTtlSeconds"),
        challengeDigits: try int32(try int("challengeDigits"), "challengeDigits"),
        passwordMinLength: try int32(try int("passwordMinLength"), "passwordMinLength"),
        passwordMaxLength: try int32(try int("passwordMaxLength"), "passwordMaxLength"),
        blocklist: blocklist)
}

/// An activation step in the API's JSON.
func stepJSON(_ s: ActivationStep) -> String {
    switch s {
    case .deviceCode: return "deviceCode"
    case .activationCode: return "activationCode"
    case .bindingCode: return "bindingCode"
    case .serial: return "serial"
    case .testOtp: return "testOtp"
    case .initialPassword: return "initialPassword"
    case .newPassword: return "newPassword"
    case .done: return "done"
    }
}

/// What an offline authenticator's screen shows, in the API's JSON.
func screenKindJSON(_ k: ScreenKind) -> String {
    switch k {
    case .deviceCode: return "deviceCode"
    case .bindingCode: return "bindingCode"
    case .challenge: return "challenge"
    }
}

func verdictText(_ v: Verdict) -> String {
    switch v {
    case .accepted: return "accepted"
    case .repeated: return "repeated"
    case let .refused(code, detail): return "refused \(frozenCode(code)) (\(detail))"
    }
}

/// `edit` on a text a step sends: "tamper" (the middle character) or "truncate" (the last 10).
func edited(_ text: String, _ edit: String?) throws -> String {
    switch edit {
    case nil: return text
    case "tamper":
        var chars = Array(text)
        guard !chars.isEmpty else { throw ScenarioFailure("nothing to tamper with") }
        let i = chars.count / 2
        chars[i] = chars[i] == "A" ? "B" : "A"
        return String(chars)
    case "truncate":
        return String(text.dropLast(10))
    case let e?: throw ScenarioFailure("unknown edit \"\(e)\"")
    }
}

func algorithm(_ v: Any, _ k: String) throws -> OtpAlgorithm {
    switch v as? String {
    case "sha1": return .sha1
    case "sha256": return .sha256
    case "sha512": return .sha512
    default: throw ScenarioFailure("\"\(k)\" must be sha1, sha256 or sha512, not \(render(v))")
    }
}

func hexField(_ v: Any?, _ k: String) throws -> Data {
    guard let s = v as? String, let d = hexBytes(s) else { throw ScenarioFailure("\"\(k)\" must be a hex string, not \(render(v))") }
    return d
}

func int32(_ v: Int64?, _ k: String) throws -> Int32? {
    guard let v else { return nil }
    guard let i = Int32(exactly: v) else { throw ScenarioFailure("\"\(k)\" is out of range") }
    return i
}

func checkKeys(_ o: JSONObject, _ allowed: Set<String>, _ what: String) throws {
    let unknown = Set(o.keys).subtracting(allowed)
    if !unknown.isEmpty { throw ScenarioFailure("unknown key(s) \(unknown.sorted()) in \(what)") }
}

/// An OTP verifier configuration in the API's shape (`secret` in hex).
func verifierConfig(_ o: JSONObject) throws -> OtpVerifierConfig {
    try checkKeys(o, ["secret", "algorithm", "digits", "periodSeconds", "window", "maxFailures", "lockSeconds"], "config")
    return OtpVerifierConfig(
        secret: try hexField(o["secret"], "secret"),
        algorithm: try o["algorithm"].map { try algorithm($0, "algorithm") },
        digits: try int32(try jsonInt(o["digits"], "digits"), "digits"),
        periodSeconds: try jsonInt(o["periodSeconds"], "periodSeconds"),
        window: try jsonInt(o["window"], "window"),
        maxFailures: try int32(try jsonInt(o["maxFailures"], "maxFailures"), "maxFailures"),
        lockSeconds: try jsonInt(o["lockSeconds"], "lockSeconds"))
}

/// An OTP verifier state in the API's shape (`lockedUntil` in Unix seconds).
func verifierState(_ o: JSONObject) throws -> OtpVerifierState {
    try checkKeys(o, ["lastAccepted", "nextCounter", "consecutiveFailures", "locked", "lockedUntil"], "state")
    return OtpVerifierState(
        lastAccepted: try jsonInt(o["lastAccepted"], "lastAccepted"),
        nextCounter: try jsonInt(o["nextCounter"], "nextCounter") ?? 0,
        consecutiveFailures: try int32(try jsonInt(o["consecutiveFailures"], "consecutiveFailures"), "consecutiveFailures") ?? 0,
        locked: try o["locked"].map { try jsonBool($0, "locked") } ?? false,
        lockedUntil: try jsonInt(o["lockedUntil"], "lockedUntil").map(date))
}

/// A code with every digit +1 mod 10 (other characters kept).
func wrongCode(_ code: String) -> String {
    String(code.map { ch in ch.wholeNumberValue.map { Character(String(($0 + 1) % 10)) } ?? ch })
}

/// `deviceCodes` of an offer: the API's `DeviceCodeRules` (`algorithm`,
/// `digits`, `periodSeconds`, each optional with the API's defaults).
func deviceCodeRules(_ o: JSONObject) throws -> DeviceCodeRules {
    try checkKeys(o, ["algorithm", "digits", "periodSeconds"], "deviceCodes")
    var r = DeviceCodeRules()
    if let v = o["algorithm"], !(v is NSNull) { r.algorithm = try algorithm(v, "algorithm") }
    if let v = try int32(try jsonInt(o["digits"], "digits"), "digits") { r.digits = v }
    if let v = try jsonInt(o["periodSeconds"], "periodSeconds") { r.periodSeconds = v }
    return r
}

/// `approval` of a challenge step in the API's JSON (`kind` `login`,
/// `transaction` with `amount`, `currency`, `payee` and optional `text`
/// lines, or `linkDevice`), unknown keys refused.
func approvalInput(_ v: Any?) throws -> Approval {
    guard let v else { throw ScenarioFailure("missing input \"approval\"") }
    guard let o = v as? JSONObject else { throw ScenarioFailure("\"approval\" must be an object, not \(render(v))") }
    func string(_ k: String) throws -> String {
        guard let s = o[k] as? String else { throw ScenarioFailure("approval needs \"\(k)\" (a string), not \(render(o[k]))") }
        return s
    }
    switch o["kind"] as? String {
    case "login":
        try checkKeys(o, ["kind"], "approval")
        return .login
    case "transaction":
        try checkKeys(o, ["kind", "amount", "currency", "payee", "text"], "approval")
        var text: [String] = []
        if let t = o["text"] {
            guard let lines = t as? [String] else { throw ScenarioFailure("approval \"text\" must be a list of strings, not \(render(t))") }
            text = lines
        }
        return .transaction(amount: try string("amount"), currency: try string("currency"), payee: try string("payee"), text: text)
    case "linkDevice":
        try checkKeys(o, ["kind", "deviceName", "deviceId"], "approval")
        return .linkDevice(deviceName: try string("deviceName"), deviceId: try string("deviceId"))
    default:
        throw ScenarioFailure("unknown approval kind \(render(o["kind"]))")
    }
}

/// An approval in the API's JSON (`text` always present for a transaction).
func approvalJSON(_ a: Approval) -> JSONObject {
    switch a {
    case .login:
        return ["kind": "login"]
    case let .transaction(amount, currency, payee, text):
        return ["kind": "transaction", "amount": amount, "currency": currency, "payee": payee, "text": text as [Any]]
    case let .linkDevice(deviceName, deviceId):
        return ["kind": "linkDevice", "deviceName": deviceName, "deviceId": deviceId]
    }
}

/// The world of one scenario file.
final class ScenarioWorld {
    var portal: Portal?
    var otherPortalKey: Data?
    let store = ScenarioStore()
    /// By name, in creation order (`"wrong"` uses the first phone with a check code).
    var phones: [(name: String, phone: Phone)] = []
    var vars: [String: String] = [:]
    /// Challenge ids by the var their QR text was saved under.
    var challengeIds: [String: String] = [:]
    var verifiers: [String: OtpVerifierState] = [:]
    /// Offline authenticators by name, in creation order.
    var tokens: [(name: String, token: Token)] = []
    /// Orders by the var they were saved under.
    var orders: [String: OrderVar] = [:]
    /// Of every later order, activationStart and activationNext (API defaults until `activationSettings`).
    var settings = ActivationSettings()
    /// Activation ids by var (the var itself holds the QR text of the activation's step).
    var activationIds: [String: String] = [:]
    /// The recovery codes an activation showed, by its var.
    var recoveryCodes: [String: [String]] = [:]
    /// Events of the current step's change.
    var stepEvents: [PortalEvent] = []

    func thePortal() throws -> Portal {
        guard let p = portal else { throw ScenarioFailure("no portal: a \"portal\" step comes first") }
        return p
    }

    func phone(named name: String) throws -> Phone {
        if let p = phones.first(where: { $0.name == name }) { return p.phone }
        let p = try Phone()
        phones.append((name, p))
        return p
    }

    func phone(_ s: Step) throws -> Phone { try phone(named: try s.string("phone")) }

    /// The saved QR text `qr`, edited as the step says.
    func qr(_ s: Step) throws -> String {
        let name = try s.string("qr")
        guard let v = vars[name] else { throw ScenarioFailure("no var \"\(name)\"") }
        return try edited(v, try s.optString("edit"))
    }

    /// `pinned`: absent/false: none; true: the portal's key; "other": another portal's key.
    func pinnedKey(_ s: Step) throws -> Data? {
        switch s.raw["pinned"] {
        case nil: return nil
        case let v as String where v == "other":
            if otherPortalKey == nil { otherPortalKey = try Portal.generate(name: "Other Portal").publicKey() }
            return otherPortalKey
        case let v?:
            return try jsonBool(v, "pinned") ? try thePortal().publicKey() : nil
        }
    }

    func store(_ change: PortalChange) throws {
        try store.apply(change)
        stepEvents += change.events
    }

    func deviceRow(_ p: Phone) throws -> StoredDevice {
        guard let id = p.deviceId else { throw ScenarioFailure("the phone was never linked") }
        guard let row = store.devices[id] else { throw ScenarioFailure("no device row for the phone") }
        return row
    }

    func state(_ p: Phone) throws -> Data {
        guard let st = p.state else { throw ScenarioFailure("the phone holds no state") }
        return st
    }

    /// The account's device rows, ordered by device id.
    func accountDevices(_ account: String) -> [StoredDevice] {
        store.devices.values.filter { $0.account == account }.sorted { $0.deviceId < $1.deviceId }
    }

    func pendingRow(_ p: Phone) throws -> StoredPendingLink {
        guard let id = p.deviceId, let row = store.pending[id] else { throw ScenarioFailure("the phone has no pending link row") }
        return row
    }

    /// The last challenge answer of the phone `name`, or else the last code of the token `name`.
    func lastAnswer(of name: String) throws -> String {
        let answer: String?
        if let p = phones.first(where: { $0.name == name }) {
            answer = p.phone.lastAnswer
        } else {
            answer = tokens.first(where: { $0.name == name })?.token.lastCode
        }
        guard let answer else { throw ScenarioFailure("phone or token \(name) has no answer") }
        return answer
    }

    /// The name of the (first) phone holding the device id.
    func phoneName(deviceId: String) -> String? {
        phones.first(where: { $0.phone.deviceId == deviceId })?.name
    }

    func token(named name: String) throws -> Token {
        guard let t = tokens.first(where: { $0.name == name }) else { throw ScenarioFailure("no token \(name)") }
        return t.token
    }

    func orderVar(_ name: String) throws -> OrderVar {
        guard let o = orders[name] else { throw ScenarioFailure("no order \"\(name)\"") }
        return o
    }

    /// Stores an activation update; the var names the activation and holds its step's QR text.
    func activationUpdate(_ name: String, _ u: ActivationUpdate) throws -> Observed {
        try store(u.change)
        activationIds[name] = u.activationId
        if let qr = u.qrText { vars[name] = qr }
        if !u.recoveryCodes.isEmpty { recoveryCodes[name] = u.recoveryCodes }
        return Observed(verdict: u.verdict, values: ["step": stepJSON(u.step), "qr": u.qrText != nil,
                                                     "recoveryCodes": Int64(u.recoveryCodes.count)])
    }

    /// Runs one op. A Tessera error propagates to the step's expectation; a
    /// `ScenarioFailure` (broken file, failed compare-and-set) fails the file.
    func perform(_ s: Step) throws -> Observed {
        var out = Observed()
        switch s.op {
        case "portal":
            guard portal == nil else { throw ScenarioFailure("a scenario has one portal") }
            portal = try Portal.generate(name: try s.string("name"))

        case "offer":
            let portal = try thePortal()
            var rules: PasscodeRules?
            if let r = try s.object("rules") {
                try checkKeys(r, ["minLen", "maxLen", "digitsOnly", "biometricsAllowed"], "rules")
                var p = PasscodeRules()
                if let v = try int32(try jsonInt(r["minLen"], "minLen"), "minLen") { p.minLen = v }
                if let v = try int32(try jsonInt(r["maxLen"], "maxLen"), "maxLen") { p.maxLen = v }
                if let v = r["digitsOnly"] { p.digitsOnly = try jsonBool(v, "digitsOnly") }
                if let v = r["biometricsAllowed"] { p.biometricsAllowed = try jsonBool(v, "biometricsAllowed") }
                rules = p
            }
            let settings = OfferSettings(ttlSeconds: try s.optInt("ttl"), rules: rules,
                                         deviceCodes: try s.object("deviceCodes").map(deviceCodeRules))
            let save = try s.string("save")
            let offer = try portal.createOffer(account: try s.string("account"), settings: settings, now: try s.at())
            try store(offer.change)
            vars[save] = offer.qrText

        case "scan":
            let p = try phone(s)
            let info = try p.device.scanLinkQr(qrText: try qr(s), now: try s.at(), pinnedPortalKey: try pinnedKey(s))
            out.values = ["portalName": info.portalName, "expiresAt": secs(info.expiresAt)]

        case "startLink":
            let p = try phone(s)
            let choices = LinkChoices(deviceName: try s.string("name"), passcode: try s.string("passcode"),
                                      biometrics: try s.bool("biometrics"))
            let pending = try p.device.startLink(qrText: try qr(s), choices: choices, currentState: p.state, now: try s.at(),
                                                 pinnedPortalKey: try pinnedKey(s))
            p.request = try pending.request()
            p.biometricSecret = pending.biometricSecret()
            p.answer = nil
            p.ifNotStored = nil
            p.pending = pending

        case "accept":
            let portal = try thePortal()
            let p = try phone(s)
            guard let sent = p.request else { throw ScenarioFailure("the phone has sent no request") }
            let request = try portal.openLinkRequest(request: try edited(sent, try s.optString("edit")))
            let id = request.deviceId()
            let offer: StoredOffer?
            switch try s.optString("offer") {
            case nil: offer = store.offers[request.offerId()]
            case "missing": offer = nil
            case let o?: throw ScenarioFailure("bad offer \"\(o)\"")
            }
            let seen = store.pending[id] != nil || store.devices[id] != nil
            let keySeen = try s.raw["deviceKeySeen"].map { try jsonBool($0, "deviceKeySeen") } ?? seen
            let lookup = LinkLookup(offer: offer, deviceKeySeen: keySeen)
            let answer = try request.accept(lookup: lookup, now: try s.at())
            try store(answer.change)
            p.answer = answer.answer
            p.ifNotStored = answer.ifNotStored
            out.verdict = answer.verdict

        case "finish":
            let p = try phone(s)
            guard let pending = p.pending else { throw ScenarioFailure("the phone has no pending link") }
            guard let answer = p.answer, let ifNotStored = p.ifNotStored else { throw ScenarioFailure("the phone has no answer") }
            let text: String
            switch try s.optString("answer") {
            case nil: text = answer
            case "ifNotStored": text = ifNotStored
            case let a?: throw ScenarioFailure("unknown answer \"\(a)\"")
            }
            let fin = try pending.finish(answer: try edited(text, try s.optString("edit")))
            p.state = fin.state
            p.checkCode = fin.checkCode
            p.deviceId = fin.account.deviceId

        case "confirm":
            let portal = try thePortal()
            let account = try s.string("account")
            let code = try checkCode(try s.string("code"))
            let open = store.pending.values.filter { $0.account == account && $0.status == .open }.sorted { $0.deviceId < $1.deviceId }
            let c = try portal.confirmLink(pendings: open, code: code, now: try s.at())
            try store(c.change)
            out.verdict = c.verdict

        case "devices":
            let account = try s.string("account")
            let rows = store.devices.values.filter { $0.account == account }.sorted { $0.name < $1.name }
            out.values = ["devices": rows.map { r -> JSONObject in
                ["name": r.name, "status": { switch r.status { case .active: "active"; case .unlinked: "unlinked" } }()]
            }]

        case "unlink" where s.raw["token"] != nil:
            let portal = try thePortal()
            let t = try token(named: try s.string("token"))
            guard let id = t.deviceId else { throw ScenarioFailure("the token was never bound") }
            guard let row = store.devices[id] else { throw ScenarioFailure("no device row for the token") }
            try store(try portal.unlinkDevice(device: row, now: try s.at()))

        case "rename", "unlink":
            let portal = try thePortal()
            let p = try phone(s)
            let row = try deviceRow(p)
            try store(s.op == "rename"
                ? try portal.renameDevice(device: row, name: try s.string("name"), now: try s.at())
                : try portal.unlinkDevice(device: row, now: try s.at()))

        case "status":
            let portal = try thePortal()
            let p = try phone(s)
            let probe: StatusProbe
            let genuine: String
            if try s.bool("again") {
                guard let last = p.lastStatus else { throw ScenarioFailure("no status request was sent") }
                (probe, genuine) = last
            } else {
                let state = try state(p)
                let now = try s.at()
                probe = try p.device.statusRequest(state: state, now: now)
                let id = try portal.statusRequestDevice(request: probe.request())
                let device = store.devices[id]
                let lookup = StatusLookup(device: device, pending: device == nil ? store.pending[id] : nil)
                genuine = try portal.answerStatus(request: probe.request(), lookup: lookup, now: now)
                p.lastStatus = (probe, genuine)
            }
            let status = try probe.read(answer: try edited(genuine, try s.optString("edit")))
            out.values = ["status": { switch status { case .active: "active"; case .awaitingConfirmation: "awaitingConfirmation" } }()]

        case "deviceCode":
            let portal = try thePortal()
            let p = try phone(s)
            let now = try s.at()
            let passcode = try s.optString("passcode")
            let biometric = try s.bool("biometric")
            let replay = try s.bool("replay")
            guard [passcode != nil, biometric, replay].filter({ $0 }).count == 1 else {
                throw ScenarioFailure("deviceCode takes exactly one of passcode, biometric: true, replay: true")
            }
            let code: String
            if replay {
                guard let last = p.lastCode else { throw ScenarioFailure("no previous code to replay") }
                code = last
            } else {
                let unlock: Unlock
                if let passcode {
                    unlock = .passcode(passcode: passcode)
                } else {
                    guard let secret = p.biometricSecret else { throw ScenarioFailure("the phone has no biometric secret") }
                    unlock = .biometric(secret: secret)
                }
                code = try p.device.code(state: try state(p), unlock: unlock, now: now)
                p.lastCode = code
            }
            let check = try portal.verifyDeviceCode(device: try deviceRow(p), code: code, now: now)
            try store(check.change)
            out.verdict = check.verdict

        case "wipe":
            let p = try phone(s)
            _ = try p.device.unlinkLocally(state: try state(p))
            p.state = nil
            p.biometricSecret = nil
            p.checkCode = nil
            p.lastCode = nil

        case "offerNewDevice":
            let portal = try thePortal()
            let account = try s.string("account")
            let save = try s.string("save")
            let offer = try portal.createOfferForNewDevice(account: account, devices: accountDevices(account),
                                                           settings: OfferSettings(), now: try s.at())
            try store(offer.change)
            vars[save] = offer.qrText

        case "challenge", "linkChallenge":
            let portal = try thePortal()
            let save = try s.string("save")
            let settings = ChallengeSettings(digits: try int32(try s.optInt("digits"), "digits"), ttlSeconds: try s.optInt("ttl"))
            let issued: ChallengeIssued
            if s.op == "challenge" {
                let account = try s.string("account")
                let rows = try s.optString("phone").map { [try deviceRow(try phone(named: $0))] } ?? accountDevices(account)
                let approval = try approvalInput(s.raw["approval"])
                issued = try portal.createChallenge(devices: rows, approval: approval, settings: settings, now: try s.at())
            } else {
                let pending = try pendingRow(try phone(s))
                issued = try portal.createLinkChallenge(pending: pending, devices: accountDevices(pending.account), settings: settings,
                                                        now: try s.at())
            }
            try store(issued.change)
            vars[save] = issued.qrText
            challengeIds[save] = issued.challengeId

        case "readChallenge":
            let p = try phone(s)
            let qr = try qr(s)
            let view = try p.device.readChallenge(state: try state(p), qrText: qr, now: try s.at())
            var approval = approvalJSON(view.approval)
            // A linkDevice approval names a phone: its device id reads as the phone's name.
            if let id = approval["deviceId"] as? String, let name = phoneName(deviceId: id) { approval["deviceId"] = name }
            out.values = ["portalName": view.portalName, "account": view.account, "approval": approval, "digits": Int64(view.digits)]

        case "answer":
            let p = try phone(s)
            let qr = try qr(s)
            let state = try state(p)
            let passcode = try s.optString("passcode")
            let biometric = try s.bool("biometric")
            let unlock: Unlock
            switch (passcode, biometric) {
            case let (passcode?, false):
                unlock = .passcode(passcode: passcode)
            case (nil, true):
                guard let secret = p.biometricSecret else { throw ScenarioFailure("the phone has no biometric secret") }
                unlock = .biometric(secret: secret)
            default:
                throw ScenarioFailure("answer takes exactly one of passcode, biometric: true")
            }
            let now = try s.at()
            if try s.bool("signed") {
                let signed = try p.device.signChallenge(state: state, qrText: qr, unlock: unlock, now: now)
                p.state = signed.state
                p.lastAnswer = signed.answer
            } else {
                p.lastAnswer = try p.device.answerChallenge(state: state, qrText: qr, unlock: unlock, now: now)
            }

        case "verify", "vouch":
            let portal = try thePortal()
            let name = try s.string("challenge")
            guard let id = challengeIds[name] else { throw ScenarioFailure("no challenge \"\(name)\"") }
            guard let row = store.challenges[id] else { throw ScenarioFailure("no challenge row for \"\(name)\"") }
            let who = try s.string("answer")
            let genuine: String
            if who.hasPrefix("wrong:") {
                genuine = wrongCode(try lastAnswer(of: String(who.dropFirst("wrong:".count))))
            } else {
                genuine = try lastAnswer(of: who)
            }
            let answer = try edited(genuine, try s.optString("edit"))
            let rows = row.deviceIds.compactMap { store.devices[$0] }
            let now = try s.at()
            if s.op == "verify" {
                let check = try portal.verifyAnswer(challenge: row, devices: rows, answer: answer, now: now)
                try store(check.change)
                out.verdict = check.verdict
                // The phone, or else the token, whose device id answered.
                if let id = check.deviceId,
                   let by = phoneName(deviceId: id) ?? tokens.first(where: { $0.token.deviceId == id })?.name {
                    out.values["device"] = by
                }
            } else {
                let pending = try pendingRow(try phone(s))
                let c = try portal.confirmWithAuthenticator(pending: pending, challenge: row, devices: rows, answer: answer, now: now)
                try store(c.change)
                out.verdict = c.verdict
            }

        case "unlockDevice":
            let portal = try thePortal()
            let p = try phone(s)
            try store(try portal.unlockDevice(device: try deviceRow(p), now: try s.at()))

        case "clone":
            // A thief's copy of a phone's storage: its key, state, device id and biometric secret.
            let from = try phone(named: try s.string("from"))
            let p = try phone(s)
            p.storageKey = from.storageKey
            p.device = try Device(storageKey: from.storageKey)
            p.state = from.state
            p.deviceId = from.deviceId
            p.biometricSecret = from.biometricSecret

        case "activationSettings":
            guard let o = try s.object("settings") else { throw ScenarioFailure("missing input \"settings\"") }
            settings = try activationSettings(o)

        case "token":
            let name = try s.string("token")
            guard !tokens.contains(where: { $0.name == name }) else { throw ScenarioFailure("token \(name) exists") }
            // A fresh app with its own storage key (a failure here is the runner's, not the step's).
            let app: OfflineAuthenticator
            do {
                app = try OfflineAuthenticator(storageKey: try newStorageKey())
            } catch {
                throw ScenarioFailure("no offline authenticator: \(error)")
            }
            let made = try app.create(serial: try s.string("serial"))
            let serial = try app.info(state: made.state).serial
            tokens.append((name, Token(app: app, state: made.state, serial: serial, factoryRecord: made.factoryRecord)))

        case "importDevices":
            let portal = try thePortal()
            guard let names = s.raw["tokens"] as? [Any] else { throw ScenarioFailure("\"tokens\" must be a list") }
            var lines = [try s.optString("header") ?? "tessera-factory-records v1"]
            for n in names {
                guard let n = n as? String else { throw ScenarioFailure("\"tokens\" holds names, not \(render(n))") }
                lines.append(try token(named: n).factoryRecord)
            }
            if let extra = s.raw["lines"] {
                guard let list = extra as? [Any] else { throw ScenarioFailure("\"lines\" must be a list, not \(render(extra))") }
                for l in list {
                    guard let l = l as? String else { throw ScenarioFailure("\"lines\" holds strings, not \(render(l))") }
                    lines.append(l)
                }
            }
            let file = lines.joined(separator: "\n") + "\n"
            // The file's serial numbers that already have a row.
            let known = try factoryFileSerials(file: file).filter { store.authenticators[$0] != nil }
            let imported = try portal.importDevices(file: file, alreadyImported: known, now: try s.at())
            try store(imported.change)
            out.values["serials"] = imported.serials

        case "order":
            let portal = try thePortal()
            let serial = try token(named: try s.string("token")).serial
            guard let row = store.authenticators[serial] else { throw ScenarioFailure("the token was not imported") }
            let order = try portal.orderDevice(account: try s.string("account"), activationCode: try s.string("activationCode"),
                                               authenticator: row, settings: settings, now: try s.at())
            try store(order.change)
            orders[try s.string("save")] = OrderVar(userId: order.userId, initialPassword: order.initialPassword)

        case "activationStart":
            let portal = try thePortal()
            let userId = try orderVar(try s.string("order")).userId
            guard let order = store.orders[userId] else { throw ScenarioFailure("no order row") }
            guard let auth = store.authenticators[order.serial] else { throw ScenarioFailure("no authenticator row") }
            let u = try portal.startActivation(order: order, authenticator: auth, settings: settings, now: try s.at())
            out = try activationUpdate(try s.string("save"), u)

        case "activationNext":
            let portal = try thePortal()
            let name = try s.string("activation")
            guard let id = activationIds[name] else { throw ScenarioFailure("no activation \"\(name)\"") }
            guard let row = store.activations[id] else { throw ScenarioFailure("no activation row") }
            guard let order = store.orders[row.userId] else { throw ScenarioFailure("no order row") }
            guard let auth = store.authenticators[row.serial] else { throw ScenarioFailure("no authenticator row") }
            let input: String
            switch s.raw["input"] {
            case let text as String:
                input = text
            case let ref as JSONObject where ref.count == 1:
                let (k, v) = ref.first!
                guard let who = v as? String else { throw ScenarioFailure("an input reference is a name, not \(render(v))") }
                switch k {
                case "shown": input = try lastAnswer(of: who)
                case "wrong": input = wrongCode(try lastAnswer(of: who))
                case "serial": input = try token(named: who).serial
                case "initialPassword": input = try orderVar(who).initialPassword
                default: throw ScenarioFailure("unknown input reference \"\(k)\"")
                }
            case let v:
                throw ScenarioFailure("bad \"input\" \(render(v))")
            }
            let u = try portal.activationNext(activation: row, order: order, authenticator: auth,
                                              credentials: store.credentials[row.account], input: input, settings: settings,
                                              now: try s.at())
            out = try activationUpdate(name, u)

        case "tokenScan":
            let t = try token(named: try s.string("token"))
            let screen = try t.app.scan(state: t.state, qrText: try qr(s))
            let info = try t.app.info(state: screen.state)
            t.state = screen.state
            t.lastCode = screen.code
            t.deviceId = info.deviceId
            out.values = ["kind": screenKindJSON(screen.kind), "digits": Int64(screen.code.utf8.count),
                          "portalName": screen.portalName, "replaced": screen.replaced]
            // The user ID reads as the var of the order that has it.
            if let u = screen.userId, let name = orders.keys.sorted().first(where: { orders[$0]?.userId == u }) {
                out.values["userId"] = name
            }
            if let a = screen.approval { out.values["approval"] = approvalJSON(a) }

        case "verifyPassword", "redeemRecoveryCode":
            let portal = try thePortal()
            let account = try s.string("account")
            guard let row = store.credentials[account] else { throw ScenarioFailure("the account has no credentials row") }
            let check: CredentialCheck
            if s.op == "verifyPassword" {
                check = try portal.verifyPassword(credentials: row, password: try s.string("password"), now: try s.at())
            } else {
                check = try portal.redeemRecoveryCode(credentials: row, code: try recoveryCode(s.raw["code"]), now: try s.at())
            }
            try store(check.change)
            out.verdict = check.verdict
            out.values["left"] = Int64(check.recoveryCodesLeft)

        case "hotp":
            out.values["code"] = try hotp(
                secret: try hexField(s.raw["secret"], "secret"), counter: try s.int("counter"),
                digits: try int32(try s.optInt("digits"), "digits") ?? 6,
                algorithm: try s.raw["algorithm"].map { try algorithm($0, "algorithm") } ?? .sha1)

        case "totp":
            out.values["code"] = try totp(
                secret: try hexField(s.raw["secret"], "secret"), time: try s.at(), periodSeconds: try s.optInt("period") ?? 30,
                digits: try int32(try s.optInt("digits"), "digits") ?? 6,
                algorithm: try s.raw["algorithm"].map { try algorithm($0, "algorithm") } ?? .sha1)

        case "verifyHotp", "verifyTotp", "resyncHotp":
            let name = try s.string("verifier")
            guard let c = try s.object("config") else { throw ScenarioFailure("missing input \"config\"") }
            let config = try verifierConfig(c)
            let state = try s.object("state").map(verifierState) ?? verifiers[name] ?? newVerifierState()
            let now = try s.at()
            let check: OtpCheck
            switch s.op {
            case "verifyHotp": check = try verifyHotp(config: config, state: state, code: try s.string("code"), time: now)
            case "verifyTotp": check = try verifyTotp(config: config, state: state, code: try s.string("code"), time: now)
            default:
                check = try resyncHotp(config: config, state: state, code1: try s.string("code1"),
                                       code2: try s.string("code2"), searchWindow: try s.int("window"), time: now)
            }
            verifiers[name] = check.state
            out.verdict = check.verdict
            out.values = ["drift": check.drift]
            if let m = check.matched { out.values["matched"] = m }

        case "unlock":
            let name = try s.string("verifier")
            verifiers[name] = try unlockVerifier(state: verifiers[name] ?? newVerifierState())

        default:
            throw ScenarioFailure("unknown op \"\(s.op)\"")
        }
        return out
    }

    /// `redeemRecoveryCode`'s code: a string, or `{"recovery": [var, i]}`
    /// (the i-th recovery code the activation saved under the var showed).
    func recoveryCode(_ v: Any?) throws -> String {
        switch v {
        case let code as String:
            return code
        case let o as JSONObject:
            try checkKeys(o, ["recovery"], "code")
            guard let r = o["recovery"] as? [Any], r.count == 2, let name = r[0] as? String,
                  let i = try? jsonInt(r[1], "recovery[1]"), i >= 0 else {
                throw ScenarioFailure("\"code.recovery\" is [var, index], not \(render(o["recovery"]))")
            }
            guard let codes = recoveryCodes[name], i < codes.count else { throw ScenarioFailure("no such recovery code") }
            return codes[Int(i)]
        case nil:
            throw ScenarioFailure("missing input \"code\"")
        case let v?:
            throw ScenarioFailure("\"code\" must be a string or {\"recovery\": [var, i]}, not \(render(v))")
        }
    }

    /// `confirm`'s code: a phone's check code, or "wrong" / "wrong:<phone>"
    /// (that code with every digit +1 mod 10), or "prefix:<phone>" (its first
    /// five digits), "extra:<phone>" (its code and a 0), "spaced:<phone>" (its
    /// code between two spaces).
    func checkCode(_ spec: String) throws -> String {
        func code(of name: String) throws -> String {
            guard let p = phones.first(where: { $0.name == name }) else { throw ScenarioFailure("no phone \"\(name)\"") }
            guard let c = p.phone.checkCode else { throw ScenarioFailure("phone \(name) has no check code") }
            return c
        }
        guard spec.hasPrefix("wrong") else {
            guard let colon = spec.firstIndex(of: ":") else { return try code(of: spec) }
            let c = try code(of: String(spec[spec.index(after: colon)...]))
            switch spec[..<colon] {
            case "prefix": return String(c.dropLast())
            case "extra": return c + "0"
            case "spaced": return " \(c) "
            default: throw ScenarioFailure("bad code \"\(spec)\"")
            }
        }
        let rest = spec.dropFirst("wrong".count)
        let right: String
        if rest.isEmpty {
            guard let c = phones.lazy.compactMap({ $0.phone.checkCode }).first else {
                throw ScenarioFailure("no check code for \"wrong\"")
            }
            right = c
        } else if rest.hasPrefix(":") {
            right = try code(of: String(rest.dropFirst()))
        } else {
            throw ScenarioFailure("bad code \"\(spec)\"")
        }
        return wrongCode(right)
    }

    /// Runs one step against its expectation.
    func run(_ s: Step) throws {
        let expect = try Expectation(s.raw["expect"])
        var wantEvents: [String]?
        if let e = s.raw["events"] {
            guard let kinds = e as? [String] else { throw ScenarioFailure("\"events\" must be a list of event kinds") }
            wantEvents = kinds
        }
        stepEvents = []
        let observed: Observed
        do {
            observed = try perform(s)
        } catch let TesseraError.Failure(code, detail) {
            let got = "threw \(frozenCode(code)) (\(detail))"
            guard case let .error(want) = expect else { throw ScenarioFailure("expected \(expect), got \(got)") }
            if frozenCode(code) != want { throw ScenarioFailure("expected error \(want), got \(got)") }
            if let wantEvents, !wantEvents.isEmpty { throw ScenarioFailure("expected events \(wantEvents), got []") }
            return
        }
        let got = observed.verdict.map(verdictText) ?? "ok"
        /// Returned without a verdict, or accepted.
        let succeeded: Bool
        switch observed.verdict {
        case nil, .accepted?: succeeded = true
        default: succeeded = false
        }
        switch expect {
        case let .error(want):
            throw ScenarioFailure("expected error \(want), got \(got)")
        case .ok:
            if !succeeded { throw ScenarioFailure("expected ok, got \(got)") }
        case .accepted:
            guard case .accepted? = observed.verdict else { throw ScenarioFailure("expected accepted, got \(got)") }
        case .repeated:
            guard case .repeated? = observed.verdict else { throw ScenarioFailure("expected repeated, got \(got)") }
        case let .refused(want):
            guard case let .refused(code, _)? = observed.verdict, frozenCode(code) == want else {
                throw ScenarioFailure("expected refused \(want), got \(got)")
            }
        case let .values(wanted):
            if let k = wanted.keys.sorted().first(where: { !s.expectKeys.contains($0) }) {
                throw ScenarioFailure("unknown expectation key \"\(k)\" for this op")
            }
            if !succeeded { throw ScenarioFailure("expected \(render(wanted)), got \(got)") }
            for k in wanted.keys.sorted() {
                let have = observed.values[k]
                if !(have.map { sameJSON(wanted[k]!, $0) } ?? (wanted[k] is NSNull)) {
                    throw ScenarioFailure("expected \(k) = \(render(wanted[k])), got \(have.map(render) ?? "null")")
                }
            }
        }
        if let wantEvents {
            let have = stepEvents.map(eventKind)
            if have != wantEvents { throw ScenarioFailure("expected events \(wantEvents), got \(have)") }
        }
    }
}

/// Runs one scenario file; returns the steps run and skipped, or throws a
/// failure naming the file and the step (`<file>: step <index> (<op>): …`,
/// index from 0 as in the Rust runner).
func runScenario(_ file: String, _ doc: Any) throws -> (steps: Int, skipped: [String]) {
    guard let top = doc as? JSONObject else { throw ScenarioFailure("\(file): not a JSON object") }
    if let k = top.keys.sorted().first(where: { !["name", "about", "steps"].contains($0) }) {
        throw ScenarioFailure("\(file): unknown key \"\(k)\"")
    }
    for k in ["name", "about"] where !(top[k] is String) { throw ScenarioFailure("\(file): \"\(k)\" must be a string") }
    guard let steps = top["steps"] as? [Any] else { throw ScenarioFailure("\(file): no \"steps\" array") }
    guard !steps.isEmpty else { throw ScenarioFailure("\(file): no steps") }
    let world = ScenarioWorld()
    var ran = 0
    var skipped: [String] = []
    for (i, raw) in steps.enumerated() {
        let op = ((raw as? JSONObject)?["do"] as? String) ?? "?"
        do {
            guard let m = raw as? JSONObject else { throw ScenarioFailure("a step is an object") }
            let step = try Step(m)
            if let reason = m["skip"] {
                guard let reason = reason as? String else { throw ScenarioFailure("\"skip\" is the reason, a string") }
                skipped.append("\(file): step \(i) (\(op)): \(reason)")
                continue
            }
            try world.run(step)
            ran += 1
        } catch {
            throw ScenarioFailure("\(file): step \(i) (\(op)): \(error)")
        }
    }
    return (ran, skipped)
}

/// Every vectors/scenarios/*.json in name order, parsed with JSONSerialization.
func scenarioFiles() throws -> [(name: String, doc: Any)] {
    let dir = scenariosURL
    return try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
        .filter { $0.pathExtension == "json" }
        .sorted { $0.lastPathComponent < $1.lastPathComponent }
        .map { url in
            do {
                return (url.lastPathComponent, try JSONSerialization.jsonObject(with: Data(contentsOf: url)))
            } catch {
                throw ScenarioFailure("\(url.lastPathComponent): not JSON: \(error)")
            }
        }
}

/// Fewer files than this means the folder was not found or emptied.
let minScenarioFiles = 10

final class ScenarioTests: XCTestCase {
    /// Every file passes; a failure names the file and the step.
    func testEveryScenarioFile() throws {
        let files = try scenarioFiles()
        // A wrong path must not pass by running nothing (vectors/scenarios/README.md).
        guard files.count >= minScenarioFiles else {
            return XCTFail("only \(files.count) scenario files in \(scenariosURL.path) (at least \(minScenarioFiles) expected)")
        }
        var passed = 0, steps = 0
        var skipped: [String] = []
        for (name, doc) in files {
            do {
                let r = try runScenario(name, doc)
                passed += 1
                steps += r.steps
                skipped += r.skipped
            } catch {
                XCTFail("\(error)")
            }
        }
        print("[scenarios] \(passed) of \(files.count) files passed, \(steps) steps ran, \(skipped.count) skipped (\(scenariosURL.path))")
        for s in skipped { print("[scenarios]   skipped: \(s)") }
    }

    /// JSONSerialization gives NSNumber for true, 1 and 1.5 alike: inputs are
    /// told apart as the Rust runner's serde_json does.
    func testJSONTypesAreStrict() throws {
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(#"{"t": true, "one": 1, "half": 1.5, "s": "1", "big": 9007199254740993}"#.utf8)) as? JSONObject)
        XCTAssertEqual(try jsonInt(o["one"], "one"), 1)
        XCTAssertEqual(try jsonInt(o["big"], "big"), 9_007_199_254_740_993)
        XCTAssertEqual(try jsonBool(o["t"]!, "t"), true)
        for k in ["t", "half", "s"] { XCTAssertThrowsError(try jsonInt(o[k], k), k) }
        for k in ["one", "half", "s"] { XCTAssertThrowsError(try jsonBool(o[k]!, k), k) }
        XCTAssertTrue(sameJSON(o["one"]!, Int64(1)))
        XCTAssertFalse(sameJSON(o["t"]!, Int64(1)))
        XCTAssertFalse(sameJSON(o["s"]!, Int64(1)))
    }

    /// Negative controls: a changed step of a genuine file fails, naming the
    /// file and the step, so the runner cannot pass vacuously.
    func testTheRunnerRejectsWrongExpectationsAndUnknownKeys() throws {
        let files = try scenarioFiles()
        var mutated = 0
        for (name, doc) in files {
            guard let top = doc as? JSONObject, let steps = top["steps"] as? [JSONObject],
                  (try? runScenario(name, doc)) != nil else { continue }
            func mustFail(_ i: Int, _ what: String, _ change: (inout JSONObject) -> Void) {
                var s = steps
                change(&s[i])
                var d = top
                d["steps"] = s
                do {
                    _ = try runScenario(name, d)
                    XCTFail("\(name) step \(i) with \(what) passed")
                } catch {
                    XCTAssertTrue("\(error)".hasPrefix("\(name): step \(i) "), "\(error)")
                }
                mutated += 1
            }
            // A few targeted changes per file (each reruns the file up to the changed step).
            let live = steps.indices.filter { steps[$0]["skip"] == nil }
            func first(_ p: (JSONObject) -> Bool) -> Int? { live.first { p(steps[$0]) } }
            if let i = live.last {
                mustFail(i, "an unknown key") { $0["bogus"] = 1 }
                mustFail(i, "an unknown op") { $0["do"] = "bogus" }
            }
            /// A code other than the expected one.
            func other(_ i: Int, _ k: String) -> String {
                ((steps[i]["expect"] as? JSONObject)?[k] as? String) == "INTERNAL" ? "STORAGE" : "INTERNAL"
            }
            if let i = first({ ($0["expect"] as? JSONObject)?["refused"] != nil }) {
                mustFail(i, "another refusal") { $0["expect"] = ["refused": other(i, "refused")] }
                mustFail(i, "no expectation") { $0["expect"] = nil }
            }
            if let i = first({ ($0["expect"] as? JSONObject)?["error"] != nil }) {
                mustFail(i, "another error") { $0["expect"] = ["error": other(i, "error")] }
                mustFail(i, "no expectation") { $0["expect"] = nil }
            }
            if let i = first({ $0["expect"] == nil || $0["expect"] is String }) {
                mustFail(i, "an error") { $0["expect"] = ["error": "INTERNAL"] }
            }
            if let i = first({ ($0["expect"] as? JSONObject).map { $0["refused"] == nil && $0["error"] == nil } ?? false }) {
                mustFail(i, "an unknown expectation key") { $0["expect"] = ["bogus": 1] }
            }
            if let i = first({ $0["events"] != nil }), let e = steps[i]["events"] as? [String] {
                mustFail(i, "other events") { $0["events"] = e + ["deviceUnlinked"] }
            }
            var d = top
            d["extra"] = 1
            XCTAssertThrowsError(try runScenario(name, d))
        }
        if !files.isEmpty { XCTAssertGreaterThan(mutated, 0, "no scenario file passes, nothing to mutate") }
    }

    /// The activation ops (flow 3) check their inputs and results as
    /// strictly as the others: targeted changes of activation-success.json.
    func testActivationStepsAreCheckedStrictly() throws {
        let name = "activation-success.json"
        guard let doc = try scenarioFiles().first(where: { $0.name == name })?.doc else {
            throw XCTSkip("no \(name) in \(scenariosURL.path)")
        }
        let top = try XCTUnwrap(doc as? JSONObject)
        let steps = try XCTUnwrap(top["steps"] as? [JSONObject])
        XCTAssertNoThrow(try runScenario(name, doc))
        func mustFail(_ what: String, where p: (JSONObject) -> Bool, _ change: (inout JSONObject) -> Void, saying: String) {
            guard let i = steps.firstIndex(where: p) else { return XCTFail("\(name) has no step for \(what)") }
            var s = steps
            change(&s[i])
            var d = top
            d["steps"] = s
            do {
                _ = try runScenario(name, d)
                XCTFail("\(what) passed")
            } catch {
                XCTAssertTrue("\(error)".hasPrefix("\(name): step \(i) "), "\(what): \(error)")
                XCTAssertTrue("\(error)".contains(saying), "\(what): \(error)")
            }
        }
        func op(_ o: String) -> (JSONObject) -> Bool { { $0["do"] as? String == o } }
        func expects(_ o: String, _ k: String) -> (JSONObject) -> Bool {
            { $0["do"] as? String == o && ($0["expect"] as? JSONObject)?[k] != nil }
        }
        mustFail("an unknown settings key", where: op("activationSettings"), { $0["settings"] = ["hashIterations": 10_000, "bogus": 1] },
                 saying: "bogus")
        mustFail("a fractional setting", where: op("activationSettings"), { $0["settings"] = ["hashIterations": 10_000.5] },
                 saying: "integer")
        mustFail("another imported serial", where: expects("importDevices", "serials"), { $0["expect"] = ["serials": ["TS00000000"]] },
                 saying: "serials")
        mustFail("another step", where: expects("activationStart", "step"), { $0["expect"] = ["step": "bindingCode"] }, saying: "step")
        mustFail("qr as 1, not true", where: expects("activationStart", "qr"), { $0["expect"] = ["qr": 1] }, saying: "qr")
        mustFail("an unknown input reference", where: { op("activationNext")($0) && $0["input"] is JSONObject },
                 { $0["input"] = ["shwon": "t1"] }, saying: "shwon")
        mustFail("two input references", where: { op("activationNext")($0) && $0["input"] is JSONObject },
                 { $0["input"] = ["shown": "t1", "serial": "t1"] }, saying: "input")
        mustFail("a wrong entry", where: { op("activationNext")($0) && $0["input"] is JSONObject },
                 { $0["input"] = ["wrong": "t1"] }, saying: "DEVICE_CODE_MISMATCH")
        mustFail("another count of recovery codes", where: expects("activationNext", "recoveryCodes"),
                 { $0["expect"] = ["recoveryCodes": 9] }, saying: "recoveryCodes")
        mustFail("another user", where: expects("tokenScan", "userId"), { $0["expect"] = ["userId": "o2"] }, saying: "userId")
        mustFail("another screen", where: expects("tokenScan", "kind"), { $0["expect"] = ["kind": "challenge"] }, saying: "kind")
        mustFail("replaced", where: expects("tokenScan", "replaced"), { $0["expect"] = ["replaced": true] }, saying: "replaced")
        mustFail("another count left", where: expects("redeemRecoveryCode", "left"), { $0["expect"] = ["left": 10] }, saying: "left")
        mustFail("a recovery reference with an extra element", where: expects("redeemRecoveryCode", "left"),
                 { $0["code"] = ["recovery": ["a1", 0, 1]] }, saying: "recovery")
        mustFail("an answering token that did not answer", where: { op("verify")($0) && ($0["expect"] as? JSONObject)?["device"] != nil },
                 { $0["expect"] = ["device": "p1"] }, saying: "device")
    }
}
