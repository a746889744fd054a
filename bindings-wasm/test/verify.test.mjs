// Portal verifier: accept, replay, look-ahead/window defaults, lock-out, with
// the state round-tripping through JSON between every call as a portal would
// store it.
import test from "node:test";
import assert from "node:assert/strict";
import { totpVerify, hotpVerify, hotpResync, hotp, totp } from "@tessera/sdk";
import { throwsCode } from "./helpers.mjs";

const secret = new TextEncoder().encode("12345678901234567890");
const store = (state) => JSON.parse(JSON.stringify(state)); // what a database gives back
// Verifiers take unix seconds between 2000 and 3000: T is 2027-01-15, the
// start of TOTP step S.
const T = 1_800_000_000;
const S = T / 30;
const fresh = () => ({ nextCounter: 0, consecutiveFailures: 0, locked: false });


test("TOTP: accept, then replay → OTP_REPLAYED", () => {
  const config = { secret, digits: 8 };
  const code = totp(secret, T + 29, 30, 8);
  let r = totpVerify(config, code, T + 29);
  assert.deepEqual(r, {
    accepted: true, matched: S, drift: 0,
    state: { lastAccepted: S, nextCounter: 0, consecutiveFailures: 0, locked: false },
  });
  let state = store(r.state);
  r = totpVerify(config, code, T + 30, state);
  assert.equal(r.accepted, false);
  assert.equal(r.errorCode, "OTP_REPLAYED");
  assert.equal(r.matched, undefined);
  assert.equal(r.drift, 0);
  assert.equal(r.state.consecutiveFailures, 1);
  state = store(r.state);
  // The next step's code is still fine, and resets the failures.
  r = totpVerify(config, totp(secret, T + 30, 30, 8), T + 31, state);
  assert.equal(r.accepted, true);
  assert.equal(r.matched, S + 1);
  assert.equal(r.state.consecutiveFailures, 0);
});

test("TOTP: default window is ±1 step", () => {
  const config = { secret };
  const step = (s) => totp(secret, s * 30);
  let r = totpVerify(config, step(S + 1), T);
  assert.equal(r.accepted, true);
  assert.equal(r.drift, 1);
  r = totpVerify(config, step(S - 1), T);
  assert.equal(r.drift, -1);
  r = totpVerify(config, step(S + 2), T);
  assert.equal(r.accepted, false);
  assert.equal(r.errorCode, "OTP_MISMATCH");
  r = totpVerify(config, step(S - 2), T);
  assert.equal(r.errorCode, "OTP_MISMATCH");
  r = totpVerify({ ...config, window: 2 }, step(S + 2), T);
  assert.equal(r.accepted, true);
});

test("five failures → LOCKED_OUT, even for the right code; the lock survives JSON", () => {
  const config = { secret, digits: 8 };
  let state;
  const good = totp(secret, T, 30, 8);
  const bad = good === "00000000" ? "00000001" : "00000000";
  for (let i = 1; i <= 5; i++) {
    const r = totpVerify(config, bad, T, state);
    assert.equal(r.accepted, false);
    assert.equal(r.errorCode, i < 5 ? "OTP_MISMATCH" : "LOCKED_OUT"); // the fifth failure locks, and says so
    assert.equal(r.state.consecutiveFailures, i);
    assert.equal(r.state.locked, i === 5);
    state = store(r.state);
  }
  assert.deepEqual(state, { nextCounter: 0, consecutiveFailures: 5, locked: true });
  const r = totpVerify(config, good, T, state);
  assert.equal(r.accepted, false);
  assert.equal(r.errorCode, "LOCKED_OUT");
  assert.equal(store(r.state).locked, true);
  // An administrator's reset is a fresh state.
  assert.equal(totpVerify(config, good, T, fresh()).accepted, true);
});

test("timed lock: lockedUntil, then expiry", () => {
  const config = { secret, maxFailures: 2, lockSeconds: 100 };
  let state;
  const bad = totp(secret, T) === "000000" ? "000001" : "000000";
  for (let i = 0; i < 2; i++) state = store(totpVerify(config, bad, T, state).state);
  assert.deepEqual(state, { nextCounter: 0, consecutiveFailures: 2, locked: true, lockedUntil: T + 100 });
  assert.equal(totpVerify(config, totp(secret, T + 99), T + 99, state).errorCode, "LOCKED_OUT");
  const r = totpVerify(config, totp(secret, T + 100), T + 100, state);
  assert.equal(r.accepted, true);
  assert.deepEqual(r.state.locked, false);
});

test("a wrongly shaped code is refused as INVALID_INPUT and counts as a failure", () => {
  const r = totpVerify({ secret }, "12345", T);
  assert.equal(r.accepted, false);
  assert.equal(r.errorCode, "INVALID_INPUT");
  assert.equal(r.state.consecutiveFailures, 1);
});

test("HOTP: default look-ahead 10, counter moves past the match, no reuse", () => {
  const config = { secret };
  let state = fresh();
  let r = hotpVerify(config, hotp(secret, 11), T, state);
  assert.equal(r.errorCode, "OTP_MISMATCH"); // 11 is beyond 0 + 10
  state = store(r.state);
  r = hotpVerify(config, hotp(secret, 10), T, state);
  assert.equal(r.accepted, true);
  assert.equal(r.matched, 10);
  assert.equal(r.drift, 10);
  assert.deepEqual(r.state, { lastAccepted: 10, nextCounter: 11, consecutiveFailures: 0, locked: false });
  state = store(r.state);
  r = hotpVerify(config, hotp(secret, 10), T, state);
  assert.equal(r.accepted, false); // a used counter is just a mismatch for HOTP
  assert.equal(r.errorCode, "OTP_MISMATCH");
  r = hotpVerify({ ...config, window: 0 }, hotp(secret, 11), T, store(r.state));
  assert.equal(r.accepted, true);
  assert.equal(r.matched, 11);
  // Starting at a device's counter.
  r = hotpVerify(config, hotp(secret, 1000), T, { nextCounter: 1000, consecutiveFailures: 0, locked: false, lastAccepted: null, lockedUntil: null });
  assert.equal(r.matched, 1000);
});

test("invalid configuration or state throws", () => {
  throwsCode(() => totpVerify({ secret, digits: 3 }, "123", T), "INVALID_DIGITS");
  throwsCode(() => totpVerify({ secret, period: 0 }, "123456", T), "INVALID_TIME");
  throwsCode(() => totpVerify({ secret, algorithm: "md5" }, "123456", T), "INVALID_ALGORITHM");
  throwsCode(() => totpVerify({}, "123456", T), "INVALID_INPUT");
  throwsCode(() => totpVerify(null, "123456", T), "INVALID_INPUT");
  throwsCode(() => totpVerify({ secret, maxFailures: 2 ** 32 }, "123456", T), "INVALID_INPUT");
  throwsCode(() => totpVerify({ secret, window: -1 }, "123456", T), "INVALID_INPUT");
  throwsCode(() => totpVerify({ secret }, 123456, T), "INVALID_INPUT");
  throwsCode(() => totpVerify({ secret }, "123456", -1), "INVALID_INPUT");
  throwsCode(() => hotpVerify({ secret }, "123456", T, "state"), "INVALID_INPUT");
  // A stored state that lost a field must not silently become "unlocked".
  throwsCode(() => totpVerify({ secret }, "123456", T, { nextCounter: 0, consecutiveFailures: 5 }), "INVALID_INPUT");
  throwsCode(() => totpVerify({ secret }, "123456", T, { nextCounter: 0, locked: true }), "INVALID_INPUT");
  throwsCode(() => totpVerify({ secret }, "123456", T, { consecutiveFailures: 0, locked: false }), "INVALID_INPUT");
  throwsCode(() => totpVerify({ secret }, "123456", T, { nextCounter: 0, consecutiveFailures: 0, locked: "no" }), "INVALID_INPUT");
  throwsCode(() => totpVerify({ secret }, "123456", T, { nextCounter: 0.5, consecutiveFailures: 0, locked: false }), "INVALID_INPUT");
});

test("HOTP resync with two consecutive codes (RFC 4226 §7.4)", () => {
  const config = { secret, window: 1 };
  assert.equal(hotpVerify(config, "520489", T).errorCode, "OTP_MISMATCH"); // counter 9, beyond look-ahead 1
  const r = hotpResync(config, "399871", "520489", 100, T);
  assert.deepEqual([r.accepted, r.matched, r.state.nextCounter], [true, 9, 10]);
  assert.equal(hotpResync(config, "399871", "755224", 100, T).errorCode, "OTP_MISMATCH");
  throwsCode(() => hotpResync(config, "399871", "520489", -1, T), "INVALID_INPUT");
});

test("HOTP look-ahead boundary: counter + window accepted, counter + window + 1 refused", () => {
  for (const window of [0, 1, 10, 100]) {
    const state = { ...fresh(), nextCounter: 500 };
    const beyond = hotpVerify({ secret, window }, hotp(secret, 500 + window + 1), T, state);
    assert.equal(beyond.errorCode, "OTP_MISMATCH", `window ${window}`);
    const edge = hotpVerify({ secret, window }, hotp(secret, 500 + window), T, store(beyond.state));
    assert.deepEqual([edge.accepted, edge.matched, edge.drift], [true, 500 + window, window], `window ${window}`);
  }
});

test("a time in milliseconds (Date.now()) is INVALID_TIME and counts no failure", () => {
  const config = { secret };
  const ms = 1_767_225_600_000; // 2026-01-01 in milliseconds
  let state = fresh();
  for (let i = 0; i < 5; i++) {
    // Right and wrong codes alike: the time is refused before the code is looked at.
    const code = i % 2 ? "000000" : totp(secret, ms);
    const r = totpVerify(config, code, ms, state);
    assert.equal(r.accepted, false);
    assert.equal(r.errorCode, "INVALID_TIME");
    assert.deepEqual(r.state, fresh());
    state = store(r.state);
  }
  assert.equal(totpVerify(config, "000000", Date.now(), state).errorCode, "INVALID_TIME");
  const r = totpVerify(config, totp(secret, T), T, state);
  assert.deepEqual([r.accepted, r.matched], [true, S]);
  // Every verifier, every time outside 2000..3000; a timed lock is not ended by it.
  const locked = { nextCounter: 0, consecutiveFailures: 5, locked: true, lockedUntil: T + 100 };
  for (const t of [0, 59, 946_684_799, 32_503_680_000, ms, Number.MAX_SAFE_INTEGER]) {
    for (const st of [fresh(), locked]) {
      for (const res of [totpVerify(config, "000000", t, st), hotpVerify(config, hotp(secret, 0), t, st),
        hotpResync(config, hotp(secret, 0), hotp(secret, 1), 10, t, st)]) {
        assert.equal(res.errorCode, "INVALID_TIME", `time ${t}`);
        assert.deepEqual(res.state, st, `time ${t}`);
      }
    }
  }
  assert.equal(totpVerify(config, totp(secret, T + 99), T + 99, locked).errorCode, "LOCKED_OUT");
  // The bounds themselves are fine.
  assert.equal(totpVerify(config, totp(secret, 946_684_800), 946_684_800).accepted, true);
  assert.equal(totpVerify(config, totp(secret, 32_503_679_999), 32_503_679_999).accepted, true);
});

test("HOTP at the last counter JavaScript can store (2^53-1): accepted once, then a replay is OTP_REPLAYED", () => {
  const config = { secret };
  const last = Number.MAX_SAFE_INTEGER;
  let r = hotpVerify(config, hotp(secret, last), T, { ...fresh(), nextCounter: last - 2 });
  assert.deepEqual([r.accepted, r.matched, r.drift], [true, last, 2]);
  assert.deepEqual(r.state, { lastAccepted: last, nextCounter: last, consecutiveFailures: 0, locked: false });
  const spent = store(r.state);
  r = hotpVerify(config, hotp(secret, last), T, spent);
  assert.deepEqual([r.accepted, r.errorCode, r.state.consecutiveFailures], [false, "OTP_REPLAYED", 1]);
  let state = store(r.state);
  for (let i = 2; i <= 5; i++) {
    r = hotpVerify(config, hotp(secret, last), T, state);
    assert.equal(r.errorCode, i < 5 ? "OTP_REPLAYED" : "LOCKED_OUT");
    state = store(r.state);
  }
  // Nothing else is accepted either, and resynchronisation cannot revive it.
  assert.equal(hotpVerify(config, hotp(secret, last - 1), T, spent).errorCode, "OTP_MISMATCH");
  assert.equal(hotpVerify(config, hotp(secret, 0), T, spent).errorCode, "OTP_MISMATCH");
  assert.equal(hotpResync(config, hotp(secret, last - 1), hotp(secret, last), 1000, T, spent).errorCode, "OTP_MISMATCH");
  assert.equal(hotpResync(config, hotp(secret, 0), hotp(secret, 1), 1000, T, spent).errorCode, "OTP_MISMATCH");
});
