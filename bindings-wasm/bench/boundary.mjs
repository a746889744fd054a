// Per-call cost through the wasm boundary, for scripts/bench-boundary.sh:
// the same two calls as host/examples/boundary.rs, timed the same way
// (warm-up, then the mean of N calls). Prints `node <call> <ns per call>`.
import * as sdk from "../pkg/node.js";

await sdk.init();

function perCall(n, f) {
  for (let i = 0; i < n / 10; i++) f();
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) f();
  return Number(process.hrtime.bigint() - t) / n;
}

const secret = new TextEncoder().encode("12345678901234567890");
const now = 1_800_000_000_000; // epoch ms
const code = sdk.totp(secret, now, 30, 6, "sha1");
const one = new Uint8Array([1]);
let sink = 0;
const trivial = perCall(1_000_000, () => { sink += sdk.base32Encode(one).length; });
const verify = perCall(100_000, () => { sink += sdk.verifyTotp({ secret }, undefined, code, now).drift; });
console.log(`node trivial-call(base32Encode 1 byte) ${trivial.toFixed(0)} ns`);
console.log(`node totp-verification ${verify.toFixed(0)} ns`);
if (sink === -1) console.log("");
