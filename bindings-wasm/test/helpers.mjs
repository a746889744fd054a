// Shared by the Node tests (this file has no tests of its own).
import assert from "node:assert/strict";

/** Run `fn`, expect a TesseraError with `code`, and return it. */
export function throwsCode(fn, code, what = code) {
  let caught;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `${what}: expected a throw`);
  assert.ok(caught instanceof Error, `${what}: not an Error: ${caught}`);
  assert.equal(caught.name, "TesseraError", `${what}: ${caught}`);
  assert.equal(caught.code, code, `${what}: ${caught.message}`);
  assert.equal(typeof caught.message, "string");
  assert.ok(caught.message.length > 0, `${what}: empty message`);
  return caught;
}

