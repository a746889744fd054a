// Kotlin binding tests of Tessera: a plain `main` runner (no JUnit) using
// kotlin.test asserts. It loads libtessera_ffi the way an app does: the
// generated `dev.tessera` bindings through JNA (-Djna.library.path=...).
//
//   java ... dev.tessera.tests.MainKt <vectors/scenarios> <vectors/otp.json> <vectors/link.json>
//
// Behaviour is tested once for every language by the scenario files
// (Scenarios.kt runs them); the golden vectors are checked byte for byte
// (Vectors.kt); KotlinApiTests.kt holds what only the Kotlin surface has.
package dev.tessera.tests

import java.io.File
import kotlin.system.exitProcess

class Runner {
    var passed = 0
    var failed = 0
    var scenarioFiles = 0
    var scenarioSteps = 0
    val scenarioSkipped = ArrayList<String>()

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

@Suppress("UNCHECKED_CAST")
fun readJsonObject(path: String): Map<String, Any?> =
    JsonReader.parse(File(path).readText()) as? Map<String, Any?> ?: error("$path: not a JSON object")

fun main(args: Array<String>) {
    if (args.size != 3) {
        System.err.println("usage: MainKt <vectors/scenarios> <vectors/otp.json> <vectors/link.json>")
        exitProcess(2)
    }
    val r = Runner()
    scenarioRunnerSelfTests(r)
    scenarioTests(r, File(args[0]))
    otpVectorTests(r, readJsonObject(args[1]))
    linkVectorTests(r, readJsonObject(args[2]))
    kotlinApiTests(r)
    println("scenarios: ${r.scenarioFiles} files passed, ${r.scenarioSteps} steps ran, ${r.scenarioSkipped.size} skipped")
    for (s in r.scenarioSkipped) println("  skipped: $s")
    println("${r.passed} passed, ${r.failed} failed")
    if (r.failed != 0 || r.passed == 0) exitProcess(1)
}
