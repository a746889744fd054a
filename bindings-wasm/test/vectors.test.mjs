// Every row of the shared known-answer vectors (vectors/otp.json) through the
// package, loaded by its own name as a user would (package.json "exports").
// Times in the file are Unix seconds; the API takes epoch milliseconds.
import test from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import init, { hotp, totp, ocra } from "@tessera/sdk";

await init();

const vectors = JSON.parse(readFileSync(new URL("../../vectors/otp.json", import.meta.url), "utf8"));
const hex = (h) => Uint8Array.from(Buffer.from(h, "hex"));

test("vectors file has every section", () => {
  for (const section of ["hotp", "totp", "ocra"]) {
    assert.ok(Array.isArray(vectors[section]) && vectors[section].length > 0, section);
  }
});

test("HOTP (RFC 4226)", () => {
  for (const v of vectors.hotp) {
    assert.equal(hotp(hex(v.secret_hex), v.counter, v.digits, v.algorithm), v.code, JSON.stringify(v));
  }
});

test("TOTP (RFC 6238)", () => {
  for (const v of vectors.totp) {
    assert.equal(totp(hex(v.secret_hex), v.time * 1000, v.period, v.digits, v.algorithm), v.code, JSON.stringify(v));
  }
});

test("OCRA (RFC 6287)", () => {
  const known = new Set(["suite", "key_hex", "code", "counter", "question", "password", "time"]);
  for (const v of vectors.ocra) {
    for (const k of Object.keys(v)) assert.ok(known.has(k), `unhandled vector field ${k}`);
    const params = { counter: v.counter, question: v.question, password: v.password,
      time: v.time === undefined ? undefined : v.time * 1000 };
    assert.equal(ocra(v.suite, hex(v.key_hex), params), v.code, JSON.stringify(v));
  }
});
