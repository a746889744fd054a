// Shared by index.js (browsers, bundlers) and node.js: what `init` accepts.

/** A source `init` can load, or a TesseraError INVALID_INPUT (thrown before the module exists). */
export function checked(source) {
  const ok = source === undefined || typeof source === "string" || source instanceof URL ||
    source instanceof ArrayBuffer || ArrayBuffer.isView(source) || source instanceof WebAssembly.Module ||
    typeof source?.then === "function" ||
    (typeof Response === "function" && source instanceof Response) ||
    (typeof Request === "function" && source instanceof Request);
  if (ok) return source;
  const e = new Error("init: the source must be the .wasm's URL, path, bytes, Response or WebAssembly.Module");
  e.name = "TesseraError";
  e.code = "INVALID_INPUT";
  throw e;
}
