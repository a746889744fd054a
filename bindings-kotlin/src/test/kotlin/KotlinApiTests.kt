// What only the Kotlin surface has: the enum class of error codes, the typed
// exception, java.time.Instant times, Kotlin defaults, toString of secrets,
// object lifetimes. Behaviour is in the scenario files (Scenarios.kt); that
// Java can call the API (no unsigned types) is JavaCaller.java.
package dev.tessera.tests

import dev.tessera.*
import java.time.Instant
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlin.test.fail

/** Runs `body`, which must throw TesseraException.Failure, and returns it. */
fun assertFailure(body: () -> Unit): TesseraException.Failure {
    val e = assertFailsWith<TesseraException> { body() }
    return assertIs<TesseraException.Failure>(e)
}

/**
 * The frozen code string of every code (docs/ERRORS.md). A `when`
 * expression without `else`: the compiler proves it covers every entry, so
 * a code added to the core fails this build until it is handled here.
 */
fun frozenCode(c: ErrorCode): String = when (c) {
    ErrorCode.INVALID_INPUT -> "INVALID_INPUT"
    ErrorCode.INVALID_SECRET -> "INVALID_SECRET"
    ErrorCode.SECRET_TOO_SHORT -> "SECRET_TOO_SHORT"
    ErrorCode.INVALID_DIGITS -> "INVALID_DIGITS"
    ErrorCode.INVALID_ALGORITHM -> "INVALID_ALGORITHM"
    ErrorCode.INVALID_TIME -> "INVALID_TIME"
    ErrorCode.INVALID_URI -> "INVALID_URI"
    ErrorCode.INVALID_OCRA_SUITE -> "INVALID_OCRA_SUITE"
    ErrorCode.INVALID_OCRA_INPUT -> "INVALID_OCRA_INPUT"
    ErrorCode.OTP_MISMATCH -> "OTP_MISMATCH"
    ErrorCode.OTP_REPLAYED -> "OTP_REPLAYED"
    ErrorCode.LOCKED_OUT -> "LOCKED_OUT"
    ErrorCode.MALFORMED_MESSAGE -> "MALFORMED_MESSAGE"
    ErrorCode.WRONG_MESSAGE_KIND -> "WRONG_MESSAGE_KIND"
    ErrorCode.UNSUPPORTED_VERSION -> "UNSUPPORTED_VERSION"
    ErrorCode.MESSAGE_TAMPERED -> "MESSAGE_TAMPERED"
    ErrorCode.STATE_CORRUPT -> "STATE_CORRUPT"
    ErrorCode.TOKEN_EXPIRED -> "TOKEN_EXPIRED"
    ErrorCode.TOKEN_ALREADY_USED -> "TOKEN_ALREADY_USED"
    ErrorCode.TOKEN_UNKNOWN -> "TOKEN_UNKNOWN"
    ErrorCode.PASSCODE_POLICY -> "PASSCODE_POLICY"
    ErrorCode.WEAK_PASSCODE -> "WEAK_PASSCODE"
    ErrorCode.DEVICE_ALREADY_LINKED -> "DEVICE_ALREADY_LINKED"
    ErrorCode.DEVICE_NOT_LINKED -> "DEVICE_NOT_LINKED"
    ErrorCode.DEVICE_REVOKED -> "DEVICE_REVOKED"
    ErrorCode.DEVICE_UNKNOWN -> "DEVICE_UNKNOWN"
    ErrorCode.CHECK_CODE_MISMATCH -> "CHECK_CODE_MISMATCH"
    ErrorCode.WRONG_ACCOUNT -> "WRONG_ACCOUNT"
    ErrorCode.INVALID_STATE -> "INVALID_STATE"
    ErrorCode.ALREADY_CONSUMED -> "ALREADY_CONSUMED"
    ErrorCode.STORAGE -> "STORAGE"
    ErrorCode.INTERNAL -> "INTERNAL"
    ErrorCode.LINK_NOT_CONFIRMED -> "LINK_NOT_CONFIRMED"
    ErrorCode.NOT_FOR_THIS_DEVICE -> "NOT_FOR_THIS_DEVICE"
    ErrorCode.INVALID_ANSWER -> "INVALID_ANSWER"
    ErrorCode.DEVICE_CLONED -> "DEVICE_CLONED"
    ErrorCode.AUTHENTICATOR_NEVER_USED -> "AUTHENTICATOR_NEVER_USED"
    ErrorCode.DEVICE_NOT_YET_USABLE -> "DEVICE_NOT_YET_USABLE"
    ErrorCode.DEVICE_CODE_MISMATCH -> "DEVICE_CODE_MISMATCH"
    ErrorCode.ACTIVATION_CODE_MISMATCH -> "ACTIVATION_CODE_MISMATCH"
    ErrorCode.BINDING_CODE_MISMATCH -> "BINDING_CODE_MISMATCH"
    ErrorCode.SERIAL_MISMATCH -> "SERIAL_MISMATCH"
    ErrorCode.PASSWORD_MISMATCH -> "PASSWORD_MISMATCH"
    ErrorCode.PASSWORD_POLICY -> "PASSWORD_POLICY"
    ErrorCode.RECOVERY_CODE_MISMATCH -> "RECOVERY_CODE_MISMATCH"
    ErrorCode.DUPLICATE_RECORD -> "DUPLICATE_RECORD"
    ErrorCode.USER_UNKNOWN -> "USER_UNKNOWN"
}

/**
 * The key of the row a write stores. Exhaustive over the sealed classes
 * (no `else`), like eventKind in Scenarios.kt: a new row kind fails this
 * build until it is handled.
 */
fun rowKey(w: RecordWrite): String = when (w) {
    is RecordWrite.Offer -> "offer ${w.row.offerId}"
    is RecordWrite.PendingLink -> "pending link ${w.row.deviceId}"
    is RecordWrite.Device -> "device ${w.row.deviceId}"
    is RecordWrite.Challenge -> "challenge ${w.row.challengeId}"
    is RecordWrite.Authenticator -> "authenticator ${w.row.serial}"
    is RecordWrite.Order -> "order ${w.row.userId}"
    is RecordWrite.Activation -> "activation ${w.row.activationId}"
    is RecordWrite.Credentials -> "credentials ${w.row.account}"
}

/** Compare-and-set into a map of rows: `expected` null inserts a new key, else the stored row has that version. */
private fun <R> MutableMap<String, R>.compareAndSet(key: String, row: R, expected: Long?, version: (R) -> Long) {
    assertEquals(expected, this[key]?.let(version), "compare-and-set of row $key")
    this[key] = row
}

/** The rows of flow 3 as a portal's host keeps them; every change applied as compare-and-set writes. */
class ActivationRows {
    val authenticators = HashMap<String, StoredAuthenticator>()
    val orders = HashMap<String, StoredOrder>()
    val activations = HashMap<String, StoredActivation>()
    val credentials = HashMap<String, StoredCredentials>()
    val devices = HashMap<String, StoredDevice>()

    fun store(change: PortalChange) {
        for (w in change.writes) when (w) {
            is RecordWrite.Authenticator -> authenticators.compareAndSet(w.row.serial, w.row, w.expectedVersion) { it.version }
            is RecordWrite.Order -> orders.compareAndSet(w.row.userId, w.row, w.expectedVersion) { it.version }
            is RecordWrite.Activation -> activations.compareAndSet(w.row.activationId, w.row, w.expectedVersion) { it.version }
            is RecordWrite.Credentials -> credentials.compareAndSet(w.row.account, w.row, w.expectedVersion) { it.version }
            is RecordWrite.Device -> devices.compareAndSet(w.row.deviceId, w.row, w.expectedVersion) { it.version }
            is RecordWrite.Offer, is RecordWrite.PendingLink, is RecordWrite.Challenge -> fail("unexpected write: ${rowKey(w)}")
        }
    }
}

/** Links one phone to `account` (offer, startLink, accept, finish, confirm): its state and device row. */
fun linkPhone(portal: Portal, device: Device, account: String, passcode: String, at: Instant): Pair<ByteArray, StoredDevice> {
    val offer = portal.createOffer(account, OfferSettings(), at)
    val offerRow = offer.change.writes.filterIsInstance<RecordWrite.Offer>().single().row
    val pending = device.startLink(offer.qrText, LinkChoices("Anna's Pixel", passcode), null, at, portal.publicKey())
    val answer = portal.openLinkRequest(pending.request()).use { it.accept(LinkLookup(offer = offerRow, deviceKeySeen = false), at) }
    answer.verdict.check()
    val pendingRow = answer.change.writes.filterIsInstance<RecordWrite.PendingLink>().single().row
    val finished = pending.use { it.finish(answer.answer) }
    val confirmed = portal.confirmLink(listOf(pendingRow), finished.checkCode, at.plusSeconds(5))
    confirmed.verdict.check()
    return finished.state to assertNotNull(confirmed.device)
}

const val GOOGLE_EXAMPLE = "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"
val RFC_SECRET = "12345678901234567890".toByteArray()

fun kotlinApiTests(r: Runner) {
    r.test("ErrorCode: an enum class; entry names are the frozen code strings; errorCodes() is the table") {
        assertTrue(ErrorCode::class.java.isEnum)
        for (c in ErrorCode.entries) assertEquals(frozenCode(c), c.name)
        assertEquals(ErrorCode.entries.toList(), errorCodes())
        assertEquals(ErrorCode.CHECK_CODE_MISMATCH, ErrorCode.valueOf("CHECK_CODE_MISMATCH"))
    }

    r.test("ErrorCode.codeString() is the frozen code string; summary() is never empty") {
        for (c in ErrorCode.entries) {
            assertEquals(frozenCode(c), c.codeString())
            assertTrue(c.summary().isNotBlank(), "empty summary for $c")
        }
    }

    r.test("Verdict.check(): nothing unless refused; a refusal throws its code and detail") {
        Verdict.Accepted.check()
        Verdict.Repeated.check()
        for (c in listOf(ErrorCode.CHECK_CODE_MISMATCH, ErrorCode.LOCKED_OUT, ErrorCode.OTP_REPLAYED)) {
            val e = assertFailure { Verdict.Refused(c, "refused for the test").check() }
            assertEquals(c, e.code)
            assertEquals("refused for the test", e.detail)
        }
        val config = OtpVerifierConfig(secret = RFC_SECRET)
        val refused = verifyHotp(config, newVerifierState(), "000000", Instant.ofEpochSecond(1_800_000_000L))
        assertIs<Verdict.Refused>(refused.verdict)
        assertEquals(ErrorCode.OTP_MISMATCH, assertFailure { refused.verdict.check() }.code)
        verifyHotp(config, newVerifierState(), "755224", Instant.ofEpochSecond(1_800_000_000L)).verdict.check()
    }

    r.test("TesseraException.Failure: typed code and detail, caught through the sealed class") {
        val e = assertFailure { hotp(RFC_SECRET, 0L, 3, OtpAlgorithm.SHA1) }
        assertEquals(ErrorCode.INVALID_DIGITS, e.code)
        assertTrue(e.detail.isNotBlank())
        assertIs<Exception>(e)
        assertTrue(e.message!!.contains("INVALID_DIGITS"), "message: ${e.message}")
        try {
            base32Decode("!!")
            fail("!! is not base32")
        } catch (t: TesseraException) {
            // Exhaustive over the sealed class: no else branch.
            val code: ErrorCode = when (t) {
                is TesseraException.Failure -> t.code
            }
            assertEquals(ErrorCode.INVALID_SECRET, code)
        }
    }

    r.test("Verdict: a sealed class; refusals carry an ErrorCode") {
        val config = OtpVerifierConfig(secret = RFC_SECRET)
        val at = Instant.ofEpochSecond(1_700_000_000)
        val c = verifyHotp(config, newVerifierState(), "000000", at)
        val text = when (val v = c.verdict) {
            is Verdict.Accepted -> "accepted"
            is Verdict.Repeated -> "repeated"
            is Verdict.Refused -> v.code.name
        }
        assertEquals("OTP_MISMATCH", text)
        assertEquals(1, c.state.consecutiveFailures)
        assertEquals(Verdict.Accepted, verifyHotp(config, newVerifierState(), "755224", at).verdict)
    }

    r.test("times are java.time.Instant: Instant.now() for createOffer and scanLinkQr; seconds precision") {
        val now = Instant.now()
        Portal.generate("Example Bank").use { p ->
            val o = p.createOffer("anna@example.org", OfferSettings(), now)
            assertEquals(Instant.ofEpochSecond(now.epochSecond + 300), o.expiresAt)
            val row = o.change.writes.filterIsInstance<RecordWrite.Offer>().single()
            assertEquals(o.expiresAt, row.row.expiresAt)
            assertNull(row.expectedVersion)
            assertEquals(1L, row.row.version)
            val info = Device(newStorageKey()).use { it.scanLinkQr(o.qrText, Instant.now(), null) }
            assertEquals(o.expiresAt, info.expiresAt)
            assertEquals("Example Bank", info.portalName)
            // Before 1970 (and before 2000): refused, not wrapped around.
            assertEquals(ErrorCode.INVALID_TIME, assertFailure { p.createOffer("anna", OfferSettings(), Instant.EPOCH.minusSeconds(1)) }.code)
            assertEquals(ErrorCode.INVALID_TIME, assertFailure { p.createOffer("anna", OfferSettings(), Instant.EPOCH) }.code)
        }
    }

    r.test("Kotlin defaults of records and functions") {
        assertEquals(PasscodeRules(6, 6, true, true), PasscodeRules())
        assertEquals(OfferSettings(null, null, null), OfferSettings())
        assertEquals(DeviceCodeRules(null, 6, 30L), DeviceCodeRules())
        assertEquals(ChallengeSettings(null, null), ChallengeSettings())
        assertEquals(OtpVerifierState(null, 0L, 0, false, null), newVerifierState())
        assertEquals(false, LinkChoices(deviceName = "Pixel", passcode = "493817").biometrics)
        val cfg = OtpVerifierConfig(secret = RFC_SECRET)
        assertNull(cfg.algorithm)
        assertNull(cfg.digits)
        // parseOtpauthUri(uri) = parseOtpauthUri(uri, allowShortSecret = false)
        assertEquals(ErrorCode.SECRET_TOO_SHORT, assertFailure { parseOtpauthUri(GOOGLE_EXAMPLE) }.code)
        val u = parseOtpauthUri(GOOGLE_EXAMPLE, allowShortSecret = true)
        assertEquals(OtpKind.Totp(periodSeconds = 30L), u.kind)
        assertEquals(6, u.digits)
        assertEquals(OtpAlgorithm.SHA1, u.algorithm)
        assertEquals("324550", otpauthCode(GOOGLE_EXAMPLE, Instant.ofEpochSecond(1_700_000_000), allowShortSecret = true))
    }

    r.test("every top-level function is callable (otpauth, base32, QR, keys, resync, unlock)") {
        val u = parseOtpauthUri(GOOGLE_EXAMPLE, allowShortSecret = true)
        val back = parseOtpauthUri(formatOtpauthUri(u), allowShortSecret = true)
        assertEquals(u.kind, back.kind)
        assertEquals(u.account, back.account)
        assertContentEquals(u.secret, back.secret)
        assertEquals("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", base32Encode(RFC_SECRET))
        assertContentEquals(RFC_SECRET, base32Decode("gezd gnbv gy3t qojq gezd gnbv gy3t qojq"))
        assertTrue(qrSvg("otpauth://totp/x?secret=AAAA").startsWith("<svg"))
        assertEquals(20, newOtpSecret().size)
        assertEquals(32, newStorageKey().size)
        val at = Instant.ofEpochSecond(1_700_000_000)
        val config = OtpVerifierConfig(secret = RFC_SECRET)
        val res = resyncHotp(config, newVerifierState(), "399871", "520489", 100L, at) // counters 8, 9
        assertEquals(Verdict.Accepted, res.verdict)
        assertEquals(9L, res.matched)
        assertEquals(10L, res.state.nextCounter)
        val locked = OtpVerifierState(nextCounter = 0L, consecutiveFailures = 5, locked = true)
        assertEquals(newVerifierState(), unlockVerifier(locked))
        assertEquals("94287082", totp(RFC_SECRET, Instant.ofEpochSecond(59), 30L, 8, OtpAlgorithm.SHA1))
        assertEquals(ErrorCode.MALFORMED_MESSAGE, assertFailure { signedAnswerChallengeId("not a signed answer") }.code)
    }

    r.test("toString: objects show no key material; records' known limitation is reported") {
        val key = newStorageKey()
        val keyHex = key.joinToString("") { "%02x".format(it) }
        Device(key).use { d ->
            val s = d.toString()
            assertTrue(keyHex !in s && key.contentToString() !in s, s)
        }
        Portal.generate("P").use { p ->
            val secret = p.secret()
            assertTrue(secret.contentToString() !in p.toString() && secret.joinToString("") { "%02x".format(it) } !in p.toString())
        }
        // UniFFI records are Kotlin data classes: their generated toString
        // prints every field (README, "Known limitations"). Report, not fail.
        val passcode = "493817"
        val biometric = ByteArray(32) { (it + 1).toByte() }
        val leaks = listOf(
            "LinkChoices" to LinkChoices("Pixel", passcode, false).toString(),
            "Unlock.Passcode" to Unlock.Passcode(passcode).toString(),
            "Unlock.Biometric" to Unlock.Biometric(biometric).toString(),
            "OtpVerifierConfig" to OtpVerifierConfig(secret = biometric).toString(),
            "OtpAuthUri" to OtpAuthUri(OtpKind.Totp(30L), null, "anna", biometric, OtpAlgorithm.SHA1, 6).toString(),
            "OcraParams" to OcraParams(password = passcode).toString(),
            "DeviceOrder" to DeviceOrder("0123456789", passcode, "TS00012345", Instant.EPOCH, PortalChange(emptyList(), emptyList())).toString(),
            "NewAuthenticator" to NewAuthenticator(biometric, "TS00012345 $passcode").toString(),
            "ActivationUpdate" to ActivationUpdate(Verdict.Accepted, "a", ActivationStep.DONE, null, listOf(passcode), null, null, PortalChange(emptyList(), emptyList())).toString(),
        ).filter { (_, s) -> passcode in s || biometric.contentToString().removeSurrounding("[", "]") in s }
        for ((what, s) in leaks) println("     note: $what.toString() shows its secret: $s")
        // Data-class equality compares ByteArray fields by reference.
        val row = StoredOffer("o", "anna", Instant.EPOCH, null, 1L, byteArrayOf(1, 2))
        if (row != row.copy(sealed = row.sealed.copyOf())) println("     note: records with ByteArray fields compare them by reference (==)")
    }

    r.test("lifetimes: use {} / close(); a closed object throws IllegalStateException; PendingLink outlives its Device") {
        val at = Instant.ofEpochSecond(1_800_000_000)
        val key = newStorageKey()
        val d = Device(key)
        d.use { assertEquals(ErrorCode.MALFORMED_MESSAGE, assertFailure { it.scanLinkQr("hello", at, null) }.code) }
        assertTrue(d.uniffiIsDestroyed)
        assertFailsWith<IllegalStateException> { d.scanLinkQr("hello", at, null) }
        d.close() // a second close is a no-op
        Portal.generate("Example Bank").use { portal ->
            val offer = portal.createOffer("anna", OfferSettings(), at)
            val pending = Device(key).use { it.startLink(offer.qrText, LinkChoices("Pixel", "493817"), null, at, null) }
            val answer = portal.openLinkRequest(pending.request()).use { req ->
                req.accept(LinkLookup(offer = offer.change.writes.filterIsInstance<RecordWrite.Offer>().single().row, deviceKeySeen = false), at)
            }
            assertEquals(Verdict.Accepted, answer.verdict)
            val finished = pending.use { it.finish(answer.answer) }
            assertEquals(6, finished.checkCode.length)
            assertFailsWith<IllegalStateException> { pending.request() }
        }
    }

    r.test("challenge/response: the phone shows a sealed Approval.Transaction and answers with the passcode; the portal verifies it; a wrong passcode is Verdict.Refused(INVALID_ANSWER)") {
        val at = Instant.ofEpochSecond(1_800_000_000)
        Portal.generate("Example Bank").use { portal ->
            Device(newStorageKey()).use { device ->
                val (state, linked) = linkPhone(portal, device, "anna@example.org", "493817", at)
                // Portal: a payment to approve, for the account's device rows.
                val payment = Approval.Transaction(amount = "125.50", currency = "EUR", payee = "ACME Energy Ltd", text = listOf("Invoice 2026-118"))
                val issued = portal.createChallenge(listOf(linked), payment, ChallengeSettings(), at.plusSeconds(60))
                assertEquals(listOf("challenge ${issued.challengeId}"), issued.change.writes.map(::rowKey))
                val insert = issued.change.writes.filterIsInstance<RecordWrite.Challenge>().single()
                assertNull(insert.expectedVersion)
                var challengeRow = insert.row
                var deviceRow = linked
                assertEquals(ChallengeStatus.OPEN, challengeRow.status)
                assertEquals(listOf(linked.deviceId), challengeRow.deviceIds)
                assertEquals(issued.expiresAt, challengeRow.expiresAt)
                fun store(change: PortalChange) {
                    for (w in change.writes) when (w) {
                        is RecordWrite.Challenge -> challengeRow = w.row.also { assertEquals(challengeRow.version, w.expectedVersion) }
                        is RecordWrite.Device -> deviceRow = w.row.also { assertEquals(deviceRow.version, w.expectedVersion) }
                        is RecordWrite.Offer, is RecordWrite.PendingLink, is RecordWrite.Authenticator, is RecordWrite.Order,
                        is RecordWrite.Activation, is RecordWrite.Credentials -> fail("unexpected write: ${rowKey(w)}")
                    }
                }

                // Phone: read the QR code and show exactly what is approved.
                val view = device.readChallenge(state, issued.qrText, at.plusSeconds(61))
                assertEquals("Example Bank", view.portalName)
                assertEquals("anna@example.org", view.account)
                assertEquals(issued.challengeId, view.challengeId)
                assertEquals(issued.expiresAt, view.expiresAt)
                assertEquals(8, view.digits)
                val shown = when (val a = view.approval) {
                    is Approval.Transaction -> "Pay ${a.amount} ${a.currency} to ${a.payee}" + a.text.joinToString("") { "\n$it" }
                    is Approval.Login -> fail("a payment was shown as a login")
                    is Approval.LinkDevice -> fail("a payment was shown as a new device")
                }
                assertEquals("Pay 125.50 EUR to ACME Energy Ltd\nInvoice 2026-118", shown)
                assertEquals(payment, view.approval)

                // A wrong passcode gives a code of the same shape that only the portal refuses.
                val wrong = device.answerChallenge(state, issued.qrText, Unlock.Passcode("000111"), at.plusSeconds(62))
                assertEquals(view.digits, wrong.length)
                assertTrue(wrong.all(Char::isDigit), wrong)
                val refused = portal.verifyAnswer(challengeRow, listOf(deviceRow), wrong, at.plusSeconds(63))
                store(refused.change) // in every case: the failure is counted on the device
                val v = assertIs<Verdict.Refused>(refused.verdict)
                assertEquals(ErrorCode.INVALID_ANSWER, v.code)
                assertEquals(Verdict.Refused(ErrorCode.INVALID_ANSWER, v.detail), refused.verdict)
                assertNull(refused.deviceId)
                assertEquals(ErrorCode.INVALID_ANSWER, assertFailure { refused.verdict.check() }.code)
                assertEquals(ChallengeStatus.OPEN, challengeRow.status)

                // The right passcode: accepted, once.
                val code = device.answerChallenge(state, issued.qrText, Unlock.Passcode("493817"), at.plusSeconds(64))
                val accepted = portal.verifyAnswer(challengeRow, listOf(deviceRow), code, at.plusSeconds(65))
                store(accepted.change)
                assertEquals(Verdict.Accepted, accepted.verdict)
                accepted.verdict.check()
                assertEquals(linked.deviceId, accepted.deviceId)
                assertEquals(ChallengeStatus.ANSWERED, challengeRow.status)
                val event = assertIs<PortalEvent.ChallengeAnswered>(accepted.change.events.single())
                assertEquals(issued.challengeId, event.challengeId)
                assertEquals(at.plusSeconds(65), event.at)
                val again = portal.verifyAnswer(challengeRow, listOf(deviceRow), code, at.plusSeconds(66))
                assertEquals(ErrorCode.TOKEN_ALREADY_USED, assertIs<Verdict.Refused>(again.verdict).code)
            }
        }
    }
    r.test("offline authenticator (flow 3): an app is the device; import, order, then one activationNext per step through done; a wrong entry is Verdict.Refused with the step's ErrorCode; a foreign QR code is NOT_FOR_THIS_DEVICE") {
        val at = Instant.ofEpochSecond(1_800_000_000)
        val account = "anna@example.org"
        // Fewer PBKDF2 iterations than the default 600 000: a quick test.
        val settings = ActivationSettings(hashIterations = 10_000L)
        val rows = ActivationRows()
        Portal.generate("Example Bank").use { portal ->
            OfflineAuthenticator(newStorageKey()).use { app ->
                OfflineAuthenticator(newStorageKey()).use { otherApp ->
                    // The app makes its authenticator; the factory record line goes into the maker's file.
                    val made = app.create("TS00012345")
                    var state = made.state
                    assertEquals(AuthenticatorInfo(serial = "TS00012345", userId = null, portalName = null, deviceId = null), app.info(state))
                    val otherState = otherApp.create("TS00099999").state

                    // Portal: import the file (whole or not at all), then an order: the letter and the device.
                    val file = "tessera-factory-records v1\n${made.factoryRecord}\n"
                    val serials = factoryFileSerials(file)
                    assertEquals(listOf("TS00012345"), serials)
                    val imported = portal.importDevices(file, serials.filter { it in rows.authenticators }, at)
                    rows.store(imported.change)
                    assertEquals(serials, imported.serials)
                    assertEquals(AuthenticatorStatus.IN_STOCK, rows.authenticators.getValue("TS00012345").status)
                    assertEquals(ErrorCode.DUPLICATE_RECORD, assertFailure { portal.importDevices(file, serials, at) }.code)

                    val order = portal.orderDevice(account, "271828", rows.authenticators.getValue("TS00012345"), settings, at.plusSeconds(10))
                    rows.store(order.change)
                    assertTrue(order.userId.length == 10 && order.userId.all(Char::isDigit), order.userId)
                    assertTrue(Regex("[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}").matches(order.initialPassword), order.initialPassword)
                    assertEquals("TS00012345", order.serial)
                    assertEquals(OrderStatus.ORDERED, rows.orders.getValue(order.userId).status)
                    assertEquals(AuthenticatorStatus.ASSIGNED, rows.authenticators.getValue("TS00012345").status)

                    // The user starts the activation; each entry is one activationNext with the rows it reads.
                    var u = portal.startActivation(rows.orders.getValue(order.userId), rows.authenticators.getValue("TS00012345"), settings, at.plusSeconds(60))
                    rows.store(u.change)
                    assertEquals(Verdict.Accepted, u.verdict)
                    var clock = at.plusSeconds(60)
                    fun next(input: String): ActivationUpdate {
                        clock = clock.plusSeconds(5)
                        val a = rows.activations.getValue(u.activationId)
                        val update = portal.activationNext(a, rows.orders.getValue(a.userId), rows.authenticators.getValue(a.serial), rows.credentials[a.account], input, settings, clock)
                        rows.store(update.change) // whatever the verdict: wrong entries are counted
                        return update.also { u = it }
                    }
                    /** The app scans the step's QR code, keeps the new state and shows the screen. */
                    fun scan(): AuthenticatorScreen = app.scan(state, assertNotNull(u.qrText, "step ${u.step} has a QR code")).also { state = it.state }

                    // 1. The first QR code: 10 digits. Another device cannot read it.
                    assertEquals(ActivationStep.DEVICE_CODE, u.step)
                    val foreign = assertFailure { otherApp.scan(otherState, u.qrText!!) }
                    assertEquals(ErrorCode.NOT_FOR_THIS_DEVICE, foreign.code)
                    val first = scan()
                    assertEquals(ScreenKind.DEVICE_CODE, first.kind)
                    assertEquals("Example Bank", first.portalName)
                    assertEquals(10, first.code.length)
                    assertNull(first.userId)

                    // A wrong entry: refused with the step's code, the step stays, the failure is counted.
                    val refused = next(wrongCode(first.code))
                    assertEquals(ErrorCode.DEVICE_CODE_MISMATCH, assertIs<Verdict.Refused>(refused.verdict).code)
                    assertEquals(ActivationStep.DEVICE_CODE, refused.step)
                    assertEquals(1, rows.activations.getValue(refused.activationId).failures)
                    assertEquals(ErrorCode.DEVICE_CODE_MISMATCH, assertFailure { refused.verdict.check() }.code)

                    assertEquals(Verdict.Accepted, next(first.code).verdict)
                    // 2. The activation code chosen when ordering (no QR code).
                    assertEquals(ActivationStep.ACTIVATION_CODE, u.step)
                    assertNull(u.qrText)
                    assertEquals(ErrorCode.ACTIVATION_CODE_MISMATCH, assertIs<Verdict.Refused>(next("314159").verdict).code)
                    next("271828").verdict.check()
                    // 3. The second QR code binds the device to the user: 8 digits.
                    assertEquals(ActivationStep.BINDING_CODE, u.step)
                    val binding = scan()
                    assertEquals(ScreenKind.BINDING_CODE, binding.kind)
                    assertEquals(order.userId, binding.userId)
                    assertEquals(8, binding.code.length)
                    assertEquals(false, binding.replaced)
                    next(binding.code).verdict.check()
                    // 4. The serial number from the back of the device.
                    assertEquals(ActivationStep.SERIAL, u.step)
                    assertEquals(ErrorCode.SERIAL_MISMATCH, assertIs<Verdict.Refused>(next("TS00099999").verdict).code)
                    next(app.info(state).serial).verdict.check()
                    // 5. A test challenge, answered like a login.
                    assertEquals(ActivationStep.TEST_OTP, u.step)
                    val test = scan()
                    assertEquals(ScreenKind.CHALLENGE, test.kind)
                    assertEquals(Approval.Login, test.approval)
                    next(test.code).verdict.check()
                    // 6. The initial password from the letter, 7. a new password.
                    assertEquals(ActivationStep.INITIAL_PASSWORD, u.step)
                    next(order.initialPassword).verdict.check()
                    assertEquals(ActivationStep.NEW_PASSWORD, u.step)
                    assertEquals(ErrorCode.PASSWORD_POLICY, assertIs<Verdict.Refused>(next("short pass").verdict).code)
                    val done = next("correct horse battery staple")
                    assertEquals(Verdict.Accepted, done.verdict)
                    assertEquals(ActivationStep.DONE, done.step)
                    assertNull(done.qrText)
                    assertEquals(10, done.recoveryCodes.size)

                    // Registered: the device row, the event, the rows' statuses and the device's own binding.
                    val deviceId = assertNotNull(done.deviceId)
                    val usableFrom = assertNotNull(done.usableFrom)
                    assertEquals(clock.plusSeconds(4 * 3600), usableFrom) // the default delay before first use
                    val device = rows.devices.getValue(deviceId)
                    assertEquals("TS00012345", device.serial)
                    assertEquals(usableFrom, device.usableFrom)
                    assertEquals(account, device.account)
                    val event = assertIs<PortalEvent.DeviceActivated>(done.change.events.single())
                    assertEquals(PortalEvent.DeviceActivated(account, deviceId, "TS00012345", usableFrom, clock), event)
                    assertEquals(ActivationStatus.DONE, rows.activations.getValue(done.activationId).status)
                    assertEquals(OrderStatus.ACTIVATED, rows.orders.getValue(order.userId).status)
                    assertEquals(AuthenticatorStatus.ACTIVE, rows.authenticators.getValue("TS00012345").status)
                    assertEquals(AuthenticatorInfo("TS00012345", order.userId, "Example Bank", deviceId), app.info(state))

                    // The password and a recovery code work (single use).
                    val creds = rows.credentials.getValue(account)
                    val password = portal.verifyPassword(creds, "correct horse battery staple", clock.plusSeconds(1))
                    rows.store(password.change)
                    assertEquals(Verdict.Accepted, password.verdict)
                    val redeemed = portal.redeemRecoveryCode(rows.credentials.getValue(account), done.recoveryCodes.first(), clock.plusSeconds(2))
                    rows.store(redeemed.change)
                    assertEquals(Verdict.Accepted, redeemed.verdict)
                    assertEquals(9, redeemed.recoveryCodesLeft)
                    val again = portal.redeemRecoveryCode(rows.credentials.getValue(account), done.recoveryCodes.first(), clock.plusSeconds(3))
                    assertEquals(ErrorCode.RECOVERY_CODE_MISMATCH, assertIs<Verdict.Refused>(again.verdict).code)
                }
            }
        }
    }
}
