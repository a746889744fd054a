import Foundation
import Tessera
import XCTest

let rfcSecret = hex("3132333435363738393031323334353637383930") // "12345678901234567890"
let rfcSecretBase32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
let googleExample = "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"
let helloDeadbeef = Data("Hello!".utf8) + hex("deadbeef")

final class OtpauthTests: XCTestCase {
    func testShortSecretRefusedByDefault() {
        XCTAssertEqual(failure { try parseOtpauthUri(uri: googleExample) }?.code, "SECRET_TOO_SHORT")
        XCTAssertEqual(failure { try otpauthCode(uri: googleExample, unixTime: 59) }?.code, "SECRET_TOO_SHORT")
    }

    func testParseWithAllowShortSecret() throws {
        let u = try parseOtpauthUri(uri: googleExample, allowShortSecret: true)
        XCTAssertEqual(u.kind, .totp(period: 30))
        XCTAssertEqual(u.issuer, "Example")
        XCTAssertEqual(u.account, "alice@google.com")
        XCTAssertEqual(u.secret, helloDeadbeef)
        XCTAssertEqual(u.algorithm, .sha1)
        XCTAssertEqual(u.digits, 6)
    }

    func testCodeWithAllowShortSecret() throws {
        XCTAssertEqual(try otpauthCode(uri: googleExample, unixTime: 1_700_000_000, allowShortSecret: true), "324550")
    }

    func testFormatIsCanonicalAndRoundTrips() throws {
        let u = try parseOtpauthUri(uri: googleExample, allowShortSecret: true)
        let s = formatOtpauthUri(uri: u)
        XCTAssertEqual(s, "otpauth://totp/Example:alice%40google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example&algorithm=SHA1&digits=6&period=30")
        XCTAssertEqual(try parseOtpauthUri(uri: s, allowShortSecret: true), u)
    }

    func testFormatHotpRecordBuiltInSwift() throws {
        let u = OtpAuthUri(kind: .hotp(counter: 1), issuer: "ACME Co", account: "bob", secret: rfcSecret, algorithm: .sha256, digits: 8)
        let s = formatOtpauthUri(uri: u)
        XCTAssertTrue(s.hasPrefix("otpauth://hotp/"), s)
        XCTAssertEqual(try parseOtpauthUri(uri: s), u)
        XCTAssertEqual(try otpauthCode(uri: s, unixTime: 0), try hotp(secret: rfcSecret, counter: 1, digits: 8, algorithm: .sha256))
    }

    func testTotpCodeAtTime59() throws {
        let uri = "otpauth://totp/ACME:bob?secret=\(rfcSecretBase32)&issuer=ACME&digits=8"
        XCTAssertEqual(try otpauthCode(uri: uri, unixTime: 59), "94287082")
    }

    func testMalformedUriIsInvalidUri() {
        let e = failure { try parseOtpauthUri(uri: "https://example.com/") }
        XCTAssertEqual(e?.code, "INVALID_URI")
        if let e { XCTAssertTrue(errorCodes().contains(e.code), e.code) }
        XCTAssertEqual(failure { try otpauthCode(uri: "otpauth://totp/?secret=\(rfcSecretBase32)", unixTime: 59) }?.code, "INVALID_URI")
    }

    func testSecretOfImpossibleBase32LengthIsInvalidSecret() {
        let uri = "otpauth://totp/ACME:bob?secret=\(rfcSecretBase32)A&issuer=ACME"
        XCTAssertEqual(failure { try parseOtpauthUri(uri: uri) }?.code, "INVALID_SECRET")
    }
}

final class EncodingTests: XCTestCase {
    func testBase32Encode() {
        XCTAssertEqual(base32Encode(data: Data("12345678901234567890".utf8)), rfcSecretBase32)
    }

    func testBase32LenientDecode() throws {
        XCTAssertEqual(try base32Decode(text: "jbsw y3dp ehpk 3pxp"), helloDeadbeef)
        XCTAssertEqual(try base32Decode(text: "MY======"), Data("f".utf8))
        XCTAssertEqual(try base32Decode(text: ""), Data())
    }

    func testNewOtpSecret() throws {
        let a = try newOtpSecret()
        let b = try newOtpSecret()
        XCTAssertEqual(a.count, 20)
        XCTAssertNotEqual(a, b)
    }
}

final class ErrorTests: XCTestCase {
    func testInvalidDigitsCarriesCodeAndDetail() {
        do {
            _ = try hotp(secret: Data("k".utf8), counter: 0, digits: 3, algorithm: .sha1)
            XCTFail("digits 3 must be refused")
        } catch let e as TesseraError {
            guard case let .Failure(code, detail) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(code, "INVALID_DIGITS")
            XCTAssertFalse(detail.isEmpty)
            XCTAssertEqual(e, .Failure(code: "INVALID_DIGITS", detail: detail))
            XCTAssertTrue((e.errorDescription ?? "").contains("INVALID_DIGITS"), e.errorDescription ?? "nil")
        } catch {
            XCTFail("unexpected \(error)")
        }
    }

    func testBase32DecodeInvalidSecret() {
        XCTAssertEqual(failure { try base32Decode(text: "!!") }?.code, "INVALID_SECRET")
    }

    func testBase32ImpossibleLengthsAreInvalidSecret() throws {
        for s in ["A", "AAA", "AAAAAA", "A=======", "AAAAAA==", "AAAAAAAAA", "gezd gnbv gy3"] {
            XCTAssertEqual(failure { try base32Decode(text: s) }?.code, "INVALID_SECRET", s)
        }
        for s in ["AA", "AAAA", "AAAAA", "AAAAAAA", "AAAAAAAA"] {
            XCTAssertEqual(try base32Decode(text: s).count, s.count * 5 / 8, s)
        }
    }

    func testOcraInvalidSuite() {
        XCTAssertEqual(failure { try ocra(suite: "OCRA-2:HOTP-SHA1-6:QN08", key: Data(count: 20), params: OcraParams(question: "00000000")) }?.code,
                       "INVALID_OCRA_SUITE")
    }

    func testExhaustiveCatchOnTheErrorEnum() {
        do {
            _ = try totp(secret: Data(count: 20), unixTime: 59, period: 0, digits: 6, algorithm: .sha1)
            XCTFail("period 0 must be refused")
        } catch let e as TesseraError {
            switch e {
            case let .Failure(code, _): XCTAssertEqual(code, "INVALID_TIME")
            }
        } catch {
            XCTFail("unexpected \(error)")
        }
    }

    func testErrorCodesTable() {
        let codes = errorCodes()
        XCTAssertEqual(codes.count, Set(codes).count)
        for c in ["INVALID_DIGITS", "INVALID_SECRET", "INVALID_OCRA_SUITE", "SECRET_TOO_SHORT", "OTP_REPLAYED", "OTP_MISMATCH", "LOCKED_OUT",
                  "INVALID_TIME", "INVALID_URI"] {
            XCTAssertTrue(codes.contains(c), "\(c) missing from errorCodes()")
        }
    }
}

final class VerifierTests: XCTestCase {
    let now: UInt64 = 1_700_000_000 // step 56666666: code 921300; step before: 276857
    let config = OtpVerifierConfig(secret: rfcSecret, algorithm: .sha1)

    func testRecordDefaults() {
        XCTAssertEqual(config.digits, 6)
        XCTAssertEqual(config.period, 30)
        XCTAssertEqual(config.window, 1)
        XCTAssertEqual(config.maxFailures, 5)
        XCTAssertNil(config.lockSeconds)
        XCTAssertEqual(OtpVerifierState(), OtpVerifierState(lastAccepted: nil, nextCounter: 0, consecutiveFailures: 0, locked: false, lockedUntil: nil))
        XCTAssertEqual(OcraParams(), OcraParams(counter: nil, question: nil, password: nil, session: nil, unixTime: nil))
    }

    func testAcceptThenReplay() throws {
        let code = try totp(secret: rfcSecret, unixTime: now, period: 30, digits: 6, algorithm: .sha1)
        XCTAssertEqual(code, "921300")
        let ok = try totpVerify(config: config, code: code, unixTime: now, state: OtpVerifierState())
        XCTAssertTrue(ok.accepted)
        XCTAssertNil(ok.errorCode)
        XCTAssertEqual(ok.matched, 56_666_666)
        XCTAssertEqual(ok.drift, 0)
        XCTAssertEqual(ok.state.lastAccepted, 56_666_666)
        let replay = try totpVerify(config: config, code: code, unixTime: now + 5, state: ok.state)
        XCTAssertFalse(replay.accepted)
        XCTAssertEqual(replay.errorCode, "OTP_REPLAYED")
        XCTAssertNil(replay.matched)
        XCTAssertEqual(replay.state.consecutiveFailures, 1)
    }

    func testPreviousStepDrift() throws {
        let c = try totpVerify(config: config, code: "276857", unixTime: now, state: OtpVerifierState())
        XCTAssertTrue(c.accepted, c.errorCode ?? "")
        XCTAssertEqual(c.drift, -1)
    }

    func testFiveWrongCodesLockOut() throws {
        var st = OtpVerifierState()
        for i in 0..<5 {
            let c = try totpVerify(config: config, code: "000000", unixTime: now, state: st)
            XCTAssertFalse(c.accepted)
            // The fifth failure locks, and says so.
            XCTAssertEqual(c.errorCode, i < 4 ? "OTP_MISMATCH" : "LOCKED_OUT")
            st = c.state
        }
        XCTAssertTrue(st.locked)
        XCTAssertEqual(st.consecutiveFailures, 5)
        let locked = try totpVerify(config: config, code: "921300", unixTime: now, state: st)
        XCTAssertFalse(locked.accepted)
        XCTAssertEqual(locked.errorCode, "LOCKED_OUT")
        // An administrative unlock is a state reset done by the caller.
        var unlocked = locked.state
        unlocked.locked = false
        unlocked.consecutiveFailures = 0
        XCTAssertTrue(try totpVerify(config: config, code: "921300", unixTime: now, state: unlocked).accepted)
    }

    func testTimedLockExpires() throws {
        var cfg = config
        cfg.maxFailures = 2
        cfg.lockSeconds = 100
        var st = OtpVerifierState()
        for _ in 0..<2 { st = try totpVerify(config: cfg, code: "000000", unixTime: now, state: st).state }
        XCTAssertEqual(st.lockedUntil, now + 100)
        XCTAssertEqual(try totpVerify(config: cfg, code: "000000", unixTime: now + 99, state: st).errorCode, "LOCKED_OUT")
        let later = now + 100
        let code = try totp(secret: rfcSecret, unixTime: later, period: 30, digits: 6, algorithm: .sha1)
        XCTAssertTrue(try totpVerify(config: cfg, code: code, unixTime: later, state: st).accepted)
    }

    func testWrongShapeIsInvalidInput() throws {
        XCTAssertEqual(try totpVerify(config: config, code: "12ab56", unixTime: now, state: OtpVerifierState()).errorCode, "INVALID_INPUT")
    }

    func testHotpLookAhead() throws {
        let refused = try hotpVerify(config: config, code: "359152", unixTime: now, state: OtpVerifierState())
        XCTAssertFalse(refused.accepted)
        XCTAssertEqual(refused.errorCode, "OTP_MISMATCH")
        var cfg = config
        cfg.window = 10
        let ok = try hotpVerify(config: cfg, code: "359152", unixTime: now, state: OtpVerifierState())
        XCTAssertTrue(ok.accepted)
        XCTAssertEqual(ok.matched, 2)
        XCTAssertEqual(ok.drift, 2)
        XCTAssertEqual(ok.state.nextCounter, 3)
        // A used counter.
        XCTAssertEqual(try hotpVerify(config: cfg, code: "359152", unixTime: now, state: ok.state).errorCode, "OTP_MISMATCH")
        XCTAssertTrue(try hotpVerify(config: cfg, code: "969429", unixTime: now, state: ok.state).accepted)
    }

    func testHotpLookAheadBoundary() throws {
        // Look-ahead w accepts counter + w and refuses counter + w + 1.
        for w: UInt64 in [0, 1, 10, 100] {
            var cfg = config
            cfg.window = w
            let st = OtpVerifierState(nextCounter: 500)
            let beyond = try hotpVerify(config: cfg, code: try hotp(secret: rfcSecret, counter: 500 + w + 1, digits: 6, algorithm: .sha1),
                                        unixTime: now, state: st)
            XCTAssertEqual(beyond.errorCode, "OTP_MISMATCH", "window \(w)")
            let edge = try hotpVerify(config: cfg, code: try hotp(secret: rfcSecret, counter: 500 + w, digits: 6, algorithm: .sha1),
                                      unixTime: now, state: beyond.state)
            XCTAssertTrue(edge.accepted, "window \(w): \(edge.errorCode ?? "")")
            XCTAssertEqual(edge.matched, 500 + w)
            XCTAssertEqual(edge.drift, Int64(w))
        }
    }

    func testHotpResync() throws {
        // Counters 8 and 9 are beyond the look-ahead of 1 from 0.
        let res = try hotpResync(config: config, code1: "399871", code2: "520489", searchWindow: 100, unixTime: now, state: OtpVerifierState())
        XCTAssertTrue(res.accepted)
        XCTAssertEqual(res.matched, 9)
        XCTAssertEqual(res.state.nextCounter, 10)
        XCTAssertEqual(try hotpResync(config: config, code1: "399871", code2: "755224", searchWindow: 100, unixTime: now,
                                      state: OtpVerifierState()).errorCode, "OTP_MISMATCH")
    }

    func testMillisecondsAreInvalidTimeAndCountNothing() throws {
        let ms: UInt64 = 1_767_225_600_000 // 2026-01-01 in milliseconds
        var st = OtpVerifierState()
        for i in 0..<5 {
            // Right and wrong codes alike: the time is refused before the code is looked at.
            let code = try (i % 2 == 0 ? totp(secret: rfcSecret, unixTime: ms, period: 30, digits: 6, algorithm: .sha1) : "000000")
            let c = try totpVerify(config: config, code: code, unixTime: ms, state: st)
            XCTAssertFalse(c.accepted)
            XCTAssertEqual(c.errorCode, "INVALID_TIME")
            XCTAssertEqual(c.state, OtpVerifierState())
            st = c.state
        }
        let ok = try totpVerify(config: config, code: "921300", unixTime: now, state: st)
        XCTAssertTrue(ok.accepted, ok.errorCode ?? "")
        XCTAssertEqual(ok.matched, 56_666_666)
        // Every verifier, every time outside 2000..3000; a timed lock is not ended by it.
        let locked = OtpVerifierState(consecutiveFailures: 5, locked: true, lockedUntil: now + 100)
        for t: UInt64 in [0, 59, 946_684_799, 32_503_680_000, ms, UInt64.max] {
            for s in [OtpVerifierState(), locked] {
                for c in [
                    try totpVerify(config: config, code: "000000", unixTime: t, state: s),
                    try hotpVerify(config: config, code: "755224", unixTime: t, state: s),
                    try hotpResync(config: config, code1: "755224", code2: "287082", searchWindow: 10, unixTime: t, state: s),
                ] {
                    XCTAssertEqual(c.errorCode, "INVALID_TIME", "time \(t)")
                    XCTAssertEqual(c.state, s, "time \(t)")
                }
            }
        }
        XCTAssertEqual(try totpVerify(config: config, code: "921300", unixTime: now + 99, state: locked).errorCode, "LOCKED_OUT")
    }

    func testHotpAtTheLastCounterRefusesReplay() throws {
        let last = UInt64.max
        var cfg = config
        cfg.window = 10
        let code = try hotp(secret: rfcSecret, counter: last, digits: 6, algorithm: .sha1)
        let ok = try hotpVerify(config: cfg, code: code, unixTime: now, state: OtpVerifierState(nextCounter: last - 2))
        XCTAssertTrue(ok.accepted, ok.errorCode ?? "")
        XCTAssertEqual(ok.matched, last)
        XCTAssertEqual(ok.drift, 2)
        XCTAssertEqual(ok.state, OtpVerifierState(lastAccepted: last, nextCounter: last))
        var st = ok.state
        for i in 1...5 {
            let replay = try hotpVerify(config: cfg, code: code, unixTime: now, state: st)
            XCTAssertFalse(replay.accepted)
            // Counted: the fifth failure locks.
            XCTAssertEqual(replay.errorCode, i < 5 ? "OTP_REPLAYED" : "LOCKED_OUT")
            XCTAssertEqual(replay.state.consecutiveFailures, UInt32(i))
            st = replay.state
        }
        // Nothing else is accepted either (no wrap to counter 0), and resync cannot revive it.
        let previous = try hotp(secret: rfcSecret, counter: last - 1, digits: 6, algorithm: .sha1)
        XCTAssertEqual(try hotpVerify(config: cfg, code: previous, unixTime: now, state: ok.state).errorCode, "OTP_MISMATCH")
        XCTAssertEqual(try hotpVerify(config: cfg, code: "755224", unixTime: now, state: ok.state).errorCode, "OTP_MISMATCH") // counter 0
        XCTAssertEqual(try hotpResync(config: cfg, code1: code, code2: "755224", searchWindow: 1000, unixTime: now, state: ok.state).errorCode,
                       "OTP_MISMATCH")
        XCTAssertEqual(try hotpResync(config: cfg, code1: "755224", code2: "287082", searchWindow: 1000, unixTime: now, state: ok.state).errorCode,
                       "OTP_MISMATCH")
    }

    func testInvalidConfigurationThrows() {
        var cfg = config
        cfg.digits = 3
        XCTAssertEqual(failure { try totpVerify(config: cfg, code: "123", unixTime: now, state: OtpVerifierState()) }?.code, "INVALID_DIGITS")
    }
}
