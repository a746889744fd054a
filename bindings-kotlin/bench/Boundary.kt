// Per-call cost through UniFFI/JNA, for scripts/bench-boundary.sh: the same
// two calls as host/examples/boundary.rs, timed the same way (warm-up, then
// the mean of N calls). Prints `kotlin <call> <ns per call>`.
package dev.tessera.bench

import dev.tessera.*
import java.time.Instant

fun perCall(n: Int, f: () -> Unit): Double {
    repeat(n / 10) { f() }
    val t = System.nanoTime()
    repeat(n) { f() }
    return (System.nanoTime() - t).toDouble() / n
}

fun main() {
    val secret = "12345678901234567890".toByteArray()
    val now = Instant.ofEpochSecond(1_800_000_000)
    val code = totp(secret, now, 30L, 6, OtpAlgorithm.SHA1)
    val config = OtpVerifierConfig(secret)
    val one = byteArrayOf(1)
    var sink = 0L
    val trivial = perCall(200_000) { sink += base32Encode(one).length }
    val verify = perCall(50_000) { sink += verifyTotp(config, newVerifierState(), code, now).drift }
    println("kotlin trivial-call(base32Encode 1 byte) ${"%.0f".format(trivial)} ns")
    println("kotlin totp-verification ${"%.0f".format(verify)} ns")
    if (sink == -1L) println()
}
