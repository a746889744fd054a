// otpauth:// Key URIs: parse, format, code, and the short-secret policy.
import test from "node:test";
import assert from "node:assert/strict";
import { parseOtpauthUri, formatOtpauthUri, otpauthCode, base32Decode, hotp, totp } from "@tessera/sdk";
import { throwsCode } from "./helpers.mjs";

const GOOGLE = "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example";
const LONG = "otpauth://totp/ACME%20Co:john@example.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30";


test("an 80-bit secret needs allowShortSecret", () => {
  throwsCode(() => parseOtpauthUri(GOOGLE), "SECRET_TOO_SHORT");
  throwsCode(() => parseOtpauthUri(GOOGLE, false), "SECRET_TOO_SHORT");
  throwsCode(() => otpauthCode(GOOGLE, 59), "SECRET_TOO_SHORT");
  const k = parseOtpauthUri(GOOGLE, true);
  assert.deepEqual(
    { ...k, secret: Array.from(k.secret) },
    { type: "totp", period: 30, issuer: "Example", account: "alice@google.com",
      secret: Array.from(base32Decode("JBSWY3DPEHPK3PXP")), algorithm: "sha1", digits: 6 },
  );
  assert.ok(k.secret instanceof Uint8Array);
  assert.equal(otpauthCode(GOOGLE, 59, true), totp(k.secret, 59));
});

test("parse → format → parse round trip (TOTP and HOTP)", () => {
  const k = parseOtpauthUri(LONG);
  assert.equal(k.issuer, "ACME Co");
  assert.equal(k.account, "john@example.com");
  assert.equal(k.secret.length, 20);
  const text = formatOtpauthUri(k);
  // Canonical form: only RFC 3986 unreserved characters stay literal.
  assert.equal(text, LONG.replace("john@", "john%40"));
  assert.deepEqual(parseOtpauthUri(text), k);

  const h = { type: "hotp", counter: 7, account: "bob", secret: new TextEncoder().encode("12345678901234567890"),
    algorithm: "sha256", digits: 8 };
  const hu = formatOtpauthUri(h);
  assert.equal(hu, "otpauth://hotp/bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&algorithm=SHA256&digits=8&counter=7");
  const back = parseOtpauthUri(hu);
  assert.equal(back.type, "hotp");
  assert.equal(back.counter, 7);
  assert.equal(back.period, undefined);
  assert.equal(back.issuer, undefined);
  assert.equal(back.algorithm, "sha256");
  // HOTP: the code at the URI's counter; the time is ignored.
  assert.equal(otpauthCode(hu, 0), hotp(h.secret, 7, 8, "sha256"));
  assert.equal(otpauthCode(hu, 1_700_000_000), otpauthCode(hu, 0));
});

test("format applies defaults and checks what it writes", () => {
  const secret = new Uint8Array(20).fill(1);
  assert.equal(formatOtpauthUri({ type: "totp", account: "a", secret }),
    "otpauth://totp/a?secret=AEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIB&algorithm=SHA1&digits=6&period=30");
  throwsCode(() => formatOtpauthUri({ type: "totp", account: "a", secret, digits: 4 }), "INVALID_DIGITS");
  throwsCode(() => formatOtpauthUri({ type: "totp", account: "a", secret, period: 0 }), "INVALID_TIME");
  throwsCode(() => formatOtpauthUri({ type: "hotp", account: "a", secret }), "INVALID_INPUT"); // counter missing
  throwsCode(() => formatOtpauthUri({ type: "motp", account: "a", secret }), "INVALID_INPUT");
  throwsCode(() => formatOtpauthUri({ type: "totp", secret }), "INVALID_INPUT");
  throwsCode(() => formatOtpauthUri({ type: "totp", account: "a", secret: "AAAA" }), "INVALID_INPUT");
  throwsCode(() => formatOtpauthUri(null), "INVALID_INPUT");
});

test("bad URIs carry their codes", () => {
  throwsCode(() => parseOtpauthUri("https://example.com"), "INVALID_URI");
  throwsCode(() => parseOtpauthUri("otpauth://totp/a?secret=1!"), "INVALID_SECRET");
  // A base32 secret of an impossible length (33 characters: 1 mod 8).
  throwsCode(() => parseOtpauthUri(LONG.replace("HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ", "HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZA")), "INVALID_SECRET");
  throwsCode(() => parseOtpauthUri(LONG.replace("SHA1", "MD5")), "INVALID_ALGORITHM");
  throwsCode(() => parseOtpauthUri(LONG.replace("digits=6", "digits=5")), "INVALID_DIGITS");
  throwsCode(() => parseOtpauthUri(42), "INVALID_INPUT");
  throwsCode(() => parseOtpauthUri(GOOGLE, "yes"), "INVALID_INPUT");
});
