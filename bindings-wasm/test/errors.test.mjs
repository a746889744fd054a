// Errors: every failure is a real Error named TesseraError with a stable
// `code`; malformed JS input is INVALID_INPUT and never a panic or a coercion.
import test from "node:test";
import assert from "node:assert/strict";
import * as sdk from "@tessera/sdk";
import { throwsCode } from "./helpers.mjs";

const { hotp, totp, ocra, base32Decode, base32Encode, errorCodes } = sdk;
const KEY = new TextEncoder().encode("12345678901234567890");
const SUITE = "OCRA-1:HOTP-SHA1-6:QN08";

const isClass = (f) => /^class\b/.test(Function.prototype.toString.call(f));


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
  // Impossible lengths: 1, 3 or 6 characters mod 8, padded or not.
  for (const s of ["A", "AAA", "AAAAAA", "A=======", "AAA=====", "AAAAAA==", "AAAAAAAAA", "GEZDGNBVG", "gezd gnbv gy3"]) {
    throwsCode(() => base32Decode(s), "INVALID_SECRET", `base32 ${s}`);
  }
  for (const s of ["", "AA", "AAAA", "AAAAA", "AAAAAAA", "AAAAAAAA", "MY======"]) {
    assert.equal(base32Decode(s).length, Math.floor(s.replaceAll("=", "").length * 5 / 8), `base32 ${s}`);
  }
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
  const fns = Object.entries(sdk).filter(([, f]) => typeof f === "function" && !isClass(f));
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

test("no JS input makes the linking classes panic", () => {
  const { TesseraDevice, TesseraPortal, newStorageKey } = sdk;
  const T0 = 1_767_225_600;
  // Valid pieces mixed with junk, so that calls get past the first checks.
  const portal = TesseraPortal.generate("Example Bank");
  const { qrText, offer } = portal.createOffer({ account: "anna", now: T0 });
  const device = new TesseraDevice(newStorageKey());
  const params = { qrText, deviceName: "P", passcode: "493817", now: T0 };
  const start = device.startLink(params);
  const accepted = portal.openLinkRequest(start.request).accept(offer, "fresh", T0);
  const row = (out, kind) => out.writes.find((w) => w.kind === kind).row;
  const fin = start.pending.finish(accepted.answer);
  const pending = row(accepted, "pendingLink");
  const conf = portal.confirmLink(pending, fin.checkCode, T0);
  const status = device.statusRequest(fin.state, T0);
  const throwingProxy = new Proxy({}, { get() { throw new Error("trap"); } });
  const opaqueProxy = new Proxy({}, { getPrototypeOf() { throw new Error("trap"); } });
  const values = [undefined, null, true, 0, -1, opaqueProxy, 1.5, NaN, 2 ** 53, T0, Number.MAX_SAFE_INTEGER, "", "x", "\u{1F600}",
    "TS:", "TS:" + "Z".repeat(200), "AwE", "493817", "TOKEN_ALREADY_USED", 10n, Symbol("s"), {}, [], () => {},
    new Uint8Array(0), new Uint8Array(32), new Uint8Array(300).fill(255), throwingProxy,
    qrText, start.request, accepted.answer, status.request, fin.state, device.startLink(params).pending.sealed(),
    offer, pending, row(conf, "device"), row(accepted, "offer"), accepted.writes, { sealed: "!!" },
    { ...row(conf, "device"), sealed: row(conf, "device").sealed.slice(0, 40) }, { ...pending, version: 2 ** 53 },
    { device: row(conf, "device") }, { pending }, { pinnedPortalKey: portal.publicKey() }, "fresh", "seen",
    { ...params }, { ...params, currentState: fin.state }, { ...params, biometrics: "yes" }, { passcode: "493817" },
    { biometricSecret: new Uint8Array(32) }, { account: "a", now: T0, ttl: 600, passcode: { minLen: 16, maxLen: 16 } },
    { account: "a", now: Number.MAX_SAFE_INTEGER }, status.probe, { get sealed() { throw new Error("getter"); } }];
  const objects = () => {
    const s = device.startLink(params);
    return [
      ["TesseraDevice", device],
      ["TesseraPortal", portal],
      ["PendingLink", s.pending],
      ["LinkRequest", portal.openLinkRequest(s.request)],
    ];
  };
  let calls = 0;
  const call = (name, fn) => {
    calls++;
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof Error && e.name === "TesseraError" && typeof e.code === "string", `${name}: ${e}`);
    }
  };
  for (const a of values) {
    call("new TesseraDevice", () => new TesseraDevice(a));
    call("TesseraPortal.generate", () => TesseraPortal.generate(a));
    for (const b of values) call("TesseraPortal.fromSecret", () => TesseraPortal.fromSecret(a, b));
  }
  for (const [cls, obj] of objects()) {
    const methods = Object.getOwnPropertyNames(Object.getPrototypeOf(obj))
      .filter((m) => !["constructor", "free", "__destroy_into_raw"].includes(m) && typeof obj[m] === "function");
    assert.ok(methods.length > 0, cls);
    for (const m of methods) {
      for (const a of values) {
        for (const b of values) {
          // Single-use objects are spent after the first good call: renew them now and then.
          const target = calls % 97 === 0 ? objects().find(([c]) => c === cls)[1] : obj;
          call(`${cls}.${m}`, () => target[m](a, b, values[calls % values.length]));
        }
      }
    }
  }
  assert.ok(calls > 20_000, `${calls}`);
  // Still healthy afterwards.
  const again = device.startLink(params);
  assert.equal(portal.openLinkRequest(again.request).accept(row(accepted, "offer"), "fresh", T0).errorCode,
    "TOKEN_ALREADY_USED");
});

test("classes made only by the SDK cannot be constructed from JS: TesseraError INVALID_STATE", () => {
  for (const name of ["PendingLink", "LinkRequest", "TesseraPortal", "StatusProbe"]) {
    throwsCode(() => new sdk[name](), "INVALID_STATE", `new ${name}()`);
  }
});
