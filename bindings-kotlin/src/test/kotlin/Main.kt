// Kotlin binding tests of Tessera: a plain `main` runner (no JUnit) using
// kotlin.test asserts. It loads libtessera_ffi the way an app does: the
// generated `dev.tessera` bindings through JNA (-Djna.library.path=...).
//
// Usage: java ... dev.tessera.tests.MainKt <path/to/vectors/otp.json> [<path/to/vectors/link.json>]
// (link.json defaults to the file next to otp.json). The link tests are in
// LinkTests.kt.
package dev.tessera.tests

import dev.tessera.*
import java.io.File
import kotlin.system.exitProcess
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNotEquals
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.test.fail

class Runner {
    var passed = 0
    var failed = 0

    fun test(name: String, body: () -> Unit) {
        try {
            body()
            passed++
            println("ok   $name")
        } catch (t: Throwable) {
            failed++
            println("FAIL $name: $t")
        }
    }
}

fun hex(s: String): ByteArray {
    require(s.length % 2 == 0) { "odd hex length" }
    return ByteArray(s.length / 2) { s.substring(2 * it, 2 * it + 2).toInt(16).toByte() }
}

fun algorithm(name: String): OtpAlgorithm = when (name.lowercase()) {
    "sha1" -> OtpAlgorithm.SHA1
    "sha256" -> OtpAlgorithm.SHA256
    "sha512" -> OtpAlgorithm.SHA512
    else -> error("unknown algorithm $name")
}

@Suppress("UNCHECKED_CAST")
fun rows(doc: Map<String, Any?>, key: String): List<Map<String, Any?>> =
    (doc[key] as? List<Map<String, Any?>>) ?: error("vectors: no '$key' array")

fun Map<String, Any?>.str(k: String): String = this[k] as? String ?: error("vector field '$k' missing")
fun Map<String, Any?>.long(k: String): Long = this[k] as? Long ?: error("vector field '$k' missing")
fun Map<String, Any?>.longOrNull(k: String): Long? = this[k] as Long?

/** Runs `body`, which must throw TesseraException.Failure, and returns it. */
fun failure(body: () -> Unit): TesseraException.Failure {
    val e = assertFailsWith<TesseraException> { body() }
    return assertIs<TesseraException.Failure>(e)
}

const val RFC_SECRET_B32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // "12345678901234567890"
const val GOOGLE_EXAMPLE = "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"

fun vectorTests(r: Runner, doc: Map<String, Any?>) {
    rows(doc, "hotp").forEachIndexed { i, v ->
        r.test("vector hotp[$i] ${v.str("algorithm")} counter=${v.long("counter")} digits=${v.long("digits")}") {
            val code = hotp(hex(v.str("secret_hex")), v.long("counter").toULong(), v.long("digits").toUByte(), algorithm(v.str("algorithm")))
            assertEquals(v.str("code"), code)
        }
    }
    rows(doc, "totp").forEachIndexed { i, v ->
        r.test("vector totp[$i] ${v.str("algorithm")} time=${v.long("time")}") {
            val code = totp(
                hex(v.str("secret_hex")), v.long("time").toULong(), v.long("period").toULong(),
                v.long("digits").toUByte(), algorithm(v.str("algorithm")),
            )
            assertEquals(v.str("code"), code)
        }
    }
    rows(doc, "ocra").forEachIndexed { i, v ->
        r.test("vector ocra[$i] ${v.str("suite")} q=${v["question"]}") {
            val params = OcraParams(
                counter = v.longOrNull("counter")?.toULong(),
                question = v["question"] as String?,
                password = v["password"] as String?,
                session = (v["session_hex"] as String?)?.let(::hex),
                unixTime = v.longOrNull("time")?.toULong(),
            )
            assertEquals(v.str("code"), ocra(v.str("suite"), hex(v.str("key_hex")), params))
        }
    }
}

fun otpauthTests(r: Runner) {
    val rfc = hex("3132333435363738393031323334353637383930")

    r.test("otpauth: short secret refused with SECRET_TOO_SHORT by default") {
        assertEquals("SECRET_TOO_SHORT", failure { parseOtpauthUri(GOOGLE_EXAMPLE) }.code)
        assertEquals("SECRET_TOO_SHORT", failure { otpauthCode(GOOGLE_EXAMPLE, 59uL) }.code)
    }
    r.test("otpauth: parse with allowShortSecret = true") {
        val u = parseOtpauthUri(GOOGLE_EXAMPLE, allowShortSecret = true)
        assertEquals(OtpKind.Totp(30uL), u.kind)
        assertEquals("Example", u.issuer)
        assertEquals("alice@google.com", u.account)
        assertContentEquals("Hello!".toByteArray() + hex("deadbeef"), u.secret)
        assertEquals(OtpAlgorithm.SHA1, u.algorithm)
        assertEquals(6.toUByte(), u.digits)
    }
    r.test("otpauth: code of the short-secret example with allowShortSecret = true") {
        assertEquals("324550", otpauthCode(GOOGLE_EXAMPLE, 1_700_000_000uL, allowShortSecret = true))
    }
    r.test("otpauth: format is canonical and parses back to the same key") {
        val u = parseOtpauthUri(GOOGLE_EXAMPLE, allowShortSecret = true)
        val s = formatOtpauthUri(u)
        assertEquals("otpauth://totp/Example:alice%40google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example&algorithm=SHA1&digits=6&period=30", s)
        val back = parseOtpauthUri(s, allowShortSecret = true)
        assertEquals(u.kind, back.kind)
        assertEquals(u.issuer, back.issuer)
        assertEquals(u.account, back.account)
        assertContentEquals(u.secret, back.secret)
        assertEquals(u.algorithm, back.algorithm)
        assertEquals(u.digits, back.digits)
    }
    r.test("otpauth: format a HOTP record built in Kotlin, then code at its counter") {
        val u = OtpAuthUri(OtpKind.Hotp(1uL), "ACME Co", "bob", rfc, OtpAlgorithm.SHA256, 8u)
        val s = formatOtpauthUri(u)
        assertTrue(s.startsWith("otpauth://hotp/"), s)
        val back = parseOtpauthUri(s)
        assertEquals(OtpKind.Hotp(1uL), back.kind)
        assertEquals("ACME Co", back.issuer)
        assertEquals("bob", back.account)
        assertContentEquals(rfc, back.secret)
        assertEquals(hotp(rfc, 1uL, 8u, OtpAlgorithm.SHA256), otpauthCode(s, 0uL))
    }
    r.test("otpauth: TOTP code at time 59 with the RFC secret") {
        val uri = "otpauth://totp/ACME:bob?secret=$RFC_SECRET_B32&issuer=ACME&digits=8"
        assertEquals("94287082", otpauthCode(uri, 59uL))
    }
    r.test("otpauth: malformed URI fails with INVALID_URI") {
        val e = failure { parseOtpauthUri("https://example.com/") }
        assertEquals("INVALID_URI", e.code)
        assertTrue(e.code in errorCodes(), "code ${e.code} not in errorCodes()")
        assertEquals("INVALID_URI", failure { otpauthCode("otpauth://totp/?secret=$RFC_SECRET_B32", 59uL) }.code)
    }
    r.test("otpauth: a secret of an impossible base32 length -> INVALID_SECRET") {
        val uri = "otpauth://totp/ACME:bob?secret=${RFC_SECRET_B32}A&issuer=ACME"
        assertEquals("INVALID_SECRET", failure { parseOtpauthUri(uri) }.code)
    }
}

fun encodingTests(r: Runner) {
    r.test("base32: encode RFC secret") {
        assertEquals(RFC_SECRET_B32, base32Encode("12345678901234567890".toByteArray()))
    }
    r.test("base32: lenient decode (case, spaces, padding)") {
        assertContentEquals("Hello!".toByteArray() + hex("deadbeef"), base32Decode("jbsw y3dp ehpk 3pxp"))
        assertContentEquals("f".toByteArray(), base32Decode("MY======"))
        assertContentEquals(ByteArray(0), base32Decode(""))
    }
    r.test("newOtpSecret: 20 fresh bytes") {
        val a = newOtpSecret()
        val b = newOtpSecret()
        assertEquals(20, a.size)
        assertFalse(a.contentEquals(b))
    }
}

fun errorTests(r: Runner) {
    r.test("error: INVALID_DIGITS is a TesseraException.Failure with code and detail") {
        val e = failure { hotp("k".toByteArray(), 0uL, 3u, OtpAlgorithm.SHA1) }
        assertEquals("INVALID_DIGITS", e.code)
        assertTrue(e.detail.isNotBlank())
        assertIs<Exception>(e)
        assertTrue(e.message!!.contains("INVALID_DIGITS"), "message: ${e.message}")
    }
    r.test("error: base32Decode(\"!!\") -> INVALID_SECRET") {
        assertEquals("INVALID_SECRET", failure { base32Decode("!!") }.code)
    }
    r.test("error: base32 of an impossible length (1, 3, 6 mod 8) -> INVALID_SECRET") {
        for (s in listOf("A", "AAA", "AAAAAA", "A=======", "AAAAAA==", "AAAAAAAAA", "gezd gnbv gy3")) {
            assertEquals("INVALID_SECRET", failure { base32Decode(s) }.code, s)
        }
        for (s in listOf("AA", "AAAA", "AAAAA", "AAAAAAA", "AAAAAAAA")) {
            assertEquals(s.length * 5 / 8, base32Decode(s).size, s)
        }
    }
    r.test("error: ocra with an unknown suite -> INVALID_OCRA_SUITE") {
        val e = failure { ocra("OCRA-2:HOTP-SHA1-6:QN08", ByteArray(20), OcraParams(question = "00000000")) }
        assertEquals("INVALID_OCRA_SUITE", e.code)
    }
    r.test("error: a catch on the sealed type sees every failure") {
        try {
            totp(ByteArray(20), 59uL, 0uL, 6u, OtpAlgorithm.SHA1)
            fail("period 0 must be refused")
        } catch (e: TesseraException) {
            when (e) {
                is TesseraException.Failure -> assertEquals("INVALID_TIME", e.code)
            }
        }
    }
    r.test("errorCodes: stable table, unique, contains the codes used here") {
        val codes = errorCodes()
        assertEquals(codes.size, codes.toSet().size)
        for (c in listOf("INVALID_DIGITS", "INVALID_SECRET", "INVALID_OCRA_SUITE", "SECRET_TOO_SHORT", "OTP_REPLAYED", "OTP_MISMATCH", "LOCKED_OUT", "INVALID_TIME", "INVALID_URI")) {
            assertTrue(c in codes, "$c missing from errorCodes()")
        }
    }
}

fun verifierTests(r: Runner) {
    val secret = hex("3132333435363738393031323334353637383930")
    val now = 1_700_000_000uL // step 56666666: code 921300; step before: 276857
    val config = OtpVerifierConfig(secret = secret, algorithm = OtpAlgorithm.SHA1)

    r.test("verifier: record defaults (6 digits, 30 s, window 1, 5 failures)") {
        assertEquals(6.toUByte(), config.digits)
        assertEquals(30uL, config.period)
        assertEquals(1uL, config.window)
        assertEquals(5u, config.maxFailures)
        assertNull(config.lockSeconds)
        assertEquals(OtpVerifierState(), OtpVerifierState(null, 0uL, 0u, false, null))
    }
    r.test("verifier: TOTP accept, then replay -> OTP_REPLAYED") {
        val code = totp(secret, now, 30uL, 6u, OtpAlgorithm.SHA1)
        assertEquals("921300", code)
        val ok = totpVerify(config, code, now, OtpVerifierState())
        assertTrue(ok.accepted)
        assertNull(ok.errorCode)
        assertEquals(56_666_666uL, ok.matched)
        assertEquals(0L, ok.drift)
        assertEquals(56_666_666uL, ok.state.lastAccepted)
        val replay = totpVerify(config, code, now + 5uL, ok.state)
        assertFalse(replay.accepted)
        assertEquals("OTP_REPLAYED", replay.errorCode)
        assertNull(replay.matched)
        assertEquals(1u, replay.state.consecutiveFailures)
    }
    r.test("verifier: previous step accepted with drift -1") {
        val c = totpVerify(config, "276857", now, OtpVerifierState())
        assertTrue(c.accepted, "refused: ${c.errorCode}")
        assertEquals(-1L, c.drift)
    }
    r.test("verifier: 5 wrong codes -> locked, then even the right code -> LOCKED_OUT") {
        var st = OtpVerifierState()
        repeat(5) { i ->
            val c = totpVerify(config, "000000", now, st)
            assertFalse(c.accepted)
            // The fifth failure locks, and says so.
            assertEquals(if (i < 4) "OTP_MISMATCH" else "LOCKED_OUT", c.errorCode)
            st = c.state
        }
        assertTrue(st.locked)
        assertEquals(5u, st.consecutiveFailures)
        val locked = totpVerify(config, "921300", now, st)
        assertFalse(locked.accepted)
        assertEquals("LOCKED_OUT", locked.errorCode)
        // An administrative unlock is a state reset done by the caller.
        assertTrue(totpVerify(config, "921300", now, locked.state.copy(locked = false, consecutiveFailures = 0u)).accepted)
    }
    r.test("verifier: timed lock (lockSeconds) expires") {
        val cfg = config.copy(maxFailures = 2u, lockSeconds = 100uL)
        var st = OtpVerifierState()
        repeat(2) { st = totpVerify(cfg, "000000", now, st).state }
        assertEquals(now + 100uL, st.lockedUntil)
        assertEquals("LOCKED_OUT", totpVerify(cfg, "000000", now + 99uL, st).errorCode)
        val later = now + 100uL
        assertTrue(totpVerify(cfg, totp(secret, later, 30uL, 6u, OtpAlgorithm.SHA1), later, st).accepted)
    }
    r.test("verifier: wrong shape -> INVALID_INPUT (no exception)") {
        assertEquals("INVALID_INPUT", totpVerify(config, "12ab56", now, OtpVerifierState()).errorCode)
    }
    r.test("verifier: HOTP look-ahead moves nextCounter past the match") {
        val c = hotpVerify(config, "359152", now, OtpVerifierState()) // counter 2, window 1 from 0 -> refused
        assertFalse(c.accepted)
        assertEquals("OTP_MISMATCH", c.errorCode)
        val cfg = config.copy(window = 10uL)
        val ok = hotpVerify(cfg, "359152", now, OtpVerifierState())
        assertTrue(ok.accepted)
        assertEquals(2uL, ok.matched)
        assertEquals(2L, ok.drift)
        assertEquals(3uL, ok.state.nextCounter)
        assertEquals("OTP_MISMATCH", hotpVerify(cfg, "359152", now, ok.state).errorCode) // used counter
        assertTrue(hotpVerify(cfg, "969429", now, ok.state).accepted) // counter 3
    }
    r.test("verifier: HOTP look-ahead boundary: counter + window accepted, counter + window + 1 refused") {
        for (w in listOf(0uL, 1uL, 10uL, 100uL)) {
            val cfg = config.copy(window = w)
            val st = OtpVerifierState(nextCounter = 500uL)
            val beyond = hotpVerify(cfg, hotp(secret, 500uL + w + 1uL, 6u, OtpAlgorithm.SHA1), now, st)
            assertEquals("OTP_MISMATCH", beyond.errorCode, "window $w")
            val edge = hotpVerify(cfg, hotp(secret, 500uL + w, 6u, OtpAlgorithm.SHA1), now, beyond.state)
            assertTrue(edge.accepted, "window $w: ${edge.errorCode}")
            assertEquals(500uL + w, edge.matched)
            assertEquals(w.toLong(), edge.drift)
        }
    }
    r.test("verifier: HOTP resync with two consecutive codes (RFC 4226 7.4)") {
        // Counters 8 and 9 are beyond the look-ahead of 1 from 0.
        val res = hotpResync(config, "399871", "520489", 100uL, now, OtpVerifierState())
        assertTrue(res.accepted)
        assertEquals(9uL, res.matched)
        assertEquals(10uL, res.state.nextCounter)
        assertEquals("OTP_MISMATCH", hotpResync(config, "399871", "755224", 100uL, now, OtpVerifierState()).errorCode)
    }
    r.test("verifier: a time in milliseconds -> INVALID_TIME, no failure counted") {
        val ms = 1_767_225_600_000uL // 2026-01-01 in milliseconds
        var st = OtpVerifierState()
        repeat(5) { i ->
            // Right and wrong codes alike: the time is refused before the code is looked at.
            val code = if (i % 2 == 0) totp(secret, ms, 30uL, 6u, OtpAlgorithm.SHA1) else "000000"
            val c = totpVerify(config, code, ms, st)
            assertFalse(c.accepted)
            assertEquals("INVALID_TIME", c.errorCode)
            assertEquals(OtpVerifierState(), c.state)
            st = c.state
        }
        val ok = totpVerify(config, "921300", now, st)
        assertTrue(ok.accepted, "refused: ${ok.errorCode}")
        assertEquals(56_666_666uL, ok.matched)
        // Every verifier, every time outside 2000..3000; a timed lock is not ended by it.
        val locked = OtpVerifierState(consecutiveFailures = 5u, locked = true, lockedUntil = now + 100uL)
        for (t in listOf(0uL, 59uL, 946_684_799uL, 32_503_680_000uL, ms, ULong.MAX_VALUE)) {
            for (s in listOf(OtpVerifierState(), locked)) {
                for (c in listOf(
                    totpVerify(config, "000000", t, s),
                    hotpVerify(config, "755224", t, s),
                    hotpResync(config, "755224", "287082", 10uL, t, s),
                )) {
                    assertEquals("INVALID_TIME", c.errorCode, "time $t")
                    assertEquals(s, c.state, "time $t")
                }
            }
        }
        assertEquals("LOCKED_OUT", totpVerify(config, "921300", now + 99uL, locked).errorCode)
    }
    r.test("verifier: HOTP at counter ULong.MAX_VALUE: accepted once, then a replay -> OTP_REPLAYED") {
        val last = ULong.MAX_VALUE
        val cfg = config.copy(window = 10uL)
        val code = hotp(secret, last, 6u, OtpAlgorithm.SHA1)
        val ok = hotpVerify(cfg, code, now, OtpVerifierState(nextCounter = last - 2uL))
        assertTrue(ok.accepted, "refused: ${ok.errorCode}")
        assertEquals(last, ok.matched)
        assertEquals(2L, ok.drift)
        assertEquals(OtpVerifierState(lastAccepted = last, nextCounter = last), ok.state)
        var st = ok.state
        for (i in 1..5) {
            val replay = hotpVerify(cfg, code, now, st)
            assertFalse(replay.accepted)
            // Counted: the fifth failure locks.
            assertEquals(if (i < 5) "OTP_REPLAYED" else "LOCKED_OUT", replay.errorCode)
            assertEquals(i.toUInt(), replay.state.consecutiveFailures)
            st = replay.state
        }
        // Nothing else is accepted either (no wrap to counter 0), and resync cannot revive it.
        assertEquals("OTP_MISMATCH", hotpVerify(cfg, hotp(secret, last - 1uL, 6u, OtpAlgorithm.SHA1), now, ok.state).errorCode)
        assertEquals("OTP_MISMATCH", hotpVerify(cfg, "755224", now, ok.state).errorCode) // counter 0
        assertEquals("OTP_MISMATCH", hotpResync(cfg, code, "755224", 1000uL, now, ok.state).errorCode)
        assertEquals("OTP_MISMATCH", hotpResync(cfg, "755224", "287082", 1000uL, now, ok.state).errorCode)
    }
    r.test("verifier: invalid configuration throws (digits 3)") {
        assertEquals("INVALID_DIGITS", failure { totpVerify(config.copy(digits = 3u), "123", now, OtpVerifierState()) }.code)
    }
}

fun main(args: Array<String>) {
    val path = args.firstOrNull() ?: System.getenv("TESSERA_VECTORS") ?: error("usage: MainKt <vectors/otp.json> [<vectors/link.json>]")
    @Suppress("UNCHECKED_CAST")
    val doc = JsonReader.parse(File(path).readText()) as Map<String, Any?>
    val linkPath = args.getOrNull(1) ?: File(path).resolveSibling("link.json").path
    @Suppress("UNCHECKED_CAST")
    val linkDoc = JsonReader.parse(File(linkPath).readText()) as Map<String, Any?>
    val r = Runner()
    vectorTests(r, doc)
    otpauthTests(r)
    encodingTests(r)
    errorTests(r)
    verifierTests(r)
    linkVectorTests(r, linkDoc)
    linkFlowTests(r)
    println("${r.passed} passed, ${r.failed} failed")
    if (r.failed != 0 || r.passed == 0) exitProcess(1)
}
