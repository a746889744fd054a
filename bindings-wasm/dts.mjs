// Post-processes the glue's declarations (pkg/tessera_wasm.d.ts), run by
// build.sh:
//   1. drops wasm-bindgen's init section (InitInput, InitOutput, initSync,
//      the default export): it names DOM types (RequestInfo, Response,
//      BufferSource), so a Node.js project without `lib: ["dom"]` failed to
//      type-check it, and it exposes the module's internals; pkg/index.d.ts
//      declares `init`/`initSync` instead;
//   2. makes trailing `x: T | undefined` parameters optional (`x?: T`):
//      `totp(secret, Date.now())` type-checks as it runs.
// Fails when the glue's shape is not the one expected.
import { readFileSync, writeFileSync } from "node:fs";

const file = process.argv[2];
let text = readFileSync(file, "utf8");
const cut = text.indexOf("\nexport type InitInput =");
if (cut < 0 || !/export default function __wbg_init/.test(text.slice(cut))) {
  throw new Error(`${file}: no wasm-bindgen init section (export type InitInput … __wbg_init)`);
}
text = text.slice(0, cut + 1);

let optional = 0;
text = text.replace(/^(\s*(?:export function |static )?\w+\()([^)]*)(\): )/gm, (all, head, params, tail) => {
  const list = params.split(", ");
  for (let i = list.length - 1; i >= 0; i--) {
    const m = list[i].match(/^(\w+): (.+) \| undefined$/);
    if (!m) break;
    list[i] = `${m[1]}?: ${m[2]}`;
    optional++;
  }
  return head + list.join(", ") + tail;
});
if (optional === 0) throw new Error(`${file}: no optional trailing parameter found (expected totp's)`);
writeFileSync(file, text);
console.log(`${file}: init section dropped, ${optional} trailing parameters made optional`);
