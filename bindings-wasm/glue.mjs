// Patches the wasm-bindgen glue (pkg/tessera_wasm.js) after it is generated
// (build.sh): until `init()`/`initSync()` has loaded the module, every call
// throws a TesseraError with code INVALID_STATE that says so, instead of the
// glue's "TypeError: Cannot read properties of undefined". Each pattern
// must occur exactly as many times as expected, or the build fails (a new
// wasm-bindgen version that changed the glue must be looked at).
import { readFileSync, writeFileSync } from "node:fs";

const file = process.argv[2];
let js = readFileSync(file, "utf8");

const NOT_LOADED = `
// Added by bindings-wasm/glue.mjs: what \`wasm\` is until init() has loaded the module.
const NOT_LOADED = new Proxy({}, {
    get() {
        const e = new Error("@tessera/sdk is not loaded yet: await init() (or call initSync()) before any other call");
        e.name = "TesseraError";
        e.code = "INVALID_STATE";
        throw e;
    },
});
let wasmModule, wasmInstance, wasm = NOT_LOADED;`;

const patches = [
  ["let wasmModule, wasmInstance, wasm;", NOT_LOADED, 1],
  ["if (wasm !== undefined) return wasm;", "if (wasm !== NOT_LOADED) return wasm;", 2],
];
for (const [from, to, count] of patches) {
  const found = js.split(from).length - 1;
  if (found !== count) {
    console.error(`glue.mjs: expected ${count} × ${JSON.stringify(from)} in ${file}, found ${found}`);
    process.exit(1);
  }
  js = js.split(from).join(to);
}
if (/\bwasm === undefined\b|\bwasm !== undefined\b/.test(js)) {
  console.error(`glue.mjs: ${file} still compares wasm with undefined`);
  process.exit(1);
}
writeFileSync(file, js);
