// Flow 1 (linking a phone with a single-use QR code) through the Kotlin
// bindings: the golden bytes of vectors/link.json, then every outcome of a
// full flow with the portal and the device in the same process (they talk
// through strings, as over a network). Times are fixed; only the randomness
// of keys and nonces varies between runs.
package dev.tessera.tests

import dev.tessera.*
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotEquals
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue

const val LINK_NOW = 1_800_000_000uL
const val PASSCODE = "493817"
const val ACCOUNT = "anna@example.org"
const val DEVICE_NAME = "Anna's Pixel"

/** The default portal policy: exactly 6 digits, biometrics allowed. */
val RULES = PasscodeRules(minLen = 6u, maxLen = 6u, digitsOnly = true, biometricsAllowed = true)

/** A network text with one character in the middle changed (base64url). */
fun tamperText(s: String): String {
    val i = s.length / 2
    return s.substring(0, i) + (if (s[i] == 'A') 'B' else 'A') + s.substring(i + 1)
}

/** A copy of `b` with one bit flipped at `index`. */
fun flipBit(b: ByteArray, index: Int): ByteArray =
    b.copyOf().also { it[index] = (it[index].toInt() xor 0x01).toByte() }

/** A wrong 6-digit code (differs from `code`). */
fun otherCode(code: String): String = if (code == "000000") "000001" else "000000"

/** Offer → scan → start → open → accept (at now+11) → finish, asserting each step succeeds. */
class Linked(
    val portal: TesseraPortal,
    val device: TesseraDevice,
    val qrText: String,
    val accept: AcceptResult,
    val finish: LinkFinishResult,
    val biometricSecret: ByteArray?,
    val now: ULong,
) {
    val offer: StoredOffer get() = assertNotNull(accept.offer)
    val pending: StoredPendingLink get() = assertNotNull(accept.pending)
    val state: ByteArray get() = finish.state

    /** Confirm with the right check code at now+20; returns the registry entry. */
    fun confirm(): StoredDevice {
        val c = portal.confirmLink(pending, finish.checkCode, now + 20uL)
        assertTrue(c.linked, "confirm refused: ${c.errorCode}")
        return assertNotNull(c.device)
    }
}

fun linkDevice(
    portal: TesseraPortal,
    device: TesseraDevice,
    account: String = ACCOUNT,
    name: String = DEVICE_NAME,
    biometrics: Boolean = false,
    now: ULong = LINK_NOW,
): Linked {
    val created = portal.createOffer(account, 300uL, RULES, now)
    val start = device.startLink(created.qrText, name, PASSCODE, biometrics, null, now + 10uL)
    val request = portal.openLinkRequest(start.request)
    assertEquals(created.offer.offerId, request.offerId())
    val accept = request.accept(portal, created.offer, now + 11uL)
    assertTrue(accept.accepted, "accept refused: ${accept.errorCode}")
    val finish = start.pending.finish(accept.answer)
    return Linked(portal, device, created.qrText, accept, finish, start.biometricSecret, now)
}

fun newPortal() = TesseraPortal.generate("Example Bank")
fun newDevice() = TesseraDevice(newStorageKey())

fun linkVectorTests(r: Runner, v: Map<String, Any?>) {
    val key = hex(v.str("storage_key_hex"))

    /** The golden pending link, reopened and finished with the golden answer. */
    fun finished(): LinkFinishResult = TesseraDevice(key).use { d ->
        d.openPendingLink(hex(v.str("pending_sealed_hex"))).use { it.finish(v.str("answer")) }
    }

    r.test("defaults: createOffer without ttl lives 300 s; PasscodeRules() is exactly 6 digits; verifier config defaults to SHA1") {
        val now = 1_800_000_000uL
        val created = newPortal().createOffer("anna", rules = PasscodeRules(), now = now)
        assertEquals(now + 300uL, created.offer.expiresAt)
        assertEquals(RULES, newDevice().scanLinkQr(created.qrText, now).passcodeRules)
        val cfg = OtpVerifierConfig(secret = "12345678901234567890".toByteArray())
        assertTrue(totpVerify(cfg, totp(cfg.secret, 59uL, 30uL, 6u, OtpAlgorithm.SHA1), 59uL, OtpVerifierState()).accepted)
    }
    r.test("link vector: scan qr_text at scan_time -> portal name, fingerprint, expires_at, rules") {
        val info = newDevice().use { it.scanLinkQr(v.str("qr_text"), v.long("scan_time").toULong()) }
        assertEquals(v.str("portal_name"), info.portalName)
        assertEquals(v.str("portal_fingerprint"), info.portalFingerprint)
        assertEquals(v.long("expires_at").toULong(), info.expiresAt)
        assertEquals(RULES, info.passcodeRules)
    }
    r.test("link vector: sealed pending + answer -> check_code, device_id, account facts") {
        val f = finished()
        assertEquals(v.str("check_code"), f.checkCode)
        assertEquals(v.str("device_id"), f.account.deviceId)
        assertEquals(v.str("account"), f.account.account)
        assertEquals(v.str("device_name"), f.account.deviceName)
        assertEquals(v.str("portal_name"), f.account.portalName)
        assertEquals(v.str("portal_fingerprint"), f.account.portalFingerprint)
        assertEquals(v.long("accept_time").toULong(), f.account.linkedAt)
        assertEquals(v.long("confirm_by").toULong(), f.account.confirmBy)
        assertEquals(v["biometrics"] as Boolean, f.account.biometrics)
    }
    r.test("link vector: totp at totp_time with the passcode and with the biometric secret") {
        val state = finished().state
        TesseraDevice(key).use { d ->
            val t = v.long("totp_time").toULong()
            assertEquals(v.str("totp"), d.totp(state, Unlock.Passcode(v.str("passcode")), t))
            assertEquals(v.str("totp"), d.totp(state, Unlock.Biometric(hex(v.str("biometric_secret_hex"))), t))
        }
    }
    r.test("link vector: portal fromSecret opens the request -> offer_id, device_id, device name") {
        TesseraPortal.fromSecret(hex(v.str("portal_secret_hex")), v.str("portal_name")).use { p ->
            assertEquals(v.str("portal_fingerprint"), p.fingerprint())
            assertEquals(v.str("portal_name"), p.name())
            val req = p.openLinkRequest(v.str("request"))
            assertEquals(v.str("offer_id"), req.offerId())
            assertEquals(v.str("device_id"), req.deviceId())
            assertEquals(v.str("device_name"), req.deviceName())
        }
    }
}

fun linkFlowTests(r: Runner) {
    val now = LINK_NOW

    r.test("link: success (scan, accept, finish, confirm with the check code, device_linked)") {
        val portal = newPortal()
        val device = newDevice()
        val created = portal.createOffer(ACCOUNT, 300uL, RULES, now)
        assertEquals(ACCOUNT, created.offer.account)
        assertEquals(now + 300uL, created.offer.expiresAt)
        assertNull(created.offer.usedAt)
        assertTrue(created.qrText.startsWith("TS:"), created.qrText)

        val info = device.scanLinkQr(created.qrText, now + 5uL)
        assertEquals("Example Bank", info.portalName)
        assertEquals(portal.fingerprint(), info.portalFingerprint)
        assertEquals(now + 300uL, info.expiresAt)
        assertEquals(RULES, info.passcodeRules)

        val start = device.startLink(created.qrText, DEVICE_NAME, PASSCODE, true, null, now + 10uL)
        assertEquals(32, assertNotNull(start.biometricSecret).size)
        val request = portal.openLinkRequest(start.request)
        assertEquals(created.offer.offerId, request.offerId())
        assertEquals(DEVICE_NAME, request.deviceName())
        assertEquals(16, request.deviceId().length)

        val acc = request.accept(portal, created.offer, now + 11uL)
        assertTrue(acc.accepted)
        assertNull(acc.errorCode)
        val usedOffer = assertNotNull(acc.offer)
        assertEquals(created.offer.offerId, usedOffer.offerId)
        assertEquals(now + 11uL, usedOffer.usedAt)
        val pending = assertNotNull(acc.pending)
        assertEquals(request.deviceId(), pending.deviceId)
        assertEquals(ACCOUNT, pending.account)
        assertEquals(DEVICE_NAME, pending.deviceName)
        assertEquals(now + 11uL + 600uL, pending.confirmBy)
        assertEquals(0u, pending.attempts)
        assertFalse(pending.closed)
        assertEquals(listOf(LinkEvent("link_requested", ACCOUNT, request.deviceId(), DEVICE_NAME, now + 11uL)), acc.events)

        val fin = start.pending.finish(acc.answer)
        assertTrue(fin.checkCode.length == 6 && fin.checkCode.all { it.isDigit() }, "check code")
        val expected = LinkedAccount(
            portalName = "Example Bank", portalFingerprint = portal.fingerprint(), account = ACCOUNT,
            deviceId = request.deviceId(), deviceName = DEVICE_NAME, linkedAt = now + 11uL,
            confirmBy = pending.confirmBy, biometrics = true,
        )
        assertEquals(expected, fin.account)
        assertEquals(expected, device.account(fin.state))

        val c = portal.confirmLink(pending, fin.checkCode, now + 20uL)
        assertTrue(c.linked, "confirm refused: ${c.errorCode}")
        assertNull(c.errorCode)
        assertTrue(c.pending.closed)
        val rec = assertNotNull(c.device)
        assertEquals(request.deviceId(), rec.deviceId)
        assertEquals(ACCOUNT, rec.account)
        assertEquals(DEVICE_NAME, rec.name)
        assertEquals(now + 20uL, rec.linkedAt)
        assertNull(rec.lastUsedAt)
        assertEquals(DeviceStatus.ACTIVE, rec.status)
        assertTrue(rec.sealed.isNotEmpty())
        assertEquals(listOf(LinkEvent("device_linked", ACCOUNT, rec.deviceId, DEVICE_NAME, now + 20uL)), c.events)

        // Confirming the closed pending link again is refused.
        assertEquals("INVALID_STATE", portal.confirmLink(c.pending, fin.checkCode, now + 21uL).errorCode)
        // The new device's code is accepted.
        val t = now + 100uL
        assertTrue(portal.verifyDeviceTotp(rec, device.totp(fin.state, Unlock.Passcode(PASSCODE), t), t).accepted)
    }

    r.test("link: second use of the same QR -> TOKEN_ALREADY_USED at accept and at finish") {
        val portal = newPortal()
        val created = portal.createOffer(ACCOUNT, 300uL, RULES, now)
        val phoneA = newDevice()
        val phoneB = newDevice()
        val a = phoneA.startLink(created.qrText, "Phone A", PASSCODE, false, null, now + 10uL)
        val b = phoneB.startLink(created.qrText, "Phone B", "728194", false, null, now + 10uL)
        val first = portal.openLinkRequest(a.request).accept(portal, created.offer, now + 11uL)
        assertTrue(first.accepted)
        val used = assertNotNull(first.offer) // what the host stored
        val reqB = portal.openLinkRequest(b.request)
        assertEquals(created.offer.offerId, reqB.offerId())
        val second = reqB.accept(portal, used, now + 12uL)
        assertFalse(second.accepted)
        assertEquals("TOKEN_ALREADY_USED", second.errorCode)
        assertNull(second.offer)
        assertNull(second.pending)
        assertTrue(second.events.isEmpty())
        assertEquals("TOKEN_ALREADY_USED", failure { b.pending.finish(second.answer) }.code)
        assertEquals(ACCOUNT, a.pending.finish(first.answer).account.account)
    }

    r.test("link: expired QR -> TOKEN_EXPIRED at scan, start, accept and finish") {
        val portal = newPortal()
        val device = newDevice()
        val created = portal.createOffer(ACCOUNT, 60uL, RULES, now)
        assertEquals(now + 60uL, created.offer.expiresAt)
        assertEquals("TOKEN_EXPIRED", failure { device.scanLinkQr(created.qrText, now + 60uL) }.code)
        assertEquals("TOKEN_EXPIRED", failure { device.startLink(created.qrText, DEVICE_NAME, PASSCODE, false, null, now + 60uL) }.code)
        val start = device.startLink(created.qrText, DEVICE_NAME, PASSCODE, false, null, now + 59uL)
        val acc = portal.openLinkRequest(start.request).accept(portal, created.offer, now + 61uL)
        assertFalse(acc.accepted)
        assertEquals("TOKEN_EXPIRED", acc.errorCode)
        assertEquals("TOKEN_EXPIRED", failure { start.pending.finish(acc.answer) }.code)
    }

    r.test("link: unknown offer -> accept(null) and a mismatched offer give TOKEN_UNKNOWN") {
        val portal = newPortal()
        val device = newDevice()
        val created = portal.createOffer(ACCOUNT, 300uL, RULES, now)
        val start = device.startLink(created.qrText, DEVICE_NAME, PASSCODE, false, null, now + 10uL)
        val acc = portal.openLinkRequest(start.request).accept(portal, null, now + 11uL)
        assertFalse(acc.accepted)
        assertEquals("TOKEN_UNKNOWN", acc.errorCode)
        assertEquals("TOKEN_UNKNOWN", failure { start.pending.finish(acc.answer) }.code)
        // The host looked up the wrong row: refused the same way.
        val other = portal.createOffer(ACCOUNT, 300uL, RULES, now).offer
        val start2 = device.startLink(created.qrText, DEVICE_NAME, PASSCODE, false, null, now + 10uL)
        assertEquals("TOKEN_UNKNOWN", portal.openLinkRequest(start2.request).accept(portal, other, now + 11uL).errorCode)
        // Another portal cannot read the request at all.
        assertEquals("MESSAGE_TAMPERED", failure { newPortal().openLinkRequest(start2.request) }.code)
    }

    r.test("link: startLink with a current state -> DEVICE_ALREADY_LINKED") {
        val portal = newPortal()
        val l = linkDevice(portal, newDevice())
        val qr = portal.createOffer(ACCOUNT, 300uL, RULES, now).qrText
        assertEquals("DEVICE_ALREADY_LINKED", failure { l.device.startLink(qr, "Again", PASSCODE, false, l.state, now + 10uL) }.code)
    }

    r.test("link: trivial passcode 123456 -> WEAK_PASSCODE") {
        val qr = newPortal().createOffer(ACCOUNT, 300uL, RULES, now).qrText
        assertEquals("WEAK_PASSCODE", failure { newDevice().startLink(qr, DEVICE_NAME, "123456", false, null, now) }.code)
    }

    r.test("link: 5-digit passcode -> PASSCODE_POLICY") {
        val qr = newPortal().createOffer(ACCOUNT, 300uL, RULES, now).qrText
        assertEquals("PASSCODE_POLICY", failure { newDevice().startLink(qr, DEVICE_NAME, "49381", false, null, now) }.code)
    }

    r.test("link: garbage QR -> MALFORMED_MESSAGE") {
        newDevice().use { d ->
            assertEquals("MALFORMED_MESSAGE", failure { d.scanLinkQr("hello", now) }.code)
            assertEquals("MALFORMED_MESSAGE", failure { d.startLink("hello", DEVICE_NAME, PASSCODE, false, null, now) }.code)
        }
    }

    r.test("link: tampered answer -> MESSAGE_TAMPERED; the sealed pending link still finishes") {
        val portal = newPortal()
        val device = newDevice()
        val created = portal.createOffer(ACCOUNT, 300uL, RULES, now)
        val start = device.startLink(created.qrText, DEVICE_NAME, PASSCODE, false, null, now + 10uL)
        val saved = start.pending.sealed()
        val acc = portal.openLinkRequest(start.request).accept(portal, created.offer, now + 11uL)
        assertEquals("MESSAGE_TAMPERED", failure { start.pending.finish(tamperText(acc.answer)) }.code)
        val fin = device.openPendingLink(saved).finish(acc.answer)
        assertTrue(portal.confirmLink(assertNotNull(acc.pending), fin.checkCode, now + 20uL).linked)
    }

    r.test("link: tampered state -> STATE_CORRUPT") {
        val l = linkDevice(newPortal(), newDevice())
        for (i in listOf(l.state.size / 2, l.state.size - 1)) {
            val bad = flipBit(l.state, i)
            assertEquals("STATE_CORRUPT", failure { l.device.account(bad) }.code, "byte $i")
            assertEquals("STATE_CORRUPT", failure { l.device.totp(bad, Unlock.Passcode(PASSCODE), now) }.code, "byte $i")
        }
        assertEquals("STATE_CORRUPT", failure { l.device.account(l.state.copyOf(10)) }.code)
    }

    r.test("link: wrong storage key (32 bytes) -> STATE_CORRUPT for state and pending link") {
        val portal = newPortal()
        val l = linkDevice(portal, newDevice())
        val stranger = newDevice()
        assertEquals("STATE_CORRUPT", failure { stranger.account(l.state) }.code)
        assertEquals("STATE_CORRUPT", failure { stranger.statusRequest(l.state, now) }.code)
        val start = l.device.startLink(portal.createOffer(ACCOUNT, 300uL, RULES, now).qrText, "P", PASSCODE, false, null, now)
        assertEquals("STATE_CORRUPT", failure { stranger.openPendingLink(start.pending.sealed()) }.code)
    }

    r.test("link: storage key of 31 (or 33, 0) bytes -> INVALID_INPUT") {
        for (n in listOf(31, 33, 0)) {
            assertEquals("INVALID_INPUT", failure { TesseraDevice(ByteArray(n)) }.code, "$n bytes")
        }
        assertEquals(32, newStorageKey().size)
        assertFalse(newStorageKey().contentEquals(newStorageKey()))
    }

    r.test("link: finish twice -> ALREADY_CONSUMED (sealed() too)") {
        val portal = newPortal()
        val device = newDevice()
        val created = portal.createOffer(ACCOUNT, 300uL, RULES, now)
        val start = device.startLink(created.qrText, DEVICE_NAME, PASSCODE, false, null, now + 10uL)
        val acc = portal.openLinkRequest(start.request).accept(portal, created.offer, now + 11uL)
        start.pending.finish(acc.answer)
        assertEquals("ALREADY_CONSUMED", failure { start.pending.finish(acc.answer) }.code)
        assertEquals("ALREADY_CONSUMED", failure { start.pending.sealed() }.code)
    }

    r.test("link: accept twice -> ALREADY_CONSUMED; refuse after accept (lost compare-and-set) still works") {
        val portal = newPortal()
        val created = portal.createOffer(ACCOUNT, 300uL, RULES, now)
        val start = newDevice().startLink(created.qrText, DEVICE_NAME, PASSCODE, false, null, now + 10uL)
        val request = portal.openLinkRequest(start.request)
        assertTrue(request.accept(portal, created.offer, now + 11uL).accepted)
        assertEquals("ALREADY_CONSUMED", failure { request.accept(portal, created.offer, now + 12uL) }.code)
        // The host's compare-and-set on the offer lost: tell the device, authenticated.
        val refusal = request.refuse(portal, "TOKEN_ALREADY_USED")
        assertEquals("TOKEN_ALREADY_USED", failure { start.pending.finish(refusal) }.code)
        assertEquals(created.offer.offerId, request.offerId()) // accessors stay readable
    }

    r.test("link: refuse (lost compare-and-set) -> the device gets the typed error") {
        val portal = newPortal()
        val created = portal.createOffer(ACCOUNT, 300uL, RULES, now)
        val start = newDevice().startLink(created.qrText, DEVICE_NAME, PASSCODE, false, null, now + 10uL)
        val request = portal.openLinkRequest(start.request)
        assertEquals("INVALID_INPUT", failure { request.refuse(portal, "NOT_A_CODE") }.code)
        val answer = request.refuse(portal, "TOKEN_ALREADY_USED")
        assertEquals("TOKEN_ALREADY_USED", failure { start.pending.finish(answer) }.code)
    }

    r.test("link: PendingLink survives sealed()/openPendingLink across an app restart") {
        val portal = newPortal()
        val key = newStorageKey()
        val created = portal.createOffer(ACCOUNT, 300uL, RULES, now)
        // Before the restart: start, save the sealed pending link, drop everything.
        val (request, saved) = TesseraDevice(key).use { d ->
            d.startLink(created.qrText, DEVICE_NAME, PASSCODE, true, null, now + 10uL).use { s ->
                s.request to s.pending.sealed()
            }
        }
        val acc = portal.openLinkRequest(request).accept(portal, created.offer, now + 11uL)
        // After the restart: a new device object with the same key.
        val fin = TesseraDevice(key).use { d -> d.openPendingLink(saved).use { it.finish(acc.answer) } }
        assertEquals(DEVICE_NAME, fin.account.deviceName)
        assertTrue(fin.account.biometrics)
        assertTrue(portal.confirmLink(assertNotNull(acc.pending), fin.checkCode, now + 20uL).linked)
    }

    r.test("link: wrong check code 5x -> CHECK_CODE_MISMATCH x4, then LOCKED_OUT; attempts counted") {
        val l = linkDevice(newPortal(), newDevice())
        val wrong = otherCode(l.finish.checkCode)
        var p = l.pending
        for (i in 1..4) {
            val c = l.portal.confirmLink(p, wrong, now + 20uL + i.toULong())
            assertFalse(c.linked)
            assertEquals("CHECK_CODE_MISMATCH", c.errorCode)
            assertNull(c.device)
            assertTrue(c.events.isEmpty())
            assertEquals(i.toUInt(), c.pending.attempts)
            assertFalse(c.pending.closed)
            p = c.pending
        }
        val locked = l.portal.confirmLink(p, wrong, now + 30uL)
        assertFalse(locked.linked)
        assertEquals("LOCKED_OUT", locked.errorCode)
        assertEquals(5u, locked.pending.attempts)
        assertTrue(locked.pending.closed)
        assertNull(locked.device)
        // Even the right code is refused now.
        val after = l.portal.confirmLink(locked.pending, l.finish.checkCode, now + 31uL)
        assertFalse(after.linked)
        assertEquals("INVALID_STATE", after.errorCode)
    }

    r.test("link: check code after confirm_by -> TOKEN_EXPIRED") {
        val l = linkDevice(newPortal(), newDevice())
        val c = l.portal.confirmLink(l.pending, l.finish.checkCode, l.pending.confirmBy)
        assertFalse(c.linked)
        assertEquals("TOKEN_EXPIRED", c.errorCode)
        assertTrue(c.pending.closed)
    }

    r.test("link: biometric totp == passcode totp, accepted once by the portal") {
        val l = linkDevice(newPortal(), newDevice(), biometrics = true)
        val bio = assertNotNull(l.biometricSecret)
        assertEquals(32, bio.size)
        var rec = l.confirm()
        val t = now + 100uL
        val code = l.device.totp(l.state, Unlock.Passcode(PASSCODE), t)
        assertEquals(code, l.device.totp(l.state, Unlock.Biometric(bio), t))
        val ok = l.portal.verifyDeviceTotp(rec, l.device.totp(l.state, Unlock.Biometric(bio), t), t)
        assertTrue(ok.accepted, "refused: ${ok.errorCode}")
        assertNull(ok.errorCode)
        assertEquals(t, ok.device.lastUsedAt)
        rec = ok.device
        assertEquals("OTP_REPLAYED", l.portal.verifyDeviceTotp(rec, code, t).errorCode)
        assertEquals("INVALID_INPUT", failure { l.device.totp(l.state, Unlock.Biometric(bio.copyOf(31)), t) }.code)
    }

    r.test("link: without biometrics there is no biometric secret") {
        val l = linkDevice(newPortal(), newDevice(), biometrics = false)
        assertNull(l.biometricSecret)
        assertFalse(l.finish.account.biometrics)
    }

    r.test("link: wrong passcode gives a plausible code the portal refuses -> OTP_MISMATCH") {
        val l = linkDevice(newPortal(), newDevice())
        val rec = l.confirm()
        val t = now + 200uL
        val bad = l.device.totp(l.state, Unlock.Passcode("000111"), t)
        assertEquals(6, bad.length)
        assertNotEquals(l.device.totp(l.state, Unlock.Passcode(PASSCODE), t), bad)
        val c = l.portal.verifyDeviceTotp(rec, bad, t)
        assertFalse(c.accepted)
        assertEquals("OTP_MISMATCH", c.errorCode)
    }

    r.test("link: unlink at the portal -> status answer -> readStatusAnswer throws DEVICE_REVOKED") {
        val l = linkDevice(newPortal(), newDevice())
        var rec = l.confirm()
        // Still linked.
        val check = l.device.statusRequest(l.state, now + 50uL)
        assertEquals(rec.deviceId, l.portal.statusRequestDevice(check.request))
        val ans = l.portal.answerStatus(check.request, rec, now + 50uL)
        l.device.readStatusAnswer(l.state, check.probe, ans.answer)
        assertEquals(now + 50uL, ans.device.lastUsedAt)
        rec = ans.device
        // Rename, then unlink without the device (lost phone).
        val renamed = l.portal.renameDevice(rec, "Lost phone", now + 60uL)
        assertEquals("Lost phone", renamed.device.name)
        assertEquals(LinkEvent("device_renamed", ACCOUNT, rec.deviceId, "Lost phone", now + 60uL), renamed.event)
        val unlinked = l.portal.unlinkDevice(renamed.device, now + 70uL)
        assertEquals(DeviceStatus.UNLINKED, unlinked.device.status)
        assertEquals(LinkEvent("device_unlinked", ACCOUNT, rec.deviceId, null, now + 70uL), unlinked.event)
        rec = unlinked.device
        assertEquals("INVALID_STATE", failure { l.portal.unlinkDevice(rec, now + 71uL) }.code)
        // The device learns it on its next status check.
        l.device.statusRequest(l.state, now + 80uL).use { c ->
            val a = l.portal.answerStatus(c.request, rec, now + 80uL)
            assertEquals("DEVICE_REVOKED", failure { l.device.readStatusAnswer(l.state, c.probe, a.answer) }.code)
            assertEquals("MESSAGE_TAMPERED", failure { l.device.readStatusAnswer(l.state, c.probe, tamperText(a.answer)) }.code)
        }
        val t = now + 90uL
        assertEquals("DEVICE_REVOKED", l.portal.verifyDeviceTotp(rec, l.device.totp(l.state, Unlock.Passcode(PASSCODE), t), t).errorCode)
    }

    r.test("link: unlinkLocally, then the same device links again") {
        val portal = newPortal()
        val device = newDevice()
        val first = linkDevice(portal, device)
        val rec1 = first.confirm()
        val facts = device.unlinkLocally(first.state)
        assertEquals(device.account(first.state), facts)
        assertEquals(rec1.deviceId, facts.deviceId)
        // The app deleted the state: no current state any more.
        val second = linkDevice(portal, device, name = "Anna's Pixel (2)", now = now + 1000uL)
        val rec2 = second.confirm()
        assertNotEquals(rec1.deviceId, rec2.deviceId)
        assertEquals("Anna's Pixel (2)", device.account(second.state).deviceName)
        val t = now + 1100uL
        assertTrue(portal.verifyDeviceTotp(rec2, device.totp(second.state, Unlock.Passcode(PASSCODE), t), t).accepted)
    }

    r.test("lifetimes: use {} / close() on TesseraDevice; a closed object is not usable") {
        val key = newStorageKey()
        val d = TesseraDevice(key)
        d.use { assertEquals("MALFORMED_MESSAGE", failure { it.scanLinkQr("hello", now) }.code) }
        assertTrue(d.uniffiIsDestroyed)
        assertFailsWith<IllegalStateException> { d.scanLinkQr("hello", now) }
        d.close() // second close is a no-op
        TesseraDevice(key).close()
    }

    r.test("lifetimes: PendingLink outlives its TesseraDevice; a destroyed PendingLink is not usable") {
        val portal = newPortal()
        val key = newStorageKey()
        val created = portal.createOffer(ACCOUNT, 300uL, RULES, now)
        val start = TesseraDevice(key).use { d ->
            d.startLink(created.qrText, DEVICE_NAME, PASSCODE, false, null, now + 10uL)
        } // the device is closed here; its pending link lives on
        val acc = portal.openLinkRequest(start.request).accept(portal, created.offer, now + 11uL)
        val saved = start.pending.sealed()
        start.destroy() // LinkStartResult is Disposable: destroys its PendingLink
        assertTrue(start.pending.uniffiIsDestroyed)
        assertFailsWith<IllegalStateException> { start.pending.finish(acc.answer) }
        assertFailsWith<IllegalStateException> { start.pending.sealed() }
        start.pending.close() // no-op
        // The saved copy, reopened by a device that is closed right away, finishes.
        val pending = TesseraDevice(key).use { it.openPendingLink(saved) }
        val fin = pending.use { it.finish(acc.answer) }
        assertTrue(portal.confirmLink(assertNotNull(acc.pending), fin.checkCode, now + 20uL).linked)
    }

    r.test("lifetimes: objects dropped without close() are freed by the cleaner") {
        val portal = newPortal()
        val created = portal.createOffer(ACCOUNT, 600uL, RULES, now)
        repeat(50) {
            val d = newDevice()
            val s = d.startLink(created.qrText, "P$it", PASSCODE, false, null, now)
            s.pending.sealed()
            portal.openLinkRequest(s.request)
        }
        System.gc()
        Thread.sleep(50)
        System.gc()
        // Still healthy afterwards.
        assertEquals(ACCOUNT, linkDevice(portal, newDevice()).finish.account.account)
    }
}
