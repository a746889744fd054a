// What the README examples assume of the app around them. test.sh wraps each
// ```kotlin block of README.md in a function of build/readme/Examples.kt and
// compiles it with this file and the bindings (never run): an example that
// uses a name the API does not have fails the build.
package dev.tessera.readme

import dev.tessera.*

val storageKey: ByteArray get() = TODO()
val qrText: String get() = TODO()
val storedState: ByteArray? get() = TODO()
val state: ByteArray get() = TODO()
val passcode: String get() = TODO()
val secretFromTheSecretManager: ByteArray get() = TODO()
val body: String get() = TODO()
val typed: String get() = TODO()
val code: String get() = TODO()
val deviceId: String get() = TODO()
val scanned: String get() = TODO()
val storedOtpState: OtpVerifierState? get() = TODO()
val scannedQr: String get() = TODO()
val device: Device get() = TODO()
val portal: Portal get() = TODO()
val file: String get() = TODO()
val activationCode: String get() = TODO()
val userId: String get() = TODO()
val serial: String get() = TODO()

fun show(vararg what: Any?) {}
fun savePending(sealed: ByteArray) {}
fun saveState(state: ByteArray) {}
fun saveOtpState(state: OtpVerifierState) {}
fun post(request: String): String = TODO()
fun reply(answer: String) {}
fun render(svg: String) {}
fun wipe() {}
fun retryLater() {}
fun mail(to: String, text: String) {}
fun audit(event: PortalEvent) {}
fun askUser(question: String): Boolean = TODO()
fun hasNetwork(): Boolean = TODO()
fun approvePayment(deviceId: String?) {}

object keystore {
    fun putBehindBiometricPrompt(secret: ByteArray) {}
}

class Db {
    fun offer(offerId: String): StoredOffer? = TODO()
    fun hasPendingOrDevice(deviceId: String): Boolean = TODO()
    fun openPendingLinks(account: String): List<StoredPendingLink> = TODO()
    fun device(deviceId: String): StoredDevice = TODO()
    fun deviceOrNull(deviceId: String): StoredDevice? = TODO()
    fun pending(deviceId: String): StoredPendingLink? = TODO()
    fun accountDevices(account: String): List<StoredDevice> = TODO()
    fun devices(deviceIds: List<String>): List<StoredDevice> = TODO()
    fun challenge(challengeId: String): StoredChallenge = TODO()
    fun hasAuthenticator(serial: String): Boolean = TODO()
    fun inStockAuthenticator(): StoredAuthenticator = TODO()
    fun authenticator(serial: String): StoredAuthenticator = TODO()
    fun order(userId: String): StoredOrder = TODO()
    fun activation(activationId: String): StoredActivation = TODO()
    fun credentialsOrNull(account: String): StoredCredentials? = TODO()
    fun apply(change: PortalChange): Boolean = TODO()
    fun transaction(body: () -> Boolean): Boolean = body()
    fun put(table: String, key: String, row: Any, expectedVersion: Long?): Boolean = TODO()
    fun rollback(): Boolean = false
}

val db = Db()
