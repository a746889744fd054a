// The golden vectors shared by every language, checked byte for byte through
// the Kotlin API: vectors/otp.json (RFC HOTP, TOTP and OCRA) and
// vectors/link.json (a link transcript with fixed randomness).
package dev.tessera.tests

import dev.tessera.*
import java.time.Instant
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals

private fun Map<String, Any?>.str(k: String): String = this[k] as? String ?: error("vector field '$k' missing")
private fun Map<String, Any?>.long(k: String): Long = this[k] as? Long ?: error("vector field '$k' missing")
private fun Map<String, Any?>.secs(k: String): Instant = Instant.ofEpochSecond(long(k))

@Suppress("UNCHECKED_CAST")
private fun rows(doc: Map<String, Any?>, key: String): List<Map<String, Any?>> =
    (doc[key] as? List<Map<String, Any?>>) ?: error("vectors: no '$key' array")

fun otpVectorTests(r: Runner, doc: Map<String, Any?>) {
    r.test("vectors otp.json: every HOTP, TOTP and OCRA row") {
        var n = 0
        for (v in rows(doc, "hotp")) {
            val code = hotp(hex(v.str("secret_hex")), v.long("counter"), v.long("digits").toInt(), otpAlgorithm(v.str("algorithm")))
            assertEquals(v.str("code"), code, "hotp $v")
            n++
        }
        for (v in rows(doc, "totp")) {
            val code = totp(hex(v.str("secret_hex")), v.secs("time"), v.long("period"), v.long("digits").toInt(), otpAlgorithm(v.str("algorithm")))
            assertEquals(v.str("code"), code, "totp $v")
            n++
        }
        for (v in rows(doc, "ocra")) {
            val params = OcraParams(
                counter = v["counter"] as Long?,
                question = v["question"] as String?,
                password = v["password"] as String?,
                session = (v["session_hex"] as String?)?.let(::hex),
                time = (v["time"] as Long?)?.let(Instant::ofEpochSecond),
            )
            assertEquals(v.str("code"), ocra(v.str("suite"), hex(v.str("key_hex")), params), "ocra $v")
            n++
        }
        assert(n > 0)
    }
}

fun linkVectorTests(r: Runner, v: Map<String, Any?>) {
    val key = hex(v.str("storage_key_hex"))
    val rules = PasscodeRules(minLen = 6, maxLen = 6, digitsOnly = true, biometricsAllowed = true)

    r.test("vectors link.json: scan, then the sealed pending link finished with the golden answer") {
        Device(newStorageKey()).use { d ->
            val info = d.scanLinkQr(v.str("qr_text"), v.secs("scan_time"), null)
            assertEquals(v.str("portal_name"), info.portalName)
            assertEquals(v.str("portal_fingerprint"), info.portalFingerprint)
            assertEquals(v.secs("expires_at"), info.expiresAt)
            assertEquals(rules, info.passcodeRules)
        }
        Device(key).use { d ->
            val f = d.openPendingLink(hex(v.str("pending_sealed_hex"))).use { it.finish(v.str("answer")) }
            assertEquals(v.str("check_code"), f.checkCode)
            assertEquals(v.str("device_id"), f.account.deviceId)
            assertEquals(v.str("account"), f.account.account)
            assertEquals(v.str("device_name"), f.account.deviceName)
            assertEquals(v.str("portal_name"), f.account.portalName)
            assertEquals(v.str("portal_fingerprint"), f.account.portalFingerprint)
            assertEquals(v.secs("accept_time"), f.account.linkedAt)
            assertEquals(v.secs("confirm_by"), f.account.confirmBy)
            assertEquals(v["biometrics"] as Boolean, f.account.biometrics)
            val t = v.secs("totp_time")
            assertEquals(v.str("totp"), d.code(f.state, Unlock.Passcode(v.str("passcode")), t))
            assertEquals(v.str("totp"), d.code(f.state, Unlock.Biometric(hex(v.str("biometric_secret_hex"))), t))
        }
    }
    r.test("vectors link.json: Portal.fromSecret: key, fingerprint, the golden request; pinned scan") {
        val publicKey = hex(v.str("portal_public_key_hex"))
        Portal.fromSecret(hex(v.str("portal_secret_hex")), v.str("portal_name")).use { p ->
            assertContentEquals(publicKey, p.publicKey())
            assertEquals(v.str("portal_fingerprint"), p.fingerprint())
            assertEquals(v.str("portal_name"), p.name())
            p.openLinkRequest(v.str("request")).use { req ->
                assertEquals(v.str("offer_id"), req.offerId())
                assertEquals(v.str("device_id"), req.deviceId())
                assertEquals(v.str("device_name"), req.deviceName())
            }
        }
        Device(newStorageKey()).use { d ->
            val t = v.secs("scan_time")
            assertEquals(v.str("portal_fingerprint"), d.scanLinkQr(v.str("qr_text"), t, publicKey).portalFingerprint)
            val other = Portal.generate("Look-alike").use { it.publicKey() }
            val e = assertFailure { d.scanLinkQr(v.str("qr_text"), t, other) }
            assertEquals(ErrorCode.WRONG_ACCOUNT, e.code)
        }
    }
}
