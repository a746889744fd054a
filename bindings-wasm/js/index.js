// @tessera/sdk for browsers and bundlers (Vite, webpack, esbuild, Rollup):
// the wasm-bindgen glue (tessera_wasm.js, an ES module) plus `init`.
// `await init()` fetches tessera_wasm_bg.wasm next to the glue
// (`new URL(..., import.meta.url)`, which bundlers turn into an asset);
// `init(source)` takes the .wasm as a URL, a Response, its bytes or a
// compiled WebAssembly.Module instead. Calling it again does nothing.
import glueInit, { initSync as glueInitSync } from "./tessera_wasm.js";
import { checked } from "./source.js";

export * from "./tessera_wasm.js";

export default async function init(source) {
  await glueInit(checked(source) === undefined ? undefined : { module_or_path: source });
}
export { init };

export function initSync(source) {
  glueInitSync({ module: checked(source) });
}
