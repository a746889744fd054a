// Portal verifier: accept, replay, look-ahead/window defaults, lock-out, with
// the state round-tripping through JSON between every call as a portal would
// store it.
import test from "node:test";
import assert from "node:assert/strict";
import { totpVerify, hotpVerify, hotpResync, hotp, totp } from "@tessera/sdk";
import { throwsCode } from "./helpers.mjs";

const secret = new TextEncoder().encode("12345678901234567890");
const store = (state) => JSON.parse(JSON.stringify(state)); // what a database gives back


test("TOTP: accept, then replay → OTP_REPLAYED", () => {
  const config = { secret, digits: 8 };
  let r = totpVerify(config, "94287082", 59);
  assert.deepEqual(r, {
    accepted: true, matched: 1, drift: 0,
    state: { lastAccepted: 1, nextCounter: 0, consecutiveFailures: 0, locked: false },
  });
  let state = store(r.state);
  r = totpVerify(config, "94287082", 60, state);
  assert.equal(r.accepted, false);
  assert.equal(r.errorCode, "OTP_REPLAYED");
  assert.equal(r.matched, undefined);
  assert.equal(r.drift, 0);
  assert.equal(r.state.consecutiveFailures, 1);
  state = store(r.state);
  // The next step's code is still fine, and resets the failures.
  r = totpVerify(config, totp(secret, 60, 30, 8), 61, state);
  assert.equal(r.accepted, true);
  assert.equal(r.matched, 2);
  assert.equal(r.state.consecutiveFailures, 0);
});

test("TOTP: default window is ±1 step", () => {
  const config = { secret };
  const step = (s) => totp(secret, s * 30);
  let r = totpVerify(config, step(11), 10 * 30);
  assert.equal(r.accepted, true);
  assert.equal(r.drift, 1);
  r = totpVerify(config, step(9), 10 * 30);
  assert.equal(r.drift, -1);
  r = totpVerify(config, step(12), 10 * 30);
  assert.equal(r.accepted, false);
  assert.equal(r.errorCode, "OTP_MISMATCH");
  r = totpVerify({ ...config, window: 2 }, step(12), 10 * 30);
  assert.equal(r.accepted, true);
});

test("five failures → LOCKED_OUT, even for the right code; the lock survives JSON", () => {
  const config = { secret, digits: 8 };
  let state;
  for (let i = 1; i <= 5; i++) {
    const r = totpVerify(config, "00000000", 59, state);
    assert.equal(r.accepted, false);
    assert.equal(r.errorCode, i < 5 ? "OTP_MISMATCH" : "LOCKED_OUT"); // the fifth failure locks, and says so
    assert.equal(r.state.consecutiveFailures, i);
    assert.equal(r.state.locked, i === 5);
    state = store(r.state);
  }
  assert.deepEqual(state, { nextCounter: 0, consecutiveFailures: 5, locked: true });
  const r = totpVerify(config, "94287082", 59, state);
  assert.equal(r.accepted, false);
  assert.equal(r.errorCode, "LOCKED_OUT");
  assert.equal(store(r.state).locked, true);
  // An administrator's reset is a fresh state.
  assert.equal(totpVerify(config, "94287082", 59, { nextCounter: 0, consecutiveFailures: 0, locked: false }).accepted, true);
});

test("timed lock: lockedUntil, then expiry", () => {
  const config = { secret, maxFailures: 2, lockSeconds: 100 };
  let state;
  for (let i = 0; i < 2; i++) state = store(totpVerify(config, "000000", 1000, state).state);
  assert.deepEqual(state, { nextCounter: 0, consecutiveFailures: 2, locked: true, lockedUntil: 1100 });
  assert.equal(totpVerify(config, totp(secret, 1099), 1099, state).errorCode, "LOCKED_OUT");
  const r = totpVerify(config, totp(secret, 1100), 1100, state);
  assert.equal(r.accepted, true);
  assert.deepEqual(r.state.locked, false);
});

test("a wrongly shaped code is refused as INVALID_INPUT and counts as a failure", () => {
  const r = totpVerify({ secret }, "12345", 59);
  assert.equal(r.accepted, false);
  assert.equal(r.errorCode, "INVALID_INPUT");
  assert.equal(r.state.consecutiveFailures, 1);
});

test("HOTP: default look-ahead 10, counter moves past the match, no reuse", () => {
  const config = { secret };
  let state = { nextCounter: 0, consecutiveFailures: 0, locked: false };
  let r = hotpVerify(config, hotp(secret, 11), 0, state);
  assert.equal(r.errorCode, "OTP_MISMATCH"); // 11 is beyond 0 + 10
  state = store(r.state);
  r = hotpVerify(config, hotp(secret, 10), 0, state);
  assert.equal(r.accepted, true);
  assert.equal(r.matched, 10);
  assert.equal(r.drift, 10);
  assert.deepEqual(r.state, { lastAccepted: 10, nextCounter: 11, consecutiveFailures: 0, locked: false });
  state = store(r.state);
  r = hotpVerify(config, hotp(secret, 10), 0, state);
  assert.equal(r.accepted, false); // a used counter is just a mismatch for HOTP
  assert.equal(r.errorCode, "OTP_MISMATCH");
  r = hotpVerify({ ...config, window: 0 }, hotp(secret, 11), 0, store(r.state));
  assert.equal(r.accepted, true);
  assert.equal(r.matched, 11);
  // Starting at a device's counter.
  r = hotpVerify(config, hotp(secret, 1000), 0, { nextCounter: 1000, consecutiveFailures: 0, locked: false, lastAccepted: null, lockedUntil: null });
  assert.equal(r.matched, 1000);
});

test("invalid configuration or state throws", () => {
  throwsCode(() => totpVerify({ secret, digits: 3 }, "123", 0), "INVALID_DIGITS");
  throwsCode(() => totpVerify({ secret, period: 0 }, "123456", 0), "INVALID_TIME");
  throwsCode(() => totpVerify({ secret, algorithm: "md5" }, "123456", 0), "INVALID_ALGORITHM");
  throwsCode(() => totpVerify({}, "123456", 0), "INVALID_INPUT");
  throwsCode(() => totpVerify(null, "123456", 0), "INVALID_INPUT");
  throwsCode(() => totpVerify({ secret, maxFailures: 2 ** 32 }, "123456", 0), "INVALID_INPUT");
  throwsCode(() => totpVerify({ secret, window: -1 }, "123456", 0), "INVALID_INPUT");
  throwsCode(() => totpVerify({ secret }, 123456, 0), "INVALID_INPUT");
  throwsCode(() => totpVerify({ secret }, "123456", -1), "INVALID_INPUT");
  throwsCode(() => hotpVerify({ secret }, "123456", 0, "state"), "INVALID_INPUT");
  // A stored state that lost a field must not silently become "unlocked".
  throwsCode(() => totpVerify({ secret }, "123456", 0, { nextCounter: 0, consecutiveFailures: 5 }), "INVALID_INPUT");
  throwsCode(() => totpVerify({ secret }, "123456", 0, { nextCounter: 0, locked: true }), "INVALID_INPUT");
  throwsCode(() => totpVerify({ secret }, "123456", 0, { consecutiveFailures: 0, locked: false }), "INVALID_INPUT");
  throwsCode(() => totpVerify({ secret }, "123456", 0, { nextCounter: 0, consecutiveFailures: 0, locked: "no" }), "INVALID_INPUT");
  throwsCode(() => totpVerify({ secret }, "123456", 0, { nextCounter: 0.5, consecutiveFailures: 0, locked: false }), "INVALID_INPUT");
});

test("HOTP resync with two consecutive codes (RFC 4226 §7.4)", () => {
  const config = { secret, window: 1 };
  assert.equal(hotpVerify(config, "520489", 0).errorCode, "OTP_MISMATCH"); // counter 9, beyond look-ahead 1
  const r = hotpResync(config, "399871", "520489", 100, 0);
  assert.deepEqual([r.accepted, r.matched, r.state.nextCounter], [true, 9, 10]);
  assert.equal(hotpResync(config, "399871", "755224", 100, 0).errorCode, "OTP_MISMATCH");
  throwsCode(() => hotpResync(config, "399871", "520489", -1, 0), "INVALID_INPUT");
});
