// The scenario runner of the Kotlin binding: every vectors/scenarios/*.json
// (format: vectors/scenarios/README.md) played through the generated
// `dev.tessera` API, with an in-memory store that applies each change as
// compare-and-set writes, phones, offline authenticators (tokens), vars and
// OTP verifiers. Mirrors the Rust runner (host/tests/scenarios.rs): an
// unknown op, key or expectation fails the file, and a failure names the
// file and the step.
package dev.tessera.tests

import dev.tessera.*
import java.io.File
import java.time.Instant

/** A scenario file is wrong, or a step did not do what it expected. */
class ScenarioError(message: String) : Exception(message)

private fun bad(message: String): Nothing = throw ScenarioError(message)

/** A phone: its own storage key and what the app keeps between steps. */
class Phone(val name: String) {
    /** The storage key (op `clone` gives a phone another phone's key). */
    var key: ByteArray = newStorageKey()
        private set
    var device = Device(key)
        private set
    var pending: PendingLink? = null
    var request: String? = null
    var answer: String? = null
    var ifNotStored: String? = null
    var checkCode: String? = null
    var state: ByteArray? = null
    var biometricSecret: ByteArray? = null
    var lastCode: String? = null
    var deviceId: String? = null
    /** The last status probe and the portal's genuine answer to it. */
    var lastStatus: Pair<StatusProbe, String>? = null
    /** The last challenge answer (typed code or signed answer text). */
    var lastAnswer: String? = null

    /** Op `clone`: this phone becomes a copy of `from`'s storage (key, state, device id, biometric secret). */
    fun copyStorageOf(from: Phone) {
        device.close()
        key = from.key.copyOf()
        device = Device(key)
        state = from.state?.copyOf()
        deviceId = from.deviceId
        biometricSecret = from.biometricSecret?.copyOf()
    }
}

/**
 * An offline authenticator (flow 3) by name: an app acting as one, with its
 * own storage key, its sealed state, serial number and factory record line,
 * the last code it showed and, once bound, its device id (from `info`).
 */
class Token(val name: String, val app: OfflineAuthenticator, var state: ByteArray, val serial: String, val factoryRecord: String) {
    var lastCode: String? = null
    var deviceId: String? = null
}

/** An order (op `order`, by its var): what the letter says. */
class OrderVar(val userId: String, val initialPassword: String)

/** What one step produced: a thrown Tessera error, or a verdict/change/facts. */
class Outcome(
    val error: TesseraException.Failure? = null,
    val verdict: Verdict? = null,
    val change: PortalChange? = null,
    val facts: Map<String, Any?> = emptyMap(),
)

/** One step's JSON object, read with type checks. */
class Step(val m: Map<String, Any?>) {
    fun has(k: String) = m.containsKey(k)
    fun str(k: String): String = m[k] as? String ?: bad("'$k' must be a string")
    fun strOrNull(k: String): String? = if (has(k)) str(k) else null
    fun long(k: String): Long = m[k] as? Long ?: bad("'$k' must be an integer")
    fun longOrNull(k: String): Long? = if (has(k)) long(k) else null
    fun bool(k: String): Boolean = if (has(k)) (m[k] as? Boolean ?: bad("'$k' must be true or false")) else false

    /** The step's clock, Unix seconds. */
    fun at(): Instant {
        val at = m["at"] ?: bad("missing 'at'")
        return Instant.ofEpochSecond((at as? Long)?.takeIf { it >= 0 } ?: bad("'at' must be Unix seconds, not $at"))
    }

    @Suppress("UNCHECKED_CAST")
    fun obj(k: String): Map<String, Any?> = m[k] as? Map<String, Any?> ?: bad("'$k' must be an object")
}

/** Keys every step may have, then the inputs of each op (README "Ops"). */
private val COMMON_KEYS = setOf("do", "at", "expect", "events", "skip")
private val OP_KEYS: Map<String, Set<String>> = mapOf(
    "portal" to setOf("name"),
    "offer" to setOf("account", "ttl", "rules", "deviceCodes", "save"),
    "offerNewDevice" to setOf("account", "save"),
    "challenge" to setOf("account", "phone", "approval", "digits", "ttl", "save"),
    "linkChallenge" to setOf("phone", "digits", "ttl", "save"),
    "readChallenge" to setOf("phone", "qr", "edit"),
    "answer" to setOf("phone", "qr", "passcode", "biometric", "signed", "edit"),
    "verify" to setOf("challenge", "answer", "edit"),
    "vouch" to setOf("phone", "challenge", "answer", "edit"),
    "unlockDevice" to setOf("phone"),
    "clone" to setOf("phone", "from"),
    "scan" to setOf("phone", "qr", "pinned", "edit"),
    "startLink" to setOf("phone", "qr", "name", "passcode", "biometrics", "pinned", "edit"),
    "accept" to setOf("phone", "edit", "offer", "deviceKeySeen"),
    "finish" to setOf("phone", "edit", "answer"),
    "confirm" to setOf("account", "code"),
    "devices" to setOf("account"),
    "rename" to setOf("phone", "name"),
    "unlink" to setOf("phone", "token"),
    "status" to setOf("phone", "edit", "again"),
    "deviceCode" to setOf("phone", "passcode", "biometric", "replay"),
    "wipe" to setOf("phone"),
    "activationSettings" to setOf("settings"),
    "token" to setOf("token", "serial"),
    "importDevices" to setOf("tokens", "lines", "header"),
    "order" to setOf("account", "activationCode", "token", "save"),
    "activationStart" to setOf("order", "save"),
    "activationNext" to setOf("activation", "input"),
    "tokenScan" to setOf("token", "qr", "edit"),
    "verifyPassword" to setOf("account", "password"),
    "redeemRecoveryCode" to setOf("account", "code"),
    "hotp" to setOf("secret", "counter", "digits", "algorithm"),
    "totp" to setOf("secret", "period", "digits", "algorithm"),
    "verifyHotp" to setOf("verifier", "config", "state", "code"),
    "verifyTotp" to setOf("verifier", "config", "state", "code"),
    "resyncHotp" to setOf("verifier", "config", "state", "code1", "code2", "window"),
    "unlock" to setOf("verifier"),
)

/** The op-specific keys an `expect` object may hold (compared with the step's facts). */
private val EXPECT_KEYS: Map<String, Set<String>> = mapOf(
    "scan" to setOf("portalName", "expiresAt"),
    "readChallenge" to setOf("portalName", "account", "approval", "digits"),
    "verify" to setOf("device"),
    "devices" to setOf("devices"),
    "status" to setOf("status"),
    "importDevices" to setOf("serials"),
    "activationStart" to setOf("step", "qr"),
    "activationNext" to setOf("step", "qr", "recoveryCodes"),
    "tokenScan" to setOf("kind", "digits", "portalName", "userId", "approval", "replaced"),
    "redeemRecoveryCode" to setOf("left"),
    "hotp" to setOf("code"),
    "totp" to setOf("code"),
    "verifyHotp" to setOf("matched", "drift"),
    "verifyTotp" to setOf("matched", "drift"),
    "resyncHotp" to setOf("matched", "drift"),
)

/** Ops whose call returns a verdict (`"ok"` then means accepted). */
private val VERDICT_OPS = setOf(
    "accept", "confirm", "deviceCode", "verify", "vouch", "verifyHotp", "verifyTotp", "resyncHotp",
    "activationStart", "activationNext", "verifyPassword", "redeemRecoveryCode",
)

fun eventKind(e: PortalEvent): String = when (e) {
    is PortalEvent.LinkRequested -> "linkRequested"
    is PortalEvent.DeviceLinked -> "deviceLinked"
    is PortalEvent.DeviceRenamed -> "deviceRenamed"
    is PortalEvent.DeviceUnlinked -> "deviceUnlinked"
    is PortalEvent.ChallengeAnswered -> "challengeAnswered"
    is PortalEvent.DeviceLocked -> "deviceLocked"
    is PortalEvent.DeviceCloneSuspected -> "deviceCloneSuspected"
    is PortalEvent.DeviceActivated -> "deviceActivated"
    is PortalEvent.OrderLocked -> "orderLocked"
    is PortalEvent.CredentialsLocked -> "credentialsLocked"
}

/** An activation step as the API's JSON names it. */
fun stepName(s: ActivationStep): String = when (s) {
    ActivationStep.DEVICE_CODE -> "deviceCode"
    ActivationStep.ACTIVATION_CODE -> "activationCode"
    ActivationStep.BINDING_CODE -> "bindingCode"
    ActivationStep.SERIAL -> "serial"
    ActivationStep.TEST_OTP -> "testOtp"
    ActivationStep.INITIAL_PASSWORD -> "initialPassword"
    ActivationStep.NEW_PASSWORD -> "newPassword"
    ActivationStep.DONE -> "done"
}

/** What an offline authenticator scanned, as the API's JSON names it. */
fun screenKindName(k: ScreenKind): String = when (k) {
    ScreenKind.DEVICE_CODE -> "deviceCode"
    ScreenKind.BINDING_CODE -> "bindingCode"
    ScreenKind.CHALLENGE -> "challenge"
}

fun verdictText(v: Verdict?): String = when (v) {
    null -> "no verdict"
    is Verdict.Accepted -> "accepted"
    is Verdict.Repeated -> "repeated"
    is Verdict.Refused -> "refused ${v.code} (${v.detail})"
}

fun errorCode(name: String): ErrorCode =
    ErrorCode.entries.firstOrNull { it.name == name } ?: bad("unknown error code '$name'")

fun otpAlgorithm(name: String): OtpAlgorithm = when (name) {
    "sha1" -> OtpAlgorithm.SHA1
    "sha256" -> OtpAlgorithm.SHA256
    "sha512" -> OtpAlgorithm.SHA512
    else -> bad("unknown algorithm '$name'")
}

/** README "Edits": tamper the middle character, or truncate the last 10. */
fun editText(text: String, edit: String?): String = when (edit) {
    null -> text
    "tamper" -> {
        val i = text.length / 2
        text.substring(0, i) + (if (text[i] == 'A') 'B' else 'A') + text.substring(i + 1)
    }
    "truncate" -> text.dropLast(10)
    else -> bad("unknown edit '$edit'")
}

/** A check code with every digit +1 mod 10. */
fun wrongCode(code: String): String = code.map { if (it.isDigit()) '0' + (it - '0' + 1) % 10 else it }.joinToString("")

/** The world of one scenario file. */
class World {
    var portal: Portal? = null
    private var otherPortalKey: ByteArray? = null
    val offers = HashMap<String, StoredOffer>()
    val pendings = HashMap<String, StoredPendingLink>()
    val devices = HashMap<String, StoredDevice>()
    val challenges = HashMap<String, StoredChallenge>()
    /** Challenge ids by the var their QR text was saved under. */
    val challengeIds = HashMap<String, String>()
    val events = ArrayList<PortalEvent>()
    val phones = LinkedHashMap<String, Phone>()
    val vars = HashMap<String, String>()
    val verifiers = HashMap<String, OtpVerifierState>()

    // Flow 3 (README "Activation of offline authenticators").
    val tokens = LinkedHashMap<String, Token>()
    val ordersByVar = LinkedHashMap<String, OrderVar>()
    /** The settings of every later order, activationStart and activationNext (API defaults until `activationSettings`). */
    var activationSettings = ActivationSettings()
    val authenticators = HashMap<String, StoredAuthenticator>()
    val orders = HashMap<String, StoredOrder>()
    val activations = HashMap<String, StoredActivation>()
    val credentials = HashMap<String, StoredCredentials>()
    /** Activation ids by var (the var itself holds the QR text of the current step). */
    val activationIds = HashMap<String, String>()
    /** The recovery codes shown by the activation saved under a var. */
    val recoveryCodes = HashMap<String, List<String>>()

    fun portal(): Portal = portal ?: bad("no portal: a 'portal' step comes first")
    fun phone(s: Step): Phone = s.str("phone").let { name -> phones.getOrPut(name) { Phone(name) } }

    /** `pinned`: absent/false: none; true: the portal's key; "other": another portal's key. */
    fun pinned(s: Step): ByteArray? = when (val v = s.m["pinned"]) {
        null, false -> null
        true -> portal().publicKey()
        "other" -> otherPortalKey ?: Portal.generate("Other Portal").use { it.publicKey() }.also { otherPortalKey = it }
        else -> bad("'pinned' must be true, false or \"other\", not $v")
    }

    /**
     * Applies a change as the host contract says: every write a
     * compare-and-set (insert when `expectedVersion` is null), all checked
     * before any is applied; a conflict fails the scenario.
     */
    fun store(change: PortalChange) {
        for (w in change.writes) {
            val (what, key, stored) = when (w) {
                is RecordWrite.Offer -> Triple("offer", w.row.offerId, offers[w.row.offerId]?.version)
                is RecordWrite.PendingLink -> Triple("pending link", w.row.deviceId, pendings[w.row.deviceId]?.version)
                is RecordWrite.Device -> Triple("device", w.row.deviceId, devices[w.row.deviceId]?.version)
                is RecordWrite.Challenge -> Triple("challenge", w.row.challengeId, challenges[w.row.challengeId]?.version)
                is RecordWrite.Authenticator -> Triple("authenticator", w.row.serial, authenticators[w.row.serial]?.version)
                is RecordWrite.Order -> Triple("order", w.row.userId, orders[w.row.userId]?.version)
                is RecordWrite.Activation -> Triple("activation", w.row.activationId, activations[w.row.activationId]?.version)
                is RecordWrite.Credentials -> Triple("credentials", w.row.account, credentials[w.row.account]?.version)
            }
            val expected = when (w) {
                is RecordWrite.Offer -> w.expectedVersion
                is RecordWrite.PendingLink -> w.expectedVersion
                is RecordWrite.Device -> w.expectedVersion
                is RecordWrite.Challenge -> w.expectedVersion
                is RecordWrite.Authenticator -> w.expectedVersion
                is RecordWrite.Order -> w.expectedVersion
                is RecordWrite.Activation -> w.expectedVersion
                is RecordWrite.Credentials -> w.expectedVersion
            }
            when {
                stored == expected -> {}
                expected == null -> bad("insert of an existing $what row $key")
                stored == null -> bad("update of a missing $what row $key (expected version $expected)")
                else -> bad("$what row $key has version $stored, the write expected $expected")
            }
        }
        for (w in change.writes) when (w) {
            is RecordWrite.Offer -> offers[w.row.offerId] = w.row
            is RecordWrite.PendingLink -> pendings[w.row.deviceId] = w.row
            is RecordWrite.Device -> devices[w.row.deviceId] = w.row
            is RecordWrite.Challenge -> challenges[w.row.challengeId] = w.row
            is RecordWrite.Authenticator -> authenticators[w.row.serial] = w.row
            is RecordWrite.Order -> orders[w.row.userId] = w.row
            is RecordWrite.Activation -> activations[w.row.activationId] = w.row
            is RecordWrite.Credentials -> credentials[w.row.account] = w.row
        }
        events.addAll(change.events)
    }

    fun deviceRow(p: Phone): StoredDevice {
        val id = p.deviceId ?: bad("phone ${p.name} was never linked")
        return devices[id] ?: bad("no device row for phone ${p.name}")
    }

    fun stateOf(p: Phone): ByteArray = p.state ?: bad("phone ${p.name} holds no state")

    /** The phone's pending-link row (by its device id). */
    fun pendingRow(p: Phone): StoredPendingLink =
        p.deviceId?.let { pendings[it] } ?: bad("phone ${p.name} has no pending link row")

    /** The account's device rows, ordered by device id. */
    fun accountDevices(account: String): List<StoredDevice> =
        devices.values.filter { it.account == account }.sortedBy { it.deviceId }

    /** The phone with this device id, if any. */
    fun phoneWithDevice(id: String): Phone? = phones.values.firstOrNull { it.deviceId == id }

    /** The phone or else the token with this device id: its name. */
    fun deviceOwner(id: String): String? = phoneWithDevice(id)?.name ?: tokens.values.firstOrNull { it.deviceId == id }?.name

    /** The last challenge answer of the phone named `name`, or else the last code token `name` showed. */
    fun lastAnswerOf(name: String): String {
        val phone = phones[name]
        return (if (phone != null) phone.lastAnswer else tokens[name]?.lastCode) ?: bad("phone or token $name has no answer")
    }

    fun token(name: String): Token = tokens[name] ?: bad("no token $name")
    fun token(s: Step): Token = token(s.str("token"))
    fun orderVar(name: String): OrderVar = ordersByVar[name] ?: bad("no order '$name'")

    /** Stores an activation update; the var `v` names the activation and holds the QR text of its step. */
    fun activationUpdate(v: String, u: ActivationUpdate): Outcome {
        store(u.change)
        activationIds[v] = u.activationId
        u.qrText?.let { vars[v] = it }
        if (u.recoveryCodes.isNotEmpty()) recoveryCodes[v] = u.recoveryCodes
        return Outcome(
            verdict = u.verdict,
            change = u.change,
            facts = mapOf("step" to stepName(u.step), "qr" to (u.qrText != null), "recoveryCodes" to u.recoveryCodes.size.toLong()),
        )
    }

    fun qr(s: Step): String = editText(vars[s.str("qr")] ?: bad("no var '${s.str("qr")}'"), s.strOrNull("edit"))

}

private fun rules(m: Map<String, Any?>): PasscodeRules {
    for (k in m.keys) if (k !in setOf("minLen", "maxLen", "digitsOnly", "biometricsAllowed")) bad("unknown key 'rules.$k'")
    val d = PasscodeRules()
    val r = Step(m)
    return PasscodeRules(
        minLen = r.longOrNull("minLen")?.toInt() ?: d.minLen,
        maxLen = r.longOrNull("maxLen")?.toInt() ?: d.maxLen,
        digitsOnly = if (r.has("digitsOnly")) r.bool("digitsOnly") else d.digitsOnly,
        biometricsAllowed = if (r.has("biometricsAllowed")) r.bool("biometricsAllowed") else d.biometricsAllowed,
    )
}

private fun verifierConfig(m: Map<String, Any?>): OtpVerifierConfig {
    val known = setOf("secret", "algorithm", "digits", "periodSeconds", "window", "maxFailures", "lockSeconds")
    for (k in m.keys) if (k !in known) bad("unknown key 'config.$k'")
    val c = Step(m)
    return OtpVerifierConfig(
        secret = hex(c.str("secret")),
        algorithm = c.strOrNull("algorithm")?.let(::otpAlgorithm),
        digits = c.longOrNull("digits")?.toInt(),
        periodSeconds = c.longOrNull("periodSeconds"),
        window = c.longOrNull("window"),
        maxFailures = c.longOrNull("maxFailures")?.toInt(),
        lockSeconds = c.longOrNull("lockSeconds"),
    )
}

/** A verifier state in the API's shape (times, like every time in a scenario, in Unix seconds). */
private fun verifierState(m: Map<String, Any?>): OtpVerifierState {
    val known = setOf("lastAccepted", "nextCounter", "consecutiveFailures", "locked", "lockedUntil")
    for (k in m.keys) if (k !in known) bad("unknown key 'state.$k'")
    val s = Step(m)
    return OtpVerifierState(
        lastAccepted = s.longOrNull("lastAccepted"),
        nextCounter = s.longOrNull("nextCounter") ?: 0L,
        consecutiveFailures = s.longOrNull("consecutiveFailures")?.toInt() ?: 0,
        locked = s.bool("locked"),
        lockedUntil = s.longOrNull("lockedUntil")?.let(Instant::ofEpochSecond),
    )
}

/** `deviceCodes` of an offer: the API's DeviceCodeRules (`algorithm`, `digits`, `periodSeconds`), unknown keys refused. */
private fun deviceCodeRules(m: Map<String, Any?>): DeviceCodeRules {
    for (k in m.keys) if (k !in setOf("algorithm", "digits", "periodSeconds")) bad("unknown key 'deviceCodes.$k'")
    val r = Step(m)
    val d = DeviceCodeRules()
    return DeviceCodeRules(
        algorithm = r.strOrNull("algorithm")?.let(::otpAlgorithm) ?: d.algorithm,
        digits = r.longOrNull("digits")?.toInt() ?: d.digits,
        periodSeconds = r.longOrNull("periodSeconds") ?: d.periodSeconds,
    )
}

/** `approval` of a challenge: the API's JSON (`kind` and that kind's fields), unknown keys refused. */
private fun approval(m: Map<String, Any?>): Approval {
    val a = Step(m)
    val (approval, keys) = when (val kind = a.str("kind")) {
        "login" -> Approval.Login to emptySet<String>()
        "transaction" -> {
            val text = if (a.has("text")) {
                (m["text"] as? List<*> ?: bad("'approval.text' must be a list of strings")).map { it as? String ?: bad("'approval.text' must be a list of strings") }
            } else {
                emptyList()
            }
            Approval.Transaction(a.str("amount"), a.str("currency"), a.str("payee"), text) to setOf("amount", "currency", "payee", "text")
        }
        "linkDevice" -> Approval.LinkDevice(a.str("deviceName"), a.str("deviceId")) to setOf("deviceName", "deviceId")
        else -> bad("unknown approval kind '$kind'")
    }
    for (k in m.keys) if (k != "kind" && k !in keys) bad("unknown key 'approval.$k'")
    return approval
}

/** An approval as the API's JSON (`text` always present for a transaction); `deviceId` rewrites a linkDevice's device id. */
private fun approvalJson(a: Approval, deviceId: (String) -> String = { it }): Map<String, Any?> = when (a) {
    is Approval.Login -> mapOf("kind" to "login")
    is Approval.Transaction -> mapOf("kind" to "transaction", "amount" to a.amount, "currency" to a.currency, "payee" to a.payee, "text" to a.text)
    is Approval.LinkDevice -> mapOf("kind" to "linkDevice", "deviceName" to a.deviceName, "deviceId" to deviceId(a.deviceId))
}

/** readChallenge's approval: a linkDevice's `deviceId` names the phone with that id (README). */
private fun approvalFacts(w: World, a: Approval): Map<String, Any?> = approvalJson(a) { id -> w.phoneWithDevice(id)?.name ?: id }

/**
 * `settings` of op activationSettings: the API's ActivationSettings JSON,
 * unknown keys and wrong types refused (as serde's deny_unknown_fields;
 * `null` is an absent optional field).
 */
private fun activationSettings(m: Map<String, Any?>): ActivationSettings {
    val known = setOf(
        "hashIterations", "usableAfterSeconds", "activationTtlSeconds", "orderTtlSeconds",
        "challengeDigits", "passwordMinLength", "passwordMaxLength", "blocklist",
    )
    for (k in m.keys) if (k !in known) bad("unknown key 'settings.$k'")
    fun long(k: String): Long? = when (val v = m[k]) {
        null -> null
        is Long -> v
        else -> bad("'settings.$k' must be an integer, not $v")
    }
    fun int(k: String): Int? = long(k)?.let { if (it in Int.MIN_VALUE..Int.MAX_VALUE) it.toInt() else bad("'settings.$k' out of range") }
    val blocklist = when (val b = m["blocklist"]) {
        null -> if ("blocklist" in m) bad("'settings.blocklist' must be a list of strings") else emptyList()
        is List<*> -> b.map { it as? String ?: bad("'settings.blocklist' must be a list of strings") }
        else -> bad("'settings.blocklist' must be a list of strings")
    }
    return ActivationSettings(
        hashIterations = long("hashIterations"),
        usableAfterSeconds = long("usableAfterSeconds"),
        activationTtlSeconds = long("activationTtlSeconds"),
        orderTtlSeconds = long("orderTtlSeconds"),
        challengeDigits = int("challengeDigits"),
        passwordMinLength = int("passwordMinLength"),
        passwordMaxLength = int("passwordMaxLength"),
        blocklist = blocklist,
    )
}

/** A list input of strings (`tokens`, `lines` of importDevices). */
private fun strings(s: Step, k: String): List<String> =
    (s.m[k] as? List<*> ?: bad("'$k' must be a list of strings")).map { it as? String ?: bad("'$k' must be a list of strings") }

/**
 * `input` of activationNext: a string, or one reference: `{"shown": t}`
 * (token t's last code, or phone t's last answer), `{"wrong": t}` (that code,
 * every digit +1 mod 10), `{"serial": t}`, `{"initialPassword": order}`.
 */
private fun activationInput(w: World, s: Step): String = when (val i = s.m["input"]) {
    is String -> i
    is Map<*, *> -> {
        if (i.size != 1) bad("'input' is a string or an object with one reference, not $i")
        val (k, v) = i.entries.single()
        val name = v as? String ?: bad("an input reference is a name, not $v")
        when (k) {
            "shown" -> w.lastAnswerOf(name)
            "wrong" -> wrongCode(w.lastAnswerOf(name))
            "serial" -> w.token(name).serial
            "initialPassword" -> w.orderVar(name).initialPassword
            else -> bad("unknown input reference '$k'")
        }
    }
    null -> bad("missing input 'input'")
    else -> bad("bad 'input' $i")
}

/** `code` of redeemRecoveryCode: a string, or `{"recovery": [activationVar, i]}` (the i-th code that activation showed). */
private fun recoveryCode(w: World, s: Step): String = when (val c = s.m["code"]) {
    is String -> c
    is Map<*, *> -> {
        for (k in c.keys) if (k != "recovery") bad("unknown key 'code.$k'")
        val r = c["recovery"] as? List<*> ?: bad("'code.recovery' is [var, i]")
        if (r.size != 2) bad("'code.recovery' is [var, i]")
        val v = r[0] as? String ?: bad("'code.recovery[0]' is a var")
        val i = (r[1] as? Long)?.takeIf { it >= 0 } ?: bad("'code.recovery[1]' is an index")
        w.recoveryCodes[v]?.getOrNull(i.toInt()) ?: bad("no recovery code $i of '$v'")
    }
    null -> bad("missing input 'code'")
    else -> bad("'code' is a string or {\"recovery\": [var, i]}")
}

private fun challengeSettings(s: Step) = ChallengeSettings(digits = s.longOrNull("digits")?.toInt(), ttlSeconds = s.longOrNull("ttl"))

/** Runs one op; a Tessera error thrown by the API propagates to the caller. */
private fun runOp(w: World, op: String, s: Step): Outcome {
    when (op) {
        "portal" -> {
            if (w.portal != null) bad("a scenario has one portal")
            w.portal = Portal.generate(s.str("name"))
            return Outcome()
        }
        "offer" -> {
            val portal = w.portal()
            val settings = OfferSettings(
                ttlSeconds = s.longOrNull("ttl"),
                rules = if (s.has("rules")) rules(s.obj("rules")) else null,
                deviceCodes = if (s.has("deviceCodes")) deviceCodeRules(s.obj("deviceCodes")) else null,
            )
            val save = s.str("save")
            val o = portal.createOffer(s.str("account"), settings, s.at())
            w.store(o.change)
            w.vars[save] = o.qrText
            return Outcome(change = o.change)
        }
        "scan" -> {
            val p = w.phone(s)
            val qr = w.qr(s)
            val info = p.device.scanLinkQr(qr, s.at(), w.pinned(s))
            return Outcome(facts = mapOf("portalName" to info.portalName, "expiresAt" to info.expiresAt.epochSecond))
        }
        "startLink" -> {
            val p = w.phone(s)
            val qr = w.qr(s)
            val pinned = w.pinned(s)
            val choices = LinkChoices(deviceName = s.str("name"), passcode = s.str("passcode"), biometrics = s.bool("biometrics"))
            val pending = p.device.startLink(qr, choices, p.state, s.at(), pinned)
            p.request = pending.request()
            p.biometricSecret = pending.biometricSecret()
            p.answer = null
            p.ifNotStored = null
            p.pending = pending
            return Outcome()
        }
        "accept" -> {
            val portal = w.portal()
            val p = w.phone(s)
            val request = editText(p.request ?: bad("the phone has sent no request"), s.strOrNull("edit"))
            val opened = portal.openLinkRequest(request)
            val id = opened.deviceId()
            val offer = when (val o = s.strOrNull("offer")) {
                null -> w.offers[opened.offerId()]
                "missing" -> null
                else -> bad("bad offer \"$o\"")
            }
            val seen = id in w.pendings || id in w.devices
            val keySeen = if (s.has("deviceKeySeen")) s.m["deviceKeySeen"] as? Boolean ?: bad("'deviceKeySeen' must be true or false") else seen
            val lookup = LinkLookup(offer = offer, deviceKeySeen = keySeen)
            val a = opened.accept(lookup, s.at())
            w.store(a.change)
            p.answer = a.answer
            p.ifNotStored = a.ifNotStored
            return Outcome(verdict = a.verdict, change = a.change)
        }
        "finish" -> {
            val p = w.phone(s)
            val pending = p.pending ?: bad("the phone has no pending link")
            val answer = p.answer ?: bad("the phone has no answer")
            val genuine = when (val which = s.strOrNull("answer")) {
                null -> answer
                "ifNotStored" -> p.ifNotStored ?: bad("the phone has no answer")
                else -> bad("unknown answer '$which'")
            }
            val f = pending.finish(editText(genuine, s.strOrNull("edit")))
            p.state = f.state
            p.checkCode = f.checkCode
            p.deviceId = f.account.deviceId
            return Outcome()
        }
        "confirm" -> {
            val who = s.str("code")
            val portal = w.portal()
            val account = s.str("account")
            val code = when {
                who == "wrong" -> wrongCode(w.phones.values.firstNotNullOfOrNull { it.checkCode } ?: bad("no check code for \"$who\""))
                who.startsWith("wrong:") -> wrongCode(w.phones[who.removePrefix("wrong:")]?.checkCode ?: bad("no check code for \"$who\""))
                who.startsWith("wrong") -> bad("bad code \"$who\"")
                else -> {
                    val form = if (':' in who) who.substringBefore(':') else ""
                    val name = if (':' in who) who.substringAfter(':') else who
                    val c = (w.phones[name] ?: bad("no phone \"$name\"")).checkCode ?: bad("phone $name has no check code")
                    when (form) {
                        "" -> c
                        "prefix" -> c.dropLast(1)
                        "extra" -> c + "0"
                        "spaced" -> " $c "
                        else -> bad("bad code \"$who\"")
                    }
                }
            }
            val open = w.pendings.values.filter { it.account == account && it.status == PendingStatus.OPEN }.sortedBy { it.deviceId }
            val c = portal.confirmLink(open, code, s.at())
            if ((c.verdict is Verdict.Accepted) != (c.device != null)) bad("confirm: verdict ${verdictText(c.verdict)} with device ${c.device}")
            w.store(c.change)
            return Outcome(verdict = c.verdict, change = c.change)
        }
        "devices" -> {
            val account = s.str("account")
            val list = w.devices.values.filter { it.account == account }.sortedBy { it.name }.map {
                mapOf(
                    "name" to it.name,
                    "status" to when (it.status) {
                        DeviceStatus.ACTIVE -> "active"
                        DeviceStatus.UNLINKED -> "unlinked"
                    },
                )
            }
            return Outcome(facts = mapOf("devices" to list))
        }
        "rename", "unlink" -> {
            val portal = w.portal()
            val row = if (op == "unlink" && s.has("token")) {
                val t = w.token(s)
                val id = t.deviceId ?: bad("token ${t.name} was never bound")
                w.devices[id] ?: bad("no device row for token ${t.name}")
            } else {
                w.deviceRow(w.phone(s))
            }
            val change = if (op == "rename") portal.renameDevice(row, s.str("name"), s.at()) else portal.unlinkDevice(row, s.at())
            w.store(change)
            return Outcome(change = change)
        }
        "status" -> {
            val portal = w.portal()
            val p = w.phone(s)
            val (probe, answer) = if (s.bool("again")) {
                p.lastStatus ?: bad("no status request was sent")
            } else {
                val state = w.stateOf(p)
                val at = s.at()
                val probe = p.device.statusRequest(state, at)
                val id = portal.statusRequestDevice(probe.request())
                val device = w.devices[id]
                val lookup = StatusLookup(device = device, pending = if (device == null) w.pendings[id] else null)
                val answer = portal.answerStatus(probe.request(), lookup, at)
                p.lastStatus = probe to answer
                probe to answer
            }
            val status = probe.read(editText(answer, s.strOrNull("edit")))
            return Outcome(
                facts = mapOf(
                    "status" to when (status) {
                        LinkStatus.ACTIVE -> "active"
                        LinkStatus.AWAITING_CONFIRMATION -> "awaitingConfirmation"
                    },
                ),
            )
        }
        "deviceCode" -> {
            val portal = w.portal()
            val p = w.phone(s)
            val at = s.at()
            val passcode = s.strOrNull("passcode")
            val biometric = s.bool("biometric")
            val replay = s.bool("replay")
            if (listOf(passcode != null, biometric, replay).count { it } != 1) {
                bad("deviceCode takes exactly one of passcode, biometric: true, replay: true")
            }
            val code = if (replay) {
                p.lastCode ?: bad("no previous code to replay")
            } else {
                val unlock = if (passcode != null) {
                    Unlock.Passcode(passcode)
                } else {
                    Unlock.Biometric(p.biometricSecret ?: bad("the phone has no biometric secret"))
                }
                p.device.code(w.stateOf(p), unlock, at).also { p.lastCode = it }
            }
            val c = portal.verifyDeviceCode(w.deviceRow(p), code, at)
            w.store(c.change)
            return Outcome(verdict = c.verdict, change = c.change)
        }
        "offerNewDevice" -> {
            val portal = w.portal()
            val account = s.str("account")
            val save = s.str("save")
            val o = portal.createOfferForNewDevice(account, w.accountDevices(account), OfferSettings(), s.at())
            w.store(o.change)
            w.vars[save] = o.qrText
            return Outcome(change = o.change)
        }
        "challenge", "linkChallenge" -> {
            val portal = w.portal()
            val save = s.str("save")
            val settings = challengeSettings(s)
            val issued = if (op == "challenge") {
                val account = s.str("account")
                val rows = if (s.has("phone")) listOf(w.deviceRow(w.phone(s))) else w.accountDevices(account)
                portal.createChallenge(rows, approval(s.obj("approval")), settings, s.at())
            } else {
                val pending = w.pendingRow(w.phone(s))
                portal.createLinkChallenge(pending, w.accountDevices(pending.account), settings, s.at())
            }
            w.store(issued.change)
            w.vars[save] = issued.qrText
            w.challengeIds[save] = issued.challengeId
            return Outcome(change = issued.change)
        }
        "readChallenge" -> {
            val p = w.phone(s)
            val qr = w.qr(s)
            val view = p.device.readChallenge(w.stateOf(p), qr, s.at())
            return Outcome(
                facts = mapOf(
                    "portalName" to view.portalName,
                    "account" to view.account,
                    "approval" to approvalFacts(w, view.approval),
                    "digits" to view.digits.toLong(),
                ),
            )
        }
        "answer" -> {
            val p = w.phone(s)
            val qr = w.qr(s)
            val state = w.stateOf(p)
            val passcode = s.strOrNull("passcode")
            val unlock = when {
                passcode != null && !s.bool("biometric") -> Unlock.Passcode(passcode)
                passcode == null && s.bool("biometric") -> Unlock.Biometric(p.biometricSecret ?: bad("the phone has no biometric secret"))
                else -> bad("answer takes exactly one of passcode, biometric: true")
            }
            val at = s.at()
            p.lastAnswer = if (s.bool("signed")) {
                val signed = p.device.signChallenge(state, qr, unlock, at)
                p.state = signed.state
                signed.answer
            } else {
                p.device.answerChallenge(state, qr, unlock, at)
            }
            return Outcome()
        }
        "verify", "vouch" -> {
            val portal = w.portal()
            val v = s.str("challenge")
            val id = w.challengeIds[v] ?: bad("no challenge '$v'")
            val row = w.challenges[id] ?: bad("no challenge row for '$v'")
            val who = s.str("answer")
            val genuine = if (who.startsWith("wrong:")) wrongCode(w.lastAnswerOf(who.removePrefix("wrong:"))) else w.lastAnswerOf(who)
            val answer = editText(genuine, s.strOrNull("edit"))
            val rows = row.deviceIds.mapNotNull { w.devices[it] }
            val at = s.at()
            if (op == "verify") {
                val c = portal.verifyAnswer(row, rows, answer, at)
                if ((c.verdict is Verdict.Accepted) != (c.deviceId != null)) bad("verify: verdict ${verdictText(c.verdict)} with device ${c.deviceId}")
                w.store(c.change)
                val by = c.deviceId?.let(w::deviceOwner)
                return Outcome(verdict = c.verdict, change = c.change, facts = if (by != null) mapOf("device" to by) else emptyMap())
            }
            val pending = w.pendingRow(w.phone(s))
            val c = portal.confirmWithAuthenticator(pending, row, rows, answer, at)
            if ((c.verdict is Verdict.Accepted) != (c.device != null)) bad("vouch: verdict ${verdictText(c.verdict)} with device ${c.device}")
            val linked = c.device
            if (linked != null && linked.deviceId != pending.deviceId) {
                // Reported, not failed (a host problem; the README's op does not check it).
                println("     note: confirmWithAuthenticator: LinkConfirmation.device is ${linked.name}, not the new device ${pending.deviceName}")
            }
            w.store(c.change)
            return Outcome(verdict = c.verdict, change = c.change)
        }
        "unlockDevice" -> {
            val portal = w.portal()
            val change = portal.unlockDevice(w.deviceRow(w.phone(s)), s.at())
            w.store(change)
            return Outcome(change = change)
        }
        "clone" -> {
            val from = s.str("from")
            val source = w.phones.getOrPut(from) { Phone(from) }
            val p = w.phone(s)
            if (p === source) bad("a phone cannot be a clone of itself")
            p.copyStorageOf(source)
            return Outcome()
        }
        "wipe" -> {
            val p = w.phone(s)
            p.device.unlinkLocally(w.stateOf(p))
            p.state = null
            p.biometricSecret = null
            p.checkCode = null
            p.lastCode = null
            return Outcome()
        }
        "activationSettings" -> {
            w.activationSettings = activationSettings(s.obj("settings"))
            return Outcome()
        }
        "token" -> {
            val name = s.str("token")
            if (name in w.tokens) bad("token $name exists")
            val app = try {
                OfflineAuthenticator(newStorageKey())
            } catch (e: TesseraException) {
                bad("OfflineAuthenticator(newStorageKey()): $e")
            }
            val made = app.create(s.str("serial"))
            w.tokens[name] = Token(name, app, made.state, app.info(made.state).serial, made.factoryRecord)
            return Outcome()
        }
        "importDevices" -> {
            val portal = w.portal()
            val records = strings(s, "tokens").map { w.token(it).factoryRecord }
            val lines = listOf(s.strOrNull("header") ?: "tessera-factory-records v1") + records + (if (s.has("lines")) strings(s, "lines") else emptyList())
            val file = lines.joinToString("\n") + "\n"
            val known = factoryFileSerials(file).filter { it in w.authenticators }
            val imported = portal.importDevices(file, known, s.at())
            w.store(imported.change)
            return Outcome(change = imported.change, facts = mapOf("serials" to imported.serials))
        }
        "order" -> {
            val portal = w.portal()
            val t = w.token(s)
            val row = w.authenticators[t.serial] ?: bad("token ${t.name} was not imported")
            val o = portal.orderDevice(s.str("account"), s.str("activationCode"), row, w.activationSettings, s.at())
            w.store(o.change)
            w.ordersByVar[s.str("save")] = OrderVar(o.userId, o.initialPassword)
            return Outcome(change = o.change)
        }
        "activationStart" -> {
            val portal = w.portal()
            val userId = w.orderVar(s.str("order")).userId
            val order = w.orders[userId] ?: bad("no order row for user $userId")
            val auth = w.authenticators[order.serial] ?: bad("no authenticator row ${order.serial}")
            val u = portal.startActivation(order, auth, w.activationSettings, s.at())
            return w.activationUpdate(s.str("save"), u)
        }
        "activationNext" -> {
            val portal = w.portal()
            val v = s.str("activation")
            val id = w.activationIds[v] ?: bad("no activation '$v'")
            val row = w.activations[id] ?: bad("no activation row for '$v'")
            val order = w.orders[row.userId] ?: bad("no order row for user ${row.userId}")
            val auth = w.authenticators[row.serial] ?: bad("no authenticator row ${row.serial}")
            val creds = w.credentials[row.account]
            val input = activationInput(w, s)
            val u = portal.activationNext(row, order, auth, creds, input, w.activationSettings, s.at())
            return w.activationUpdate(v, u)
        }
        "tokenScan" -> {
            val t = w.token(s)
            val qr = w.qr(s)
            val screen = t.app.scan(t.state, qr)
            val info = t.app.info(screen.state)
            val user = screen.userId?.let { u -> w.ordersByVar.entries.firstOrNull { it.value.userId == u }?.key }
            t.state = screen.state
            t.lastCode = screen.code
            t.deviceId = info.deviceId
            return Outcome(
                facts = mapOf(
                    "kind" to screenKindName(screen.kind),
                    "digits" to screen.code.length.toLong(),
                    "portalName" to screen.portalName,
                    "userId" to user,
                    // As the Rust runner: the API's JSON, a linkDevice's deviceId as it is.
                    "approval" to screen.approval?.let { approvalJson(it) },
                    "replaced" to screen.replaced,
                ),
            )
        }
        "verifyPassword", "redeemRecoveryCode" -> {
            val portal = w.portal()
            val account = s.str("account")
            val row = w.credentials[account] ?: bad("the account has no credentials row")
            val c = if (op == "verifyPassword") {
                portal.verifyPassword(row, s.str("password"), s.at())
            } else {
                portal.redeemRecoveryCode(row, recoveryCode(w, s), s.at())
            }
            w.store(c.change)
            return Outcome(verdict = c.verdict, change = c.change, facts = mapOf("left" to c.recoveryCodesLeft.toLong()))
        }
        "hotp" -> {
            val code = hotp(
                hex(s.str("secret")), s.long("counter"), s.longOrNull("digits")?.toInt() ?: 6,
                s.strOrNull("algorithm")?.let(::otpAlgorithm) ?: OtpAlgorithm.SHA1,
            )
            return Outcome(facts = mapOf("code" to code))
        }
        "totp" -> {
            val code = totp(
                hex(s.str("secret")), s.at(), s.longOrNull("period") ?: 30L, s.longOrNull("digits")?.toInt() ?: 6,
                s.strOrNull("algorithm")?.let(::otpAlgorithm) ?: OtpAlgorithm.SHA1,
            )
            return Outcome(facts = mapOf("code" to code))
        }
        "verifyHotp", "verifyTotp", "resyncHotp" -> {
            val name = s.str("verifier")
            val config = verifierConfig(s.obj("config"))
            val state = if (s.has("state")) verifierState(s.obj("state")) else w.verifiers[name] ?: newVerifierState()
            val at = s.at()
            val c = when (op) {
                "verifyHotp" -> verifyHotp(config, state, s.str("code"), at)
                "verifyTotp" -> verifyTotp(config, state, s.str("code"), at)
                else -> resyncHotp(config, state, s.str("code1"), s.str("code2"), s.long("window"), at)
            }
            w.verifiers[name] = c.state
            return Outcome(verdict = c.verdict, facts = mapOf("matched" to c.matched, "drift" to c.drift))
        }
        "unlock" -> {
            val name = s.str("verifier")
            w.verifiers[name] = unlockVerifier(w.verifiers[name] ?: newVerifierState())
            return Outcome()
        }
        else -> bad("unknown op '$op'")
    }
}

/** Checks a step's outcome against its `expect` and `events`. */
private fun check(op: String, s: Step, o: Outcome) {
    val got = o.error?.let { "error ${it.code} (${it.detail})" } ?: verdictText(o.verdict)
    fun mustNotThrow() { if (o.error != null) bad("expected success, got $got") }
    fun mustAccept() {
        mustNotThrow()
        if (op in VERDICT_OPS && o.verdict !is Verdict.Accepted) bad("expected accepted, got $got")
    }
    when (val e = s.m["expect"]) {
        null, "ok" -> mustAccept()
        "accepted" -> {
            if (op !in VERDICT_OPS) bad("op '$op' has no verdict to be 'accepted'")
            mustAccept()
        }
        "repeated" -> {
            if (op !in VERDICT_OPS) bad("op '$op' has no verdict to be 'repeated'")
            if (o.verdict !is Verdict.Repeated) bad("expected repeated, got $got")
        }
        is Map<*, *> -> when {
            e.containsKey("error") -> {
                if (e.size != 1) bad("'expect' with 'error' has other keys: ${e.keys}")
                val want = errorCode(e["error"] as? String ?: bad("'expect.error' must be a code string"))
                if (o.error?.code != want) bad("expected error $want, got $got")
            }
            e.containsKey("refused") -> {
                if (e.size != 1) bad("'expect' with 'refused' has other keys: ${e.keys}")
                if (op !in VERDICT_OPS) bad("op '$op' has no verdict to be refused")
                val want = errorCode(e["refused"] as? String ?: bad("'expect.refused' must be a code string"))
                val v = o.verdict
                if (o.error != null || v !is Verdict.Refused || v.code != want) bad("expected refused $want, got $got")
            }
            else -> {
                val allowed = EXPECT_KEYS[op] ?: emptySet()
                for (k in e.keys) if (k !in allowed) bad("unknown expect key '$k' for op '$op'")
                mustAccept()
                for ((k, want) in e) {
                    val have = o.facts[k as String]
                    if (have != want) bad("expected $k = $want, got $have")
                }
            }
        }
        else -> bad("unknown expect $e")
    }
    if (s.has("events")) {
        @Suppress("UNCHECKED_CAST")
        val want = s.m["events"] as? List<String> ?: bad("'events' must be a list of strings")
        val have = o.change?.events?.map(::eventKind) ?: emptyList()
        if (have != want) bad("expected events $want, got $have")
    }
}

/** What one file ran. */
class ScenarioReport(val steps: Int, val skipped: List<String>)

/**
 * Plays one file. Throws ScenarioError("step N (op): …"), steps counted
 * from 0 as the Rust runner does; a step with `skip` (its reason) is not run.
 */
fun runScenario(text: String): ScenarioReport {
    @Suppress("UNCHECKED_CAST")
    val doc = JsonReader.parse(text) as? Map<String, Any?> ?: bad("not a JSON object")
    for (k in doc.keys) if (k !in setOf("name", "about", "steps")) bad("unknown key '$k'")
    for (k in listOf("name", "about")) doc[k] as? String ?: bad("'$k' must be a string")
    val steps = doc["steps"] as? List<*> ?: bad("no 'steps' array")
    if (steps.isEmpty()) bad("no steps")
    val w = World()
    var ran = 0
    val skipped = ArrayList<String>()
    steps.forEachIndexed { i, raw ->
        val op = (raw as? Map<*, *>)?.get("do") as? String ?: "?"
        try {
            @Suppress("UNCHECKED_CAST")
            val s = Step(raw as? Map<String, Any?> ?: bad("a step is an object"))
            val keys = OP_KEYS[op] ?: bad("unknown op \"$op\"")
            for (k in s.m.keys) if (k !in COMMON_KEYS && k !in keys) bad("unknown key '$k'")
            if (s.has("skip")) {
                skipped.add("step $i ($op): ${s.str("skip")}")
                return@forEachIndexed
            }
            val outcome = try {
                runOp(w, op, s)
            } catch (e: TesseraException.Failure) {
                Outcome(error = e)
            }
            check(op, s, outcome)
            ran++
        } catch (e: ScenarioError) {
            throw ScenarioError("step $i ($op): ${e.message}")
        }
    }
    return ScenarioReport(ran, skipped)
}

/** Fewer files than this means a wrong directory or an emptied one (README). */
const val MIN_SCENARIO_FILES = 10

/** Runs every *.json of `dir`, one test each; fails when there are fewer than MIN_SCENARIO_FILES. */
fun scenarioTests(r: Runner, dir: File) {
    val files = dir.listFiles { f -> f.isFile && f.name.endsWith(".json") }?.sortedBy { it.name } ?: emptyList()
    r.test("scenarios: ${dir.path} holds at least $MIN_SCENARIO_FILES files") {
        if (files.size < MIN_SCENARIO_FILES) throw AssertionError("only ${files.size} *.json in $dir")
    }
    for (f in files) {
        r.test("scenario ${f.name}") {
            val report = try {
                runScenario(f.readText())
            } catch (e: ScenarioError) {
                throw AssertionError("${f.name}: ${e.message}")
            }
            r.scenarioFiles++
            r.scenarioSteps += report.steps
            r.scenarioSkipped += report.skipped.map { "${f.name}: $it" }
        }
    }
}

/** A scenario of the runner's own (independent of the files) that passes. */
private val SELF_TEST = """
{ "name": "runner-self-test", "about": "the Kotlin runner cannot pass vacuously", "steps": [
  { "do": "portal", "name": "Example Bank" },
  { "do": "offer", "account": "anna", "save": "qr", "at": 1800000000, "events": [] },
  { "do": "scan", "phone": "p1", "qr": "qr", "pinned": true, "at": 1800000005, "expect": { "portalName": "Example Bank", "expiresAt": 1800000300 } },
  { "do": "startLink", "phone": "p1", "qr": "qr", "name": "Pixel", "passcode": "493817", "at": 1800000010 },
  { "do": "accept", "phone": "p1", "at": 1800000011, "expect": "accepted" },
  { "do": "finish", "phone": "p1" },
  { "do": "confirm", "account": "anna", "code": "wrong", "at": 1800000020, "expect": { "refused": "CHECK_CODE_MISMATCH" } },
  { "do": "confirm", "account": "anna", "code": "p1", "at": 1800000021, "expect": "accepted", "events": ["deviceLinked"] },
  { "do": "devices", "account": "anna", "expect": { "devices": [{ "name": "Pixel", "status": "active" }] } },
  { "do": "hotp", "secret": "3132333435363738393031323334353637383930", "counter": 0, "expect": { "code": "755224" } },
  { "do": "scan", "phone": "p2", "qr": "qr", "edit": "truncate", "at": 1800000005, "expect": { "error": "MALFORMED_MESSAGE" } },
  { "do": "challenge", "account": "anna", "approval": { "kind": "login" }, "at": 1800000100, "save": "c" },
  { "do": "readChallenge", "phone": "p1", "qr": "c", "at": 1800000101, "expect": { "portalName": "Example Bank", "account": "anna", "approval": { "kind": "login" }, "digits": 8 } },
  { "do": "answer", "phone": "p1", "qr": "c", "passcode": "493817", "at": 1800000102 },
  { "do": "verify", "challenge": "c", "answer": "p1", "at": 1800000103, "expect": { "device": "p1" }, "events": ["challengeAnswered"] },
  { "do": "activationSettings", "settings": { "hashIterations": 10000 } },
  { "do": "token", "token": "t1", "serial": "TS00012345" },
  { "do": "importDevices", "tokens": ["t1"], "at": 1800000200, "expect": { "serials": ["TS00012345"] } },
  { "do": "order", "account": "anna", "activationCode": "271828", "token": "t1", "save": "o1", "at": 1800000210 },
  { "do": "activationStart", "order": "o1", "save": "a1", "at": 1800000220, "expect": { "step": "deviceCode", "qr": true } },
  { "do": "tokenScan", "token": "t1", "qr": "a1", "expect": { "kind": "deviceCode", "digits": 10, "portalName": "Example Bank" } },
  { "do": "activationNext", "activation": "a1", "input": { "wrong": "t1" }, "at": 1800000225, "expect": { "refused": "DEVICE_CODE_MISMATCH" }, "events": [] },
  { "do": "activationNext", "activation": "a1", "input": { "shown": "t1" }, "at": 1800000226, "expect": { "step": "activationCode", "qr": false } },
  { "do": "unlock", "verifier": "v", "skip": "a skipped step is not run" }
] }
"""

/** Runs SELF_TEST, then changed copies of it that must fail at the changed step. */
fun scenarioRunnerSelfTests(r: Runner) {
    r.test("scenario runner: its own scenario passes; changed copies fail naming the step") {
        val report = runScenario(SELF_TEST)
        assert(report.steps == 23 && report.skipped.size == 1) { "ran ${report.steps}, skipped ${report.skipped}" }
        val changes = listOf(
            Triple("\"expect\": { \"code\": \"755224\" }", "\"expect\": { \"code\": \"755225\" }", "step 9 (hotp)"),
            Triple("\"expect\": { \"code\": \"755224\" }", "\"expect\": { \"cod\": \"755224\" }", "step 9 (hotp): unknown expect key"),
            Triple("\"counter\": 0", "\"countr\": 0", "step 9 (hotp): unknown key"),
            Triple("\"do\": \"hotp\"", "\"do\": \"hotpp\"", "step 9 (hotpp): unknown op"),
            Triple("{ \"refused\": \"CHECK_CODE_MISMATCH\" }", "{ \"refused\": \"LOCKED_OUT\" }", "step 6 (confirm)"),
            Triple(", \"expect\": { \"refused\": \"CHECK_CODE_MISMATCH\" }", "", "step 6 (confirm): expected accepted"),
            Triple("\"expect\": \"accepted\", \"events\": [\"deviceLinked\"]", "\"expect\": \"accepted\", \"events\": [\"deviceUnlinked\"]", "step 7 (confirm): expected events"),
            Triple("\"expect\": \"accepted\" }", "\"expect\": \"repeated\" }", "step 4 (accept)"),
            Triple("\"expiresAt\": 1800000300", "\"expiresAt\": 1800000301", "step 2 (scan)"),
            Triple("\"status\": \"active\"", "\"status\": \"unlinked\"", "step 8 (devices)"),
            Triple("{ \"error\": \"MALFORMED_MESSAGE\" }", "{ \"error\": \"MESSAGE_TAMPERED\" }", "step 10 (scan)"),
            Triple("\"at\": 1800000011, ", "", "step 4 (accept): missing 'at'"),
            Triple("\"about\": \"the Kotlin runner cannot pass vacuously\", ", "", "'about' must be a string"),
            Triple("{ \"device\": \"p1\" }", "{ \"device\": \"p2\" }", "step 14 (verify)"),
            Triple("\"events\": [\"challengeAnswered\"]", "\"events\": []", "step 14 (verify): expected events"),
            Triple("\"passcode\": \"493817\", \"at\": 1800000102", "\"passcode\": \"000000\", \"at\": 1800000102", "step 14 (verify): expected accepted, got refused INVALID_ANSWER"),
            Triple("\"digits\": 8 }", "\"digits\": 6 }", "step 12 (readChallenge)"),
            Triple("\"approval\": { \"kind\": \"login\" }", "\"approval\": { \"kind\": \"login\", \"x\": 1 }", "step 11 (challenge): unknown key 'approval.x'"),
            Triple("\"do\": \"verify\", \"challenge\": \"c\"", "\"do\": \"verify\", \"challenge\": \"c\", \"phone\": \"p1\"", "step 14 (verify): unknown key 'phone'"),
            // Flow 3.
            Triple("\"hashIterations\": 10000", "\"hashIteration\": 10000", "step 15 (activationSettings): unknown key 'settings.hashIteration'"),
            Triple("\"serials\": [\"TS00012345\"]", "\"serials\": [\"TS00012346\"]", "step 17 (importDevices)"),
            Triple("\"qr\": true } }", "\"qrText\": true } }", "step 19 (activationStart): unknown expect key"),
            Triple("\"kind\": \"deviceCode\"", "\"kind\": \"bindingCode\"", "step 20 (tokenScan)"),
            Triple("\"digits\": 10", "\"digits\": 8", "step 20 (tokenScan)"),
            Triple("\"do\": \"tokenScan\", \"token\": \"t1\"", "\"do\": \"tokenScan\", \"token\": \"t1\", \"phone\": \"p1\"", "step 20 (tokenScan): unknown key 'phone'"),
            Triple("{ \"wrong\": \"t1\" }", "{ \"shown\": \"t1\" }", "step 21 (activationNext): expected refused DEVICE_CODE_MISMATCH"),
            Triple("{ \"refused\": \"DEVICE_CODE_MISMATCH\" }", "{ \"refused\": \"ACTIVATION_CODE_MISMATCH\" }", "step 21 (activationNext)"),
            Triple("\"DEVICE_CODE_MISMATCH\" }, \"events\": []", "\"DEVICE_CODE_MISMATCH\" }, \"events\": [\"orderLocked\"]", "step 21 (activationNext): expected events"),
            Triple("{ \"shown\": \"t1\" }", "{ \"seen\": \"t1\" }", "step 22 (activationNext): unknown input reference"),
            Triple("\"qr\": false }", "\"qr\": true }", "step 22 (activationNext)"),
        )
        for ((from, to, want) in changes) {
            if (from !in SELF_TEST) throw AssertionError("self test: no '$from'")
            val e = try {
                runScenario(SELF_TEST.replaceFirst(from, to))
                throw AssertionError("'$from' -> '$to' still passes")
            } catch (e: ScenarioError) {
                e.message ?: ""
            }
            if (!e.startsWith(want) && !e.contains(want)) throw AssertionError("'$from' -> '$to': failure '$e' does not name '$want'")
        }
    }
}
