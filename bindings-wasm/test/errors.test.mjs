// Errors: every failure is a real Error named TesseraError with a stable
// `code`; malformed JS input is INVALID_INPUT and never a panic or a coercion.
import test from "node:test";
import assert from "node:assert/strict";
import * as sdk from "@tessera/sdk";

const { hotp, totp, ocra, base32Decode, base32Encode, errorCodes } = sdk;
const KEY = new TextEncoder().encode("12345678901234567890");
const SUITE = "OCRA-1:HOTP-SHA1-6:QN08";

function throwsCode(fn, code, what = code) {
  let caught;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `${what}: expected a throw`);
  assert.ok(caught instanceof Error, `${what}: not an Error: ${caught}`);
  assert.equal(caught.name, "TesseraError", what);
  assert.equal(caught.code, code, `${what}: ${caught.message}`);
  assert.equal(typeof caught.message, "string");
  assert.ok(caught.message.length > 0);
  return caught;
}

test("error shape", () => {
  const e = throwsCode(() => hotp(KEY, 0, 5), "INVALID_DIGITS");
  assert.equal(e.message, "digits must be between 6 and 10");
  assert.equal(typeof e.stack, "string");
  assert.ok(errorCodes().includes(e.code));
  assert.match(String(e), /^TesseraError: /);
});

test("bad digits → INVALID_DIGITS", () => {
  for (const d of [0, 5, 11, 255, 300, 2 ** 40]) {
    throwsCode(() => hotp(KEY, 0, d), "INVALID_DIGITS", `hotp digits ${d}`);
    throwsCode(() => totp(KEY, 59, 30, d), "INVALID_DIGITS", `totp digits ${d}`);
  }
  throwsCode(() => hotp(KEY, 0, 6.5), "INVALID_INPUT");
  throwsCode(() => hotp(KEY, 0, "8"), "INVALID_INPUT");
});

test("bad base32 → INVALID_SECRET", () => {
  throwsCode(() => base32Decode("MZXW6YQ1"), "INVALID_SECRET");
  throwsCode(() => base32Decode("A"), "INVALID_SECRET");
  throwsCode(() => base32Decode("MZ=XW"), "INVALID_SECRET");
  throwsCode(() => base32Decode(12), "INVALID_INPUT");
  throwsCode(() => base32Encode("foo"), "INVALID_INPUT");
  throwsCode(() => base32Encode([1, 2]), "INVALID_INPUT");
});

test("bad OCRA suite → INVALID_OCRA_SUITE, missing input → INVALID_OCRA_INPUT", () => {
  throwsCode(() => ocra("OCRA-2:HOTP-SHA1-6:QN08", KEY, { question: "00000000" }), "INVALID_OCRA_SUITE");
  throwsCode(() => ocra("nonsense", KEY, { question: "00000000" }), "INVALID_OCRA_SUITE");
  throwsCode(() => ocra(SUITE, KEY, {}), "INVALID_OCRA_INPUT");
  throwsCode(() => ocra(SUITE, KEY), "INVALID_INPUT");
  throwsCode(() => ocra(SUITE, KEY, "00000000"), "INVALID_INPUT");
  throwsCode(() => ocra(SUITE, KEY, { question: 12345678 }), "INVALID_INPUT");
  throwsCode(() => ocra(SUITE, KEY, { question: "00000000", session: "abc" }), "INVALID_INPUT");
  throwsCode(() => ocra(SUITE, KEY, { question: "00000000", counter: -1 }), "INVALID_INPUT");
  throwsCode(() => ocra(SUITE, KEY, { get question() { throw new Error("boom"); } }), "INVALID_INPUT");
  throwsCode(() => ocra(123, KEY, { question: "00000000" }), "INVALID_INPUT");
});

test("bad numbers → INVALID_INPUT (no BigInt, no coercion)", () => {
  const bad = [-1, -0.5, 1.5, 2 ** 53, 2 ** 60, NaN, Infinity, -Infinity, "5", 5n, null, undefined, {}, [1], true];
  for (const n of bad) {
    throwsCode(() => hotp(KEY, n), "INVALID_INPUT", `counter ${String(n)}`);
    throwsCode(() => totp(KEY, n), "INVALID_INPUT", `time ${String(n)}`);
  }
  throwsCode(() => totp(KEY, 59, -30), "INVALID_INPUT");
  // The edges that must work.
  assert.equal(hotp(KEY, 0), "755224");
  assert.equal(hotp(KEY, -0), "755224");
  assert.equal(typeof hotp(KEY, Number.MAX_SAFE_INTEGER), "string");
  assert.equal(typeof totp(KEY, Number.MAX_SAFE_INTEGER, 1), "string");
});

test("other argument errors", () => {
  throwsCode(() => totp(KEY, 59, 0), "INVALID_TIME");
  throwsCode(() => hotp(KEY, 0, 6, "md5"), "INVALID_ALGORITHM");
  throwsCode(() => hotp(KEY, 0, 6, 256), "INVALID_INPUT");
  for (const s of ["12345678901234567890", [1, 2, 3], new ArrayBuffer(20), new Uint16Array(10), null, undefined]) {
    throwsCode(() => hotp(s, 0), "INVALID_INPUT", `secret ${Object.prototype.toString.call(s)}`);
  }
});

test("no JS input makes the module panic", () => {
  const throwingProxy = new Proxy({}, { get() { throw new Error("trap"); } });
  const values = [undefined, null, true, 0, -0, 1, -1, 1.5, NaN, Infinity, 2 ** 53, 2 ** 64, "", "x", "\u{1F600}",
    "otpauth://totp/a?secret=AAAAAAAAAAAAAAAAAAAAAAAAAA", SUITE, 10n, Symbol("s"), {}, [], () => {},
    new Uint8Array(0), new Uint8Array(200).fill(255), throwingProxy,
    { type: "hotp", counter: Number.MAX_SAFE_INTEGER, account: "a", secret: new Uint8Array(1) },
    { secret: new Uint8Array(0), digits: 10, window: 2 ** 53 - 1, period: 1 },
    { nextCounter: Number.MAX_SAFE_INTEGER, consecutiveFailures: 2 ** 32 - 1, locked: false },
    { question: "Z".repeat(1000), counter: Number.MAX_SAFE_INTEGER, time: Number.MAX_SAFE_INTEGER }];
  const fns = Object.entries(sdk).filter(([, f]) => typeof f === "function");
  let calls = 0;
  for (const [name, fn] of fns) {
    for (const a of values) {
      for (const b of values) {
        for (const c of [undefined, values[(calls * 7) % values.length]]) {
          calls++;
          try {
            fn(a, b, c, b, a);
          } catch (e) {
            assert.ok(e instanceof Error && e.name === "TesseraError" && typeof e.code === "string",
              `${name}(${[a, b, c].map((x) => typeof x)}): ${e}`);
          }
        }
      }
    }
  }
  assert.ok(calls > 10_000);
  // Still healthy afterwards.
  assert.equal(totp(KEY, 59, 30, 8), "94287082");
});
