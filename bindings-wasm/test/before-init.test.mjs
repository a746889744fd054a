// A call before init() (its own process: node --test runs each file in one):
// a TesseraError INVALID_STATE that says what to do, for a function, a
// constructor and a static method; after init() the same calls work.
import test from "node:test";
import assert from "node:assert/strict";
import * as sdk from "@tessera/sdk";

const notLoaded = (e) => {
  // (isTesseraError is a function of the module too: not callable yet.)
  assert.ok(e instanceof Error && e.name === "TesseraError", `not a TesseraError: ${e}`);
  assert.equal(e.code, "INVALID_STATE");
  assert.match(e.message, /await init\(\)/);
  return true;
};

test("before init(): every call is a TesseraError INVALID_STATE, then init() loads and the same calls work", async () => {
  const key = new TextEncoder().encode("12345678901234567890");
  assert.throws(() => sdk.totp(key, 59_000, 30, 8, "sha1"), notLoaded);
  assert.throws(() => sdk.newStorageKey(), notLoaded);
  assert.throws(() => sdk.Portal.generate("Example Bank"), notLoaded);
  assert.throws(() => new sdk.PendingLink(), notLoaded);
  let thrown;
  try { sdk.totp(key, 59_000); } catch (e) { thrown = e; }
  await sdk.init();
  assert.ok(sdk.isTesseraError(thrown), "isTesseraError accepts the error thrown before init");
  assert.equal(sdk.totp(key, 59_000, 30, 8, "sha1"), "94287082"); // RFC 6238 appendix B, T = 59 s
  assert.equal(sdk.newStorageKey().length, 32);
  assert.equal(sdk.Portal.generate("Example Bank").name, "Example Bank");
  await sdk.init(); // again: nothing to do
});
