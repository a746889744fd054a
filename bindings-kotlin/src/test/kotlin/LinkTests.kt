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
import kotlin.test.assertIs
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

/** The row of each kind among the writes of one result (null when there is none). */
fun List<RecordWrite>.offer(): StoredOffer? = filterIsInstance<RecordWrite.Offer>().singleOrNull()?.row
fun List<RecordWrite>.pending(): StoredPendingLink? = filterIsInstance<RecordWrite.PendingLink>().singleOrNull()?.row
fun List<RecordWrite>.device(): StoredDevice? = filterIsInstance<RecordWrite.Device>().singleOrNull()?.row

/**
 * A host's store as docs/DESIGN.md ("Host contract") describes it: each write
 * is an INSERT (expectedVersion null) or an UPDATE … WHERE version = expected,
 * and the writes of one result apply all or nothing.
 */
class Store {
    val offers = HashMap<String, StoredOffer>()
    val pending = HashMap<String, StoredPendingLink>()
    val devices = HashMap<String, StoredDevice>()

    /** True when every check passed and all writes were applied; false (nothing applied) on a conflict. */
    fun apply(writes: List<RecordWrite>): Boolean {
        val ok = writes.all { w ->
            when (w) {
                is RecordWrite.Offer -> offers[w.row.offerId]?.version == w.expectedVersion
                is RecordWrite.PendingLink -> pending[w.row.deviceId]?.version == w.expectedVersion
                is RecordWrite.Device -> devices[w.row.deviceId]?.version == w.expectedVersion
            }
        }
        if (ok) for (w in writes) when (w) {
            is RecordWrite.Offer -> offers[w.row.offerId] = w.row
            is RecordWrite.PendingLink -> pending[w.row.deviceId] = w.row
            is RecordWrite.Device -> devices[w.row.deviceId] = w.row
        }
        return ok
    }

    /** Whether a pending link or device row (of any account) has this device id. */
    fun seen(deviceId: String) = deviceId in pending || deviceId in devices
}

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
    val offer: StoredOffer get() = assertNotNull(accept.writes.offer())
    val pending: StoredPendingLink get() = assertNotNull(accept.writes.pending())
    val state: ByteArray get() = finish.state

    /** Confirm with the right check code at now+20; returns the registry entry. */
    fun confirm(): StoredDevice {
        val c = portal.confirmLink(pending, finish.checkCode, now + 20uL)
        assertTrue(c.linked, "confirm refused: ${c.errorCode}")
        return assertNotNull(c.writes.device())
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
    val accept = request.accept(portal, created.offer, false, now + 11uL)
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
        assertTrue(totpVerify(cfg, totp(cfg.secret, now, 30uL, 6u, OtpAlgorithm.SHA1), now, OtpVerifierState()).accepted)
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
    r.test("link vector: portal public key; scan pinned to it at scan_time") {
        val key = hex(v.str("portal_public_key_hex"))
        TesseraPortal.fromSecret(hex(v.str("portal_secret_hex")), v.str("portal_name")).use { p ->
            assertContentEquals(key, p.publicKey())
        }
        newDevice().use { d ->
            val t = v.long("scan_time").toULong()
            assertEquals(v.str("portal_fingerprint"), d.scanLinkQr(v.str("qr_text"), t, key).portalFingerprint)
            assertEquals("WRONG_ACCOUNT", failure { d.scanLinkQr(v.str("qr_text"), t, newPortal().publicKey()) }.code)
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

        assertEquals(1uL, created.offer.version)
        val acc = request.accept(portal, created.offer, false, now + 11uL)
        assertTrue(acc.accepted)
        assertFalse(acc.repeated)
        assertNull(acc.errorCode)
        // Two compare-and-sets: update the offer (version 1 -> 2), insert the pending link.
        assertEquals(2, acc.writes.size)
        val offerWrite = assertIs<RecordWrite.Offer>(acc.writes[0])
        assertEquals(1uL, offerWrite.expectedVersion)
        val usedOffer = offerWrite.row
        assertEquals(created.offer.offerId, usedOffer.offerId)
        assertEquals(now + 11uL, usedOffer.usedAt)
        assertEquals(2uL, usedOffer.version)
        val pendingWrite = assertIs<RecordWrite.PendingLink>(acc.writes[1])
        assertNull(pendingWrite.expectedVersion)
        val pending = pendingWrite.row
        assertEquals(1uL, pending.version)
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
        // Update the pending link (version 1 -> 2, closed), insert the device.
        assertEquals(2, c.writes.size)
        assertEquals(1uL, assertIs<RecordWrite.PendingLink>(c.writes[0]).expectedVersion)
        assertNull(assertIs<RecordWrite.Device>(c.writes[1]).expectedVersion)
        val closed = assertNotNull(c.writes.pending())
        assertTrue(closed.closed)
        assertEquals(2uL, closed.version)
        val rec = assertNotNull(c.writes.device())
        assertEquals(1uL, rec.version)
        assertEquals(request.deviceId(), rec.deviceId)
        assertEquals(ACCOUNT, rec.account)
        assertEquals(DEVICE_NAME, rec.name)
        assertEquals(now + 20uL, rec.linkedAt)
        assertNull(rec.lastUsedAt)
        assertEquals(DeviceStatus.ACTIVE, rec.status)
        assertTrue(rec.sealed.isNotEmpty())
        assertEquals(listOf(LinkEvent("device_linked", ACCOUNT, rec.deviceId, DEVICE_NAME, now + 20uL)), c.events)

        // Confirming the closed pending link again is refused, and writes nothing.
        val again = portal.confirmLink(closed, fin.checkCode, now + 21uL)
        assertEquals("INVALID_STATE", again.errorCode)
        assertTrue(again.writes.isEmpty())
        // The new device's code is accepted: the device row is written (version 2).
        val t = now + 100uL
        val ok = portal.verifyDeviceTotp(rec, device.totp(fin.state, Unlock.Passcode(PASSCODE), t), t)
        assertTrue(ok.accepted, "refused: ${ok.errorCode}")
        val w = assertIs<RecordWrite.Device>(ok.writes.single())
        assertEquals(1uL, w.expectedVersion)
        assertEquals(2uL, w.row.version)
        assertEquals(t, w.row.lastUsedAt)
    }

    r.test("link: second use of the same QR -> TOKEN_ALREADY_USED at accept and at finish") {
        val portal = newPortal()
        val created = portal.createOffer(ACCOUNT, 300uL, RULES, now)
        val phoneA = newDevice()
        val phoneB = newDevice()
        val a = phoneA.startLink(created.qrText, "Phone A", PASSCODE, false, null, now + 10uL)
        val b = phoneB.startLink(created.qrText, "Phone B", "728194", false, null, now + 10uL)
        val first = portal.openLinkRequest(a.request).accept(portal, created.offer, false, now + 11uL)
        assertTrue(first.accepted)
        val used = assertNotNull(first.writes.offer()) // what the host stored
        val reqB = portal.openLinkRequest(b.request)
        assertEquals(created.offer.offerId, reqB.offerId())
        val second = reqB.accept(portal, used, false, now + 12uL)
        assertFalse(second.accepted)
        assertFalse(second.repeated)
        assertEquals("TOKEN_ALREADY_USED", second.errorCode)
        assertTrue(second.writes.isEmpty())
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
        val acc = portal.openLinkRequest(start.request).accept(portal, created.offer, false, now + 61uL)
        assertFalse(acc.accepted)
        assertEquals("TOKEN_EXPIRED", acc.errorCode)
        assertEquals("TOKEN_EXPIRED", failure { start.pending.finish(acc.answer) }.code)
    }

    r.test("link: unknown offer -> accept(null) and a mismatched offer give TOKEN_UNKNOWN") {
        val portal = newPortal()
        val device = newDevice()
        val created = portal.createOffer(ACCOUNT, 300uL, RULES, now)
        val start = device.startLink(created.qrText, DEVICE_NAME, PASSCODE, false, null, now + 10uL)
        val acc = portal.openLinkRequest(start.request).accept(portal, null, false, now + 11uL)
        assertFalse(acc.accepted)
        assertEquals("TOKEN_UNKNOWN", acc.errorCode)
        assertEquals("TOKEN_UNKNOWN", failure { start.pending.finish(acc.answer) }.code)
        // The host looked up the wrong row: refused the same way.
        val other = portal.createOffer(ACCOUNT, 300uL, RULES, now).offer
        val start2 = device.startLink(created.qrText, DEVICE_NAME, PASSCODE, false, null, now + 10uL)
        assertEquals("TOKEN_UNKNOWN", portal.openLinkRequest(start2.request).accept(portal, other, false, now + 11uL).errorCode)
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
        val acc = portal.openLinkRequest(start.request).accept(portal, created.offer, false, now + 11uL)
        assertEquals("MESSAGE_TAMPERED", failure { start.pending.finish(tamperText(acc.answer)) }.code)
        val fin = device.openPendingLink(saved).finish(acc.answer)
        assertTrue(portal.confirmLink(assertNotNull(acc.writes.pending()), fin.checkCode, now + 20uL).linked)
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
        val acc = portal.openLinkRequest(start.request).accept(portal, created.offer, false, now + 11uL)
        start.pending.finish(acc.answer)
        assertEquals("ALREADY_CONSUMED", failure { start.pending.finish(acc.answer) }.code)
        assertEquals("ALREADY_CONSUMED", failure { start.pending.sealed() }.code)
    }

    r.test("link: accept again after a write conflict -> TOKEN_ALREADY_USED; refuse(code) after accept") {
        val portal = newPortal()
        val store = Store()
        val created = portal.createOffer(ACCOUNT, 300uL, RULES, now)
        assertTrue(store.apply(listOf(RecordWrite.Offer(created.offer, null))))
        val a = newDevice().startLink(created.qrText, "Phone A", PASSCODE, false, null, now + 10uL)
        val b = newDevice().startLink(created.qrText, "Phone B", "728194", false, null, now + 10uL)
        val reqA = portal.openLinkRequest(a.request)
        val reqB = portal.openLinkRequest(b.request)
        // Two servers read the same offer row; B commits first, A's compare-and-set fails.
        val accA = reqA.accept(portal, store.offers[reqA.offerId()], false, now + 11uL)
        val accB = reqB.accept(portal, store.offers[reqB.offerId()], false, now + 11uL)
        assertTrue(accA.accepted && accB.accepted)
        assertTrue(store.apply(accB.writes))
        assertFalse(store.apply(accA.writes))
        assertEquals(2uL, store.offers.getValue(reqA.offerId()).version)
        assertFalse(reqA.deviceId() in store.pending)
        // A reads again and calls the same request object again.
        val retry = reqA.accept(portal, store.offers[reqA.offerId()], store.seen(reqA.deviceId()), now + 12uL)
        assertFalse(retry.accepted)
        assertEquals("TOKEN_ALREADY_USED", retry.errorCode)
        assertTrue(retry.writes.isEmpty())
        assertEquals("TOKEN_ALREADY_USED", failure { a.pending.finish(retry.answer) }.code)
        assertEquals("Phone B", b.pending.finish(accB.answer).account.deviceName)
        // A host that gives up sends an authenticated refusal of its own (the same bytes every time).
        assertEquals(reqA.refuse("TOKEN_ALREADY_USED"), reqA.refuse("TOKEN_ALREADY_USED"))
        assertEquals(created.offer.offerId, reqA.offerId()) // accessors stay readable
    }

    r.test("link: refuse (lost compare-and-set) -> the device gets the typed error") {
        val portal = newPortal()
        val created = portal.createOffer(ACCOUNT, 300uL, RULES, now)
        val start = newDevice().startLink(created.qrText, DEVICE_NAME, PASSCODE, false, null, now + 10uL)
        val request = portal.openLinkRequest(start.request)
        assertEquals("INVALID_INPUT", failure { request.refuse("NOT_A_CODE") }.code)
        val answer = request.refuse("TOKEN_ALREADY_USED")
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
        val acc = portal.openLinkRequest(request).accept(portal, created.offer, false, now + 11uL)
        // After the restart: a new device object with the same key.
        val fin = TesseraDevice(key).use { d -> d.openPendingLink(saved).use { it.finish(acc.answer) } }
        assertEquals(DEVICE_NAME, fin.account.deviceName)
        assertTrue(fin.account.biometrics)
        assertTrue(portal.confirmLink(assertNotNull(acc.writes.pending()), fin.checkCode, now + 20uL).linked)
    }

    r.test("link: wrong check code 5x -> CHECK_CODE_MISMATCH x4, then LOCKED_OUT; attempts and versions counted") {
        val l = linkDevice(newPortal(), newDevice())
        val wrong = otherCode(l.finish.checkCode)
        var p = l.pending
        for (i in 1..4) {
            val c = l.portal.confirmLink(p, wrong, now + 20uL + i.toULong())
            assertFalse(c.linked)
            assertEquals("CHECK_CODE_MISMATCH", c.errorCode)
            assertTrue(c.events.isEmpty())
            val w = assertIs<RecordWrite.PendingLink>(c.writes.single())
            assertEquals(i.toULong(), w.expectedVersion)
            assertEquals(i.toULong() + 1uL, w.row.version)
            assertEquals(i.toUInt(), w.row.attempts)
            assertFalse(w.row.closed)
            p = w.row
        }
        val locked = l.portal.confirmLink(p, wrong, now + 30uL)
        assertFalse(locked.linked)
        assertEquals("LOCKED_OUT", locked.errorCode)
        val lp = assertIs<RecordWrite.PendingLink>(locked.writes.single()).row
        assertEquals(5u, lp.attempts)
        assertEquals(6uL, lp.version)
        assertTrue(lp.closed)
        // Even the right code is refused now, and nothing is written.
        val after = l.portal.confirmLink(lp, l.finish.checkCode, now + 31uL)
        assertFalse(after.linked)
        assertEquals("INVALID_STATE", after.errorCode)
        assertTrue(after.writes.isEmpty())
    }

    r.test("link: wrong check codes racing on two servers: exactly 5 counted (versions 2..6), the rest INVALID_STATE") {
        val l = linkDevice(newPortal(), newDevice())
        val id = l.pending.deviceId
        val store = Store()
        assertTrue(store.apply(listOf(RecordWrite.PendingLink(l.pending, null))))
        val wrong = otherCode(l.finish.checkCode)
        val codes = ArrayList<String?>()
        val versions = ArrayList<ULong>()
        repeat(4) { round ->
            val t = now + 30uL + round.toULong()
            // Both servers read the same row and decide; the first commits, the second conflicts.
            val read = store.pending.getValue(id)
            val first = l.portal.confirmLink(read, wrong, t)
            val second = l.portal.confirmLink(read, wrong, t)
            assertTrue(store.apply(first.writes))
            codes += first.errorCode
            versions += store.pending.getValue(id).version
            if (second.writes.isNotEmpty()) assertFalse(store.apply(second.writes), "a stale write must conflict")
            // The loser reads again and repeats the call.
            val retry = l.portal.confirmLink(store.pending.getValue(id), wrong, t)
            assertTrue(store.apply(retry.writes))
            codes += retry.errorCode
            versions += store.pending.getValue(id).version
        }
        val mismatch = "CHECK_CODE_MISMATCH"
        val invalid = "INVALID_STATE"
        assertEquals(listOf<String?>(mismatch, mismatch, mismatch, mismatch, "LOCKED_OUT", invalid, invalid, invalid), codes)
        assertEquals(listOf(2uL, 3uL, 4uL, 5uL, 6uL, 6uL, 6uL, 6uL), versions)
        val p = store.pending.getValue(id)
        assertEquals(5u, p.attempts)
        assertTrue(p.closed)
        assertEquals("INVALID_STATE", l.portal.confirmLink(p, l.finish.checkCode, now + 40uL).errorCode)
        assertTrue(store.devices.isEmpty())
    }

    r.test("link: the check code must match exactly: \"\", 1 digit, 5-digit prefix, 7 digits -> CHECK_CODE_MISMATCH") {
        val l = linkDevice(newPortal(), newDevice())
        val cc = l.finish.checkCode
        for (typed in listOf("", cc.substring(0, 1), cc.substring(0, 5), cc + "0", cc + cc.last(), " ", "abcdef")) {
            val c = l.portal.confirmLink(l.pending, typed, now + 20uL)
            assertFalse(c.linked, "'$typed'")
            assertEquals("CHECK_CODE_MISMATCH", c.errorCode, "'$typed'")
            assertEquals(1u, assertNotNull(c.writes.pending()).attempts, "'$typed'")
        }
        // White space around the right code is fine.
        assertTrue(l.portal.confirmLink(l.pending, " $cc ", now + 20uL).linked)
    }

    r.test("link: check code after confirm_by -> TOKEN_EXPIRED") {
        val l = linkDevice(newPortal(), newDevice())
        val c = l.portal.confirmLink(l.pending, l.finish.checkCode, l.pending.confirmBy)
        assertFalse(c.linked)
        assertEquals("TOKEN_EXPIRED", c.errorCode)
        assertTrue(assertNotNull(c.writes.pending()).closed)
        // One second earlier it is still accepted.
        assertTrue(l.portal.confirmLink(l.pending, l.finish.checkCode, l.pending.confirmBy - 1uL).linked)
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
        rec = assertNotNull(ok.writes.device())
        assertEquals(t, rec.lastUsedAt)
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
        // Still linked; a status answer writes nothing.
        val check = l.device.statusRequest(l.state, now + 50uL)
        assertEquals(rec.deviceId, l.portal.statusRequestDevice(check.request))
        val ans = l.portal.answerStatus(check.request, rec, l.pending, now + 50uL)
        assertEquals(LinkStatus.ACTIVE, l.device.readStatusAnswer(l.state, check.probe, ans))
        // The time window: 300 s either way, not 301.
        val late = l.portal.answerStatus(check.request, rec, null, now + 350uL)
        assertEquals(LinkStatus.ACTIVE, l.device.readStatusAnswer(l.state, check.probe, late))
        assertEquals("INVALID_TIME", failure { l.portal.answerStatus(check.request, rec, null, now + 351uL) }.code)
        // Rename, then unlink without the device (lost phone).
        val renamed = l.portal.renameDevice(rec, "Lost phone", now + 60uL)
        val rw = assertIs<RecordWrite.Device>(renamed.writes.single())
        assertEquals(1uL, rw.expectedVersion)
        assertEquals("Lost phone", rw.row.name)
        assertEquals(listOf(LinkEvent("device_renamed", ACCOUNT, rec.deviceId, "Lost phone", now + 60uL)), renamed.events)
        assertEquals("INVALID_INPUT", failure { l.portal.renameDevice(rw.row, "Bad\u202Ename", now + 61uL) }.code)
        val unlinked = l.portal.unlinkDevice(rw.row, now + 70uL)
        rec = assertNotNull(unlinked.writes.device())
        assertEquals(DeviceStatus.UNLINKED, rec.status)
        assertEquals(3uL, rec.version)
        assertEquals(listOf(LinkEvent("device_unlinked", ACCOUNT, rec.deviceId, null, now + 70uL)), unlinked.events)
        assertEquals("INVALID_STATE", failure { l.portal.unlinkDevice(rec, now + 71uL) }.code)
        assertEquals("INVALID_STATE", failure { l.portal.renameDevice(rec, "Found phone", now + 72uL) }.code)
        // The device learns it on its next status check.
        l.device.statusRequest(l.state, now + 80uL).use { c ->
            val a = l.portal.answerStatus(c.request, rec, null, now + 80uL)
            assertEquals("DEVICE_REVOKED", failure { l.device.readStatusAnswer(l.state, c.probe, a) }.code)
            assertEquals("MESSAGE_TAMPERED", failure { l.device.readStatusAnswer(l.state, c.probe, tamperText(a)) }.code)
        }
        val t = now + 90uL
        val revoked = l.portal.verifyDeviceTotp(rec, l.device.totp(l.state, Unlock.Passcode(PASSCODE), t), t)
        assertEquals("DEVICE_REVOKED", revoked.errorCode)
        assertTrue(revoked.writes.isEmpty())
    }

    r.test("link: a repeated request (answer lost) gets the very same answer bytes and writes nothing") {
        val portal = newPortal()
        val device = newDevice()
        val store = Store()
        val created = portal.createOffer(ACCOUNT, 300uL, RULES, now)
        assertTrue(store.apply(listOf(RecordWrite.Offer(created.offer, null))))
        /** A host serving one request: read, accept, apply; on a conflict read again and repeat. */
        fun serve(text: String, t: ULong): AcceptResult {
            val req = portal.openLinkRequest(text)
            while (true) {
                val r = req.accept(portal, store.offers[req.offerId()], store.seen(req.deviceId()), t)
                if (store.apply(r.writes)) return r
            }
        }
        val start = device.startLink(created.qrText, DEVICE_NAME, PASSCODE, false, null, now + 10uL)
        val first = serve(start.request, now + 11uL)
        assertTrue(first.accepted)
        assertFalse(first.repeated)
        assertEquals(2, first.writes.size)
        // The answer was lost: the phone sends its request again, byte for byte.
        assertEquals(start.request, start.pending.request())
        val again = serve(start.pending.request(), now + 40uL)
        assertTrue(again.accepted)
        assertTrue(again.repeated)
        assertNull(again.errorCode)
        assertTrue(again.writes.isEmpty())
        assertTrue(again.events.isEmpty())
        assertEquals(first.answer, again.answer)
        val fin = start.pending.finish(again.answer)
        assertEquals("ALREADY_CONSUMED", failure { start.pending.request() }.code)
        val c = portal.confirmLink(store.pending.getValue(fin.account.deviceId), fin.checkCode, now + 50uL)
        assertTrue(c.linked, "refused: ${c.errorCode}")
        assertTrue(store.apply(c.writes))
        // A device id the host already has (a pending link or device, any account) cannot link again.
        val other = portal.createOffer("mallory", 300uL, RULES, now)
        val again2 = device.startLink(other.qrText, DEVICE_NAME, PASSCODE, false, null, now + 60uL).request
        val seen = portal.openLinkRequest(again2).accept(portal, other.offer, true, now + 61uL)
        assertEquals("DEVICE_ALREADY_LINKED", seen.errorCode)
        assertTrue(seen.writes.isEmpty())
    }

    r.test("link: pinned scan (portalKey) refuses a look-alike QR with WRONG_ACCOUNT") {
        val portal = newPortal()
        val device = newDevice()
        val key = portal.publicKey()
        assertEquals(33, key.size)
        val qr = portal.createOffer(ACCOUNT, 300uL, RULES, now).qrText
        assertEquals(portal.fingerprint(), device.scanLinkQr(qr, now, key).portalFingerprint)
        // Same name, another key: unpinned it looks the same; pinned it is refused.
        val lookAlike = TesseraPortal.generate("Example Bank").createOffer(ACCOUNT, 300uL, RULES, now).qrText
        assertEquals("Example Bank", device.scanLinkQr(lookAlike, now).portalName)
        assertEquals("WRONG_ACCOUNT", failure { device.scanLinkQr(lookAlike, now, key) }.code)
        assertEquals("WRONG_ACCOUNT", failure { device.startLink(lookAlike, DEVICE_NAME, PASSCODE, false, null, now, key) }.code)
        assertEquals("WRONG_ACCOUNT", failure { device.scanLinkQr(qr, now, key.copyOf(32)) }.code)
        val start = device.startLink(qr, DEVICE_NAME, PASSCODE, false, null, now, key)
        assertEquals(DEVICE_NAME, portal.openLinkRequest(start.request).deviceName())
    }

    r.test("link: orphaned phone: AWAITING_CONFIRMATION until confirmBy, then LINK_NOT_CONFIRMED (also after a lockout)") {
        val l = linkDevice(newPortal(), newDevice())
        fun ask(device: StoredDevice?, pending: StoredPendingLink?, t: ULong): LinkStatus =
            l.device.statusRequest(l.state, t).use { c ->
                l.device.readStatusAnswer(l.state, c.probe, l.portal.answerStatus(c.request, device, pending, t))
            }
        // Until confirmBy plus the servers' clock skew (300 s) a confirmation may still be committing.
        val by = l.pending.confirmBy
        assertEquals(LinkStatus.AWAITING_CONFIRMATION, ask(null, l.pending, now + 60uL))
        assertEquals(LinkStatus.AWAITING_CONFIRMATION, ask(null, l.pending, by + 299uL))
        assertEquals("LINK_NOT_CONFIRMED", failure { ask(null, l.pending, by + 300uL) }.code)
        // Locked out by wrong codes: the same.
        var p = l.pending
        repeat(5) { p = assertNotNull(l.portal.confirmLink(p, otherCode(l.finish.checkCode), now + 30uL).writes.pending()) }
        assertTrue(p.closed)
        assertEquals("LINK_NOT_CONFIRMED", failure { ask(null, p, now + 60uL) }.code)
        // Neither row: DEVICE_UNKNOWN at the portal.
        assertEquals("DEVICE_UNKNOWN", failure { ask(null, null, now + 60uL) }.code)
        // Confirmed: the device row answers; a confirmed pending link without its device row
        // (reads that were not one snapshot) is DEVICE_UNKNOWN, never a reason to wipe.
        val c = l.portal.confirmLink(l.pending, l.finish.checkCode, now + 20uL)
        assertEquals(LinkStatus.ACTIVE, ask(c.writes.device(), c.writes.pending(), now + 60uL))
        assertEquals("DEVICE_UNKNOWN", failure { ask(null, c.writes.pending(), now + 60uL) }.code)
    }

    r.test("link: a sealed row moved to another account, key or version -> STATE_CORRUPT") {
        val portal = newPortal()
        val l = linkDevice(portal, newDevice())
        val p = l.pending
        for (moved in listOf(p.copy(account = "mallory"), p.copy(version = 2uL), p.copy(deviceId = "0011223344556677"))) {
            assertEquals("STATE_CORRUPT", failure { portal.confirmLink(moved, l.finish.checkCode, now + 20uL) }.code)
            val request = l.device.statusRequest(l.state, now + 20uL).request
            assertEquals("STATE_CORRUPT", failure { portal.answerStatus(request, null, moved, now + 20uL) }.code)
        }
        val rec = l.confirm()
        val rec2 = linkDevice(portal, newDevice(), account = "mallory").confirm()
        val rows = listOf(
            rec.copy(account = "mallory"), rec.copy(version = 2uL), rec.copy(sealed = rec2.sealed), rec2.copy(sealed = rec.sealed),
        )
        for (moved in rows) {
            assertEquals("STATE_CORRUPT", failure { portal.verifyDeviceTotp(moved, "123456", now + 30uL) }.code)
            assertEquals("STATE_CORRUPT", failure { portal.unlinkDevice(moved, now + 30uL) }.code)
            assertEquals("STATE_CORRUPT", failure { portal.renameDevice(moved, "P", now + 30uL) }.code)
        }
        // A flipped bit, another portal's row, another record type in the row.
        val flipped = rec.copy(sealed = flipBit(rec.sealed, rec.sealed.size - 1))
        assertEquals("STATE_CORRUPT", failure { portal.unlinkDevice(flipped, now + 30uL) }.code)
        assertEquals("STATE_CORRUPT", failure { newPortal().unlinkDevice(rec, now + 30uL) }.code)
        assertEquals("STATE_CORRUPT", failure { portal.unlinkDevice(rec.copy(sealed = p.sealed), now + 30uL) }.code)
        // An offer row: moved to another version or account, the accept throws before answering.
        val created = portal.createOffer(ACCOUNT, 300uL, RULES, now)
        val req = portal.openLinkRequest(newDevice().startLink(created.qrText, "P", PASSCODE, false, null, now).request)
        for (moved in listOf(created.offer.copy(version = 2uL), created.offer.copy(account = "mallory"))) {
            assertEquals("STATE_CORRUPT", failure { req.accept(portal, moved, false, now + 1uL) }.code)
        }
        assertTrue(req.accept(portal, created.offer, false, now + 1uL).accepted)
    }

    r.test("link: a time in milliseconds -> INVALID_TIME at every step, and nothing is written") {
        val ms = now * 1000uL
        val portal = newPortal()
        val device = newDevice()
        assertEquals("INVALID_TIME", failure { portal.createOffer(ACCOUNT, 300uL, RULES, ms) }.code)
        val created = portal.createOffer(ACCOUNT, 300uL, RULES, now)
        assertEquals("INVALID_TIME", failure { device.scanLinkQr(created.qrText, ms) }.code)
        assertEquals("INVALID_TIME", failure { device.scanLinkQr(created.qrText, 59uL) }.code)
        assertEquals("INVALID_TIME", failure { device.startLink(created.qrText, DEVICE_NAME, PASSCODE, false, null, ms) }.code)
        val start = device.startLink(created.qrText, DEVICE_NAME, PASSCODE, false, null, now)
        val acc = portal.openLinkRequest(start.request).accept(portal, created.offer, false, ms)
        assertFalse(acc.accepted)
        assertEquals("INVALID_TIME", acc.errorCode)
        assertTrue(acc.writes.isEmpty())
        // The portal's clock is not the phone's fault: the pending link stays, the request can be sent again.
        assertEquals("INVALID_TIME", failure { start.pending.finish(acc.answer) }.code)
        val retry = portal.openLinkRequest(start.pending.request()).accept(portal, created.offer, false, now + 1uL)
        assertEquals(ACCOUNT, start.pending.finish(retry.answer).account.account)

        val l = linkDevice(portal, device)
        val c = portal.confirmLink(l.pending, l.finish.checkCode, ms)
        assertEquals("INVALID_TIME", c.errorCode)
        assertTrue(c.writes.isEmpty(), "a bad clock must not count or cancel")
        assertEquals("INVALID_TIME", failure { device.totp(l.state, Unlock.Passcode(PASSCODE), ms) }.code)
        assertEquals("INVALID_TIME", failure { device.statusRequest(l.state, ms) }.code)
        val rec = l.confirm()
        for (t in listOf(ms, 0uL)) {
            val v = portal.verifyDeviceTotp(rec, "123456", t)
            assertEquals("INVALID_TIME", v.errorCode)
            assertTrue(v.writes.isEmpty())
        }
        assertEquals("INVALID_TIME", failure { portal.renameDevice(rec, "P", ms) }.code)
        assertEquals("INVALID_TIME", failure { portal.unlinkDevice(rec, ms) }.code)
        val req = device.statusRequest(l.state, now + 30uL).request
        assertEquals("INVALID_TIME", failure { portal.answerStatus(req, rec, null, ms) }.code)
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
        val acc = portal.openLinkRequest(start.request).accept(portal, created.offer, false, now + 11uL)
        val saved = start.pending.sealed()
        start.destroy() // LinkStartResult is Disposable: destroys its PendingLink
        assertTrue(start.pending.uniffiIsDestroyed)
        assertFailsWith<IllegalStateException> { start.pending.finish(acc.answer) }
        assertFailsWith<IllegalStateException> { start.pending.sealed() }
        start.pending.close() // no-op
        // The saved copy, reopened by a device that is closed right away, finishes.
        val pending = TesseraDevice(key).use { it.openPendingLink(saved) }
        val fin = pending.use { it.finish(acc.answer) }
        assertTrue(portal.confirmLink(assertNotNull(acc.writes.pending()), fin.checkCode, now + 20uL).linked)
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
