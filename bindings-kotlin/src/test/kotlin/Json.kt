// A tiny JSON reader for the shared test vectors (no dependency beyond the
// Kotlin stdlib). Objects become Map<String, Any?>, arrays List<Any?>,
// integral numbers Long, other numbers Double.
package dev.tessera.tests

class JsonReader private constructor(private val s: String) {
    private var i = 0

    companion object {
        fun parse(text: String): Any? {
            val r = JsonReader(text)
            val v = r.value()
            r.ws()
            require(r.i == r.s.length) { "trailing data at offset ${r.i}" }
            return v
        }
    }

    private fun ws() {
        while (i < s.length && s[i] in " \t\r\n") i++
    }

    private fun expect(c: Char) {
        ws()
        require(i < s.length && s[i] == c) { "expected '$c' at offset $i" }
        i++
    }

    private fun value(): Any? {
        ws()
        require(i < s.length) { "unexpected end of JSON" }
        return when (val c = s[i]) {
            '{' -> obj()
            '[' -> arr()
            '"' -> str()
            't' -> literal("true", true)
            'f' -> literal("false", false)
            'n' -> literal("null", null)
            else -> if (c == '-' || c.isDigit()) num() else error("unexpected '$c' at offset $i")
        }
    }

    private fun literal(word: String, v: Any?): Any? {
        require(s.startsWith(word, i)) { "bad literal at offset $i" }
        i += word.length
        return v
    }

    private fun obj(): Map<String, Any?> {
        expect('{')
        val m = LinkedHashMap<String, Any?>()
        ws()
        if (s[i] == '}') { i++; return m }
        while (true) {
            ws()
            val k = str()
            expect(':')
            m[k] = value()
            ws()
            when (s[i++]) {
                ',' -> continue
                '}' -> return m
                else -> error("expected ',' or '}' at offset ${i - 1}")
            }
        }
    }

    private fun arr(): List<Any?> {
        expect('[')
        val l = ArrayList<Any?>()
        ws()
        if (s[i] == ']') { i++; return l }
        while (true) {
            l.add(value())
            ws()
            when (s[i++]) {
                ',' -> continue
                ']' -> return l
                else -> error("expected ',' or ']' at offset ${i - 1}")
            }
        }
    }

    private fun str(): String {
        require(s[i] == '"') { "expected a string at offset $i" }
        i++
        val b = StringBuilder()
        while (true) {
            require(i < s.length) { "unterminated string" }
            when (val c = s[i++]) {
                '"' -> return b.toString()
                '\\' -> when (val e = s[i++]) {
                    '"', '\\', '/' -> b.append(e)
                    'b' -> b.append('\b')
                    'f' -> b.append('\u000C')
                    'n' -> b.append('\n')
                    'r' -> b.append('\r')
                    't' -> b.append('\t')
                    'u' -> { b.append(s.substring(i, i + 4).toInt(16).toChar()); i += 4 }
                    else -> error("bad escape '\\$e' at offset ${i - 1}")
                }
                else -> b.append(c)
            }
        }
    }

    private fun num(): Any {
        val start = i
        while (i < s.length && (s[i].isDigit() || s[i] in "+-.eE")) i++
        val t = s.substring(start, i)
        return t.toLongOrNull() ?: t.toDouble()
    }
}
