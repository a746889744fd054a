import Foundation
import Tessera
import XCTest

/// The repository root (Tests/TesseraTests/Support.swift -> ../../..): the
/// repository is bind-mounted at the same path inside the Swift chroot.
let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// A file or folder under `vectors/`, or the path in the environment variable `env`.
func vectorsURL(_ relative: String, env: String) -> URL {
    if let p = ProcessInfo.processInfo.environment[env], !p.isEmpty {
        return URL(fileURLWithPath: p)
    }
    return repositoryRoot.appendingPathComponent("vectors").appendingPathComponent(relative)
}

/// Bytes of a hex string (nil when it is not hex).
func hexBytes(_ s: String) -> Data? {
    guard s.count % 2 == 0 else { return nil }
    var out = Data(capacity: s.count / 2)
    var i = s.startIndex
    while i < s.endIndex {
        let j = s.index(i, offsetBy: 2)
        guard let b = UInt8(s[i..<j], radix: 16) else { return nil }
        out.append(b)
        i = j
    }
    return out
}

/// Bytes of a hex literal of a test.
func hex(_ s: String) -> Data {
    guard let d = hexBytes(s) else { fatalError("not hex: \(s)") }
    return d
}

/// A point in time from Unix seconds.
func date(_ secs: Int64) -> Date { Date(timeIntervalSince1970: TimeInterval(secs)) }

/// Unix seconds of a point in time (the API returns whole seconds).
func secs(_ d: Date) -> Int64 { Int64(d.timeIntervalSince1970.rounded(.down)) }

/// The stable code string of an error code (`"TOKEN_EXPIRED"`, docs/ERRORS.md),
/// written out independently of the API's `ErrorCode.codeString()`, which the
/// tests check against it. No `default:` on purpose: a code added in Rust is a
/// compile error here until it is handled.
func frozenCode(_ c: ErrorCode) -> String {
    switch c {
    case .invalidInput: return "INVALID_INPUT"
    case .invalidSecret: return "INVALID_SECRET"
    case .secretTooShort: return "SECRET_TOO_SHORT"
    case .invalidDigits: return "INVALID_DIGITS"
    case .invalidAlgorithm: return "INVALID_ALGORITHM"
    case .invalidTime: return "INVALID_TIME"
    case .invalidUri: return "INVALID_URI"
    case .invalidOcraSuite: return "INVALID_OCRA_SUITE"
    case .invalidOcraInput: return "INVALID_OCRA_INPUT"
    case .otpMismatch: return "OTP_MISMATCH"
    case .otpReplayed: return "OTP_REPLAYED"
    case .lockedOut: return "LOCKED_OUT"
    case .malformedMessage: return "MALFORMED_MESSAGE"
    case .wrongMessageKind: return "WRONG_MESSAGE_KIND"
    case .unsupportedVersion: return "UNSUPPORTED_VERSION"
    case .messageTampered: return "MESSAGE_TAMPERED"
    case .stateCorrupt: return "STATE_CORRUPT"
    case .tokenExpired: return "TOKEN_EXPIRED"
    case .tokenAlreadyUsed: return "TOKEN_ALREADY_USED"
    case .tokenUnknown: return "TOKEN_UNKNOWN"
    case .passcodePolicy: return "PASSCODE_POLICY"
    case .weakPasscode: return "WEAK_PASSCODE"
    case .deviceAlreadyLinked: return "DEVICE_ALREADY_LINKED"
    case .deviceNotLinked: return "DEVICE_NOT_LINKED"
    case .deviceRevoked: return "DEVICE_REVOKED"
    case .deviceUnknown: return "DEVICE_UNKNOWN"
    case .checkCodeMismatch: return "CHECK_CODE_MISMATCH"
    case .wrongAccount: return "WRONG_ACCOUNT"
    case .invalidState: return "INVALID_STATE"
    case .alreadyConsumed: return "ALREADY_CONSUMED"
    case .storage: return "STORAGE"
    case .internal: return "INTERNAL"
    case .linkNotConfirmed: return "LINK_NOT_CONFIRMED"
    case .notForThisDevice: return "NOT_FOR_THIS_DEVICE"
    case .invalidAnswer: return "INVALID_ANSWER"
    case .deviceCloned: return "DEVICE_CLONED"
    case .authenticatorNeverUsed: return "AUTHENTICATOR_NEVER_USED"
    case .deviceNotYetUsable: return "DEVICE_NOT_YET_USABLE"
    case .deviceCodeMismatch: return "DEVICE_CODE_MISMATCH"
    case .activationCodeMismatch: return "ACTIVATION_CODE_MISMATCH"
    case .bindingCodeMismatch: return "BINDING_CODE_MISMATCH"
    case .serialMismatch: return "SERIAL_MISMATCH"
    case .passwordMismatch: return "PASSWORD_MISMATCH"
    case .passwordPolicy: return "PASSWORD_POLICY"
    case .recoveryCodeMismatch: return "RECOVERY_CODE_MISMATCH"
    case .duplicateRecord: return "DUPLICATE_RECORD"
    case .userUnknown: return "USER_UNKNOWN"
    }
}

/// Runs `body`, which must throw `TesseraError.Failure`, and returns its code
/// and detail (nil after recording an XCTest failure).
@discardableResult
func failure<T>(_ body: () throws -> T, file: StaticString = #filePath, line: UInt = #line) -> (code: ErrorCode, detail: String)? {
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
