// Types of @tessera/sdk (browsers, bundlers and Node.js alike): every
// export of the wasm-bindgen glue, plus `init`. No DOM or Node types are
// needed: the globals `init` accepts (URL, Response, WebAssembly.Module)
// are named only where the project's `lib`/`types` declare them.
export * from "./tessera_wasm.js";

type Global<Name extends string> = typeof globalThis extends { [K in Name]: { prototype: infer T } } ? T : never;
type WasmModule = typeof globalThis extends { WebAssembly: { Module: { prototype: infer T } } } ? T : never;

/** The compiled .wasm, or its bytes. */
export type SyncInitSource = ArrayBuffer | ArrayBufferView | WasmModule;

/**
 * Where `init` finds the .wasm: its bytes or a compiled `WebAssembly.Module`,
 * a `URL`/string (fetched in browsers, read from disk in Node.js) or a
 * `Response` (browsers).
 */
export type InitSource = SyncInitSource | string | Global<"URL"> | Global<"Response">;

/**
 * Loads the WebAssembly module; call (and await) it once before any other
 * call. Without an argument it loads `tessera_wasm_bg.wasm` next to the
 * package's JavaScript. Calling it again does nothing.
 */
export default function init(source?: InitSource | Promise<InitSource>): Promise<void>;
export { init };

/** `init` without waiting: the .wasm's bytes or a compiled module, already in hand. */
export function initSync(source: SyncInitSource): void;
