// @tessera/sdk for Node.js (ES module; `require` works too from Node 20.19,
// which loads ES modules without top-level await synchronously).
// `await init()` reads tessera_wasm_bg.wasm next to this file
// (`new URL(..., import.meta.url)`, no `__dirname`): a bundle of server code
// (esbuild, Rollup, webpack) needs that file copied next to it, or the
// .wasm's bytes, a file path or file: URL passed as `init(source)`.
// Calling it again does nothing.
import { readFile } from "node:fs/promises";
import glueInit from "./tessera_wasm.js";
import { checked } from "./source.js";

// The API and initSync as for browsers; `init` (and the default export) is
// this file's own: a local export wins over `export *`.
export * from "./index.js";

const WASM = "tessera_wasm_bg.wasm";

let loading; // the first call's promise (forgotten if it failed, so a second call can retry)

export default async function init(source) {
  checked(source);
  loading ??= load(source).catch((e) => {
    loading = undefined;
    throw e;
  });
  return loading;
}
export { init };

async function load(source) {
  if (source === undefined) source = new URL(`./${WASM}`, import.meta.url);
  if (typeof source === "string" || (source instanceof URL && source.protocol === "file:")) {
    try {
      source = await readFile(source);
    } catch (e) {
      throw new Error(`@tessera/sdk: cannot read ${source} (${e.code ?? e.message}): ` +
        `a bundle needs ${WASM} copied next to it, or its bytes passed to init()`, { cause: e });
    }
  }
  await glueInit({ module_or_path: source });
}
