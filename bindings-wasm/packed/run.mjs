#!/usr/bin/env node
// The npm package as users get it: `npm pack`, then projects that install
// the tarball (`npm install ../tessera-sdk-0.1.0.tgz`) and use it.
//   1. the tarball holds exactly FILES (one .wasm; no tests, no sources);
//   2. a Node ESM project: packed/shared.ts type-checked by tsc (strict,
//      no DOM or Node types, no skipLibCheck), compiled and run:
//      every TOTP row of vectors/otp.json, a link flow, `using`;
//      `require("@tessera/sdk")` from a .cjs file computes the same code;
//   3. the same Node script bundled by esbuild (platform node, ESM) and run
//      from another folder with the .wasm copied next to the bundle (and,
//      as a control, without it: the error says what to do);
//   4. a Vite project: the same shared.ts type-checked for the browser
//      (DOM, moduleResolution bundler), `vite build` (production), the
//      dist/ served on 127.0.0.1 and loaded in headless Chromium, which must
//      report the same results.
// Projects live in ${TESSERA_CACHE:-~/.cache/tessera}/npm-packed (kept
// between runs: only the tarball is installed again). Tools come from the
// tool cache (scripts/setup.sh): typescript and playwright-core from npm/,
// vite and esbuild from npm-web/. Exits 0 after "PASS" lines, or 1 with the reason.
//
//   node bindings-wasm/packed/run.mjs      (after bindings-wasm/build.sh)
import { execFile, execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync }
  from "node:fs";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { homedir, tmpdir } from "node:os";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const FILES = ["README.md", "package.json", "pkg/LICENSE-APACHE", "pkg/LICENSE-MIT", "pkg/index.d.ts", "pkg/index.js",
  "pkg/node.js", "pkg/source.js", "pkg/tessera_wasm.d.ts", "pkg/tessera_wasm.js", "pkg/tessera_wasm_bg.wasm"];
const TARBALL = "tessera-sdk-0.1.0.tgz";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const TIMEOUT_MS = 30_000;

const HERE = fileURLToPath(new URL(".", import.meta.url));
const PACKAGE = resolve(HERE, "..");
const CACHE = process.env.TESSERA_CACHE || join(homedir(), ".cache/tessera");
const WORK = join(CACHE, "npm-packed");
const TOOLS = join(CACHE, "npm"); // typescript, playwright-core
const WEB_TOOLS = join(CACHE, "npm-web"); // vite, esbuild
const tool = (name, dir = TOOLS) => {
  try {
    return createRequire(dir + sep).resolve(name);
  } catch (e) {
    throw new Error(`${name} not found under ${dir} (run scripts/setup.sh): ${e.message}`);
  }
};
const TSC = tool("typescript/bin/tsc");
const esbuild = createRequire(WEB_TOOLS + sep)(tool("esbuild", WEB_TOOLS));
const TOTP = JSON.parse(readFileSync(resolve(PACKAGE, "../vectors/otp.json"), "utf8")).totp;

const run = (cmd, args, opts = {}) => {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: "pipe", timeout: 120_000, ...opts });
  } catch (e) {
    throw new Error(`${[cmd, ...args].join(" ")} failed in ${opts.cwd ?? process.cwd()}:\n${e.stdout ?? ""}${e.stderr ?? e.message}`);
  }
};
const node = (args, opts) => run(process.execPath, args, opts);
const npm = (args, cwd) => run("npm", [...args, "--no-audit", "--no-fund", "--offline", "--loglevel=error"], { cwd });
/** tsc -p on a project; both projects are checked at once. */
const tsc = (cwd) => new Promise((ok, fail) => execFile(process.execPath, [TSC, "-p", cwd], { cwd, timeout: 300_000 },
  (e, stdout, stderr) => (e ? fail(new Error(`tsc -p ${cwd}:\n${stdout}${stderr}`)) : ok())));
const times = [];
const step = (name, f) => {
  const t0 = Date.now();
  const out = f();
  times.push(`${name} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return out;
};

/** What shared.ts must report, from the vectors file and the API's contract. */
function checkReport(where, r) {
  const want = { totpChecked: TOTP.length, badDigits: "INVALID_DIGITS", deviceName: "Anna's laptop" };
  for (const [k, v] of Object.entries(want)) {
    if (r?.[k] !== v) throw new Error(`${where}: ${k} is ${JSON.stringify(r?.[k])}, expected ${JSON.stringify(v)}`);
  }
  if (!/^\d{6}$/.test(r.checkCode)) throw new Error(`${where}: check code ${JSON.stringify(r.checkCode)}`);
  if (!/null pointer passed to rust/.test(r.afterFree)) {
    throw new Error(`${where}: a call after the \`using\` block gave ${JSON.stringify(r.afterFree)}, not a freed object`);
  }
}

/** A project folder with package.json and the tarball installed afresh. */
function project(name, pkg) {
  const dir = join(WORK, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name, private: true, ...pkg }, null, 2));
  rmSync(join(dir, "node_modules/@tessera"), { recursive: true, force: true });
  rmSync(join(dir, "package-lock.json"), { force: true });
  npm(["install", "--no-save", `../${TARBALL}`], dir);
  return dir;
}

function pack() {
  mkdirSync(WORK, { recursive: true });
  rmSync(join(WORK, TARBALL), { force: true });
  const [info] = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", WORK], { cwd: PACKAGE }));
  const files = info.files.map((f) => f.path).sort();
  if (JSON.stringify(files) !== JSON.stringify(FILES)) {
    throw new Error(`the tarball holds ${JSON.stringify(files)}, expected ${JSON.stringify(FILES)}`);
  }
  if (files.filter((f) => f.endsWith(".wasm")).length !== 1) throw new Error("not exactly one .wasm");
  if (info.filename !== TARBALL) throw new Error(`npm pack wrote ${info.filename}, expected ${TARBALL}`);
  console.log(`PASS npm pack: ${TARBALL}, ${info.size} bytes packed, ${info.unpackedSize} unpacked: ${files.join(", ")}`);
}

function nodeSetup() {
  const dir = project("node-app", { type: "module" });
  copyFileSync(join(HERE, "shared.ts"), join(dir, "shared.ts"));
  writeFileSync(join(dir, "otp.json"), JSON.stringify(TOTP));
  // The script around it is plain JS: shared.ts is type-checked with no
  // environment types at all (neither DOM nor @types/node).
  writeFileSync(join(dir, "main.mjs"), `import { readFileSync } from "node:fs";
import { run } from "./dist/shared.js";
console.log(JSON.stringify(await run(JSON.parse(readFileSync(process.argv[2], "utf8")))));
`);
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
    compilerOptions: { strict: true, module: "nodenext", target: "es2022", outDir: "dist",
      lib: ["es2022", "esnext.disposable"], types: [] },
    files: ["shared.ts"],
  }, null, 2));
  rmSync(join(dir, "dist"), { recursive: true, force: true });
  return dir;
}

function nodeRun(dir) {
  const report = JSON.parse(step("node: run", () => node(["main.mjs", "otp.json"], { cwd: dir })));
  checkReport("Node ESM project", report);

  const v = TOTP[0];
  writeFileSync(join(dir, "check.cjs"), `const { init, totp } = require("@tessera/sdk");
init().then(() => console.log(totp(Buffer.from(${JSON.stringify(v.secret_hex)}, "hex"), ${v.time * 1000}, ${v.period},
  ${v.digits}, ${JSON.stringify(v.algorithm)})));
`);
  const fromRequire = node(["--no-warnings", "check.cjs"], { cwd: dir }).trim();
  if (fromRequire !== v.code) throw new Error(`require("@tessera/sdk"): TOTP ${fromRequire}, expected ${v.code}`);
  console.log(`PASS Node ESM project (tarball): shared.ts type-checked (no DOM or Node types, no skipLibCheck) and run: ` +
    `${report.totpChecked} TOTP vectors, a link flow (check code ${report.checkCode}), INVALID_DIGITS, a freed ` +
    `object after \`using\`; require("@tessera/sdk") from CommonJS computes ${fromRequire}`);
  return dir;
}

function esbuildBundle(appDir) {
  const out = mkdtempSync(join(tmpdir(), "tessera-esbuild-"));
  try {
    const bundle = join(out, "server.mjs");
    step("esbuild", () => esbuild.buildSync({ entryPoints: [join(appDir, "main.mjs")], bundle: true, platform: "node",
      format: "esm", outfile: bundle, logLevel: "warning", absWorkingDir: appDir }));
    if (/(from|import\(|require\()\s*["']@tessera\/sdk/.test(readFileSync(bundle, "utf8"))) throw new Error("the bundle still imports @tessera/sdk");
    writeFileSync(join(out, "otp.json"), JSON.stringify(TOTP));
    const runBundle = () => node([bundle, "otp.json"], { cwd: out });
    // Without the .wasm next to it: a clear error, naming the file to copy.
    let missing = "";
    try {
      runBundle();
    } catch (e) {
      missing = e.message;
    }
    if (!/cannot read .*tessera_wasm_bg\.wasm.*a bundle needs tessera_wasm_bg\.wasm copied next to it/.test(missing)) {
      throw new Error(`the bundle without its .wasm: ${missing || "no error"}`);
    }
    copyFileSync(join(appDir, "node_modules/@tessera/sdk/pkg/tessera_wasm_bg.wasm"), join(out, "tessera_wasm_bg.wasm"));
    const report = JSON.parse(runBundle());
    checkReport("esbuild bundle", report);
    console.log(`PASS esbuild bundle (platform node, ESM) run from ${out} with tessera_wasm_bg.wasm copied next to it: ` +
      `${report.totpChecked} TOTP vectors and the link flow; without the .wasm it says which file to copy`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function viteSetup() {
  const dir = project("vite-app", { type: "module" });
  copyFileSync(join(HERE, "shared.ts"), join(dir, "shared.ts"));
  writeFileSync(join(dir, "otp.json"), JSON.stringify(TOTP));
  writeFileSync(join(dir, "index.html"), `<!doctype html>
<html><head><meta charset="utf-8"><title>Tessera + Vite</title></head>
<body><pre id="result" data-state="running">running</pre><script type="module" src="/main.ts"></script></body></html>
`);
  writeFileSync(join(dir, "main.ts"), `import { run, type TotpVector } from "./shared";
import vectors from "./otp.json";
const out = document.getElementById("result")!;
run(vectors as TotpVector[]).then(
  (report) => { out.textContent = JSON.stringify(report); out.dataset.state = "done"; },
  (e: unknown) => { out.textContent = String(e); out.dataset.state = "failed"; });
`);
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
    compilerOptions: { strict: true, module: "esnext", moduleResolution: "bundler", target: "es2022", noEmit: true,
      resolveJsonModule: true, lib: ["es2022", "esnext.disposable", "dom"], types: [] },
    files: ["shared.ts", "main.ts"],
  }, null, 2));
  return dir;
}

async function viteRun(dir) {

  const { build } = await import(pathToFileURL(tool("vite", WEB_TOOLS)).href);
  rmSync(join(dir, "dist"), { recursive: true, force: true });
  const t0 = Date.now();
  await build({ root: dir, logLevel: "warn", configFile: false, build: { outDir: join(dir, "dist") } });
  times.push(`vite build ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const assets = readdirSync(join(dir, "dist/assets"));
  const wasm = assets.filter((f) => f.endsWith(".wasm"));
  if (wasm.length !== 1) throw new Error(`vite build emitted ${JSON.stringify(assets)}: expected one .wasm`);

  const served = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://x").pathname;
    if (url === "/favicon.ico") {
      res.writeHead(204).end(); // Chromium asks for it; the app has none
      return;
    }
    const path = resolve(dir, "dist", `.${decodeURIComponent(url)}`);
    const file = path.endsWith(sep) || path === resolve(dir, "dist") ? join(path, "index.html") : path;
    if (!file.startsWith(resolve(dir, "dist") + sep) || !existsSync(file)) {
      served.push(`404 ${url}`);
      res.writeHead(404).end();
      return;
    }
    const type = { ".html": "text/html", ".js": "text/javascript", ".wasm": "application/wasm" }[extname(file)];
    served.push(file.slice(file.lastIndexOf(sep) + 1));
    res.writeHead(200, { "content-type": type ?? "application/octet-stream" }).end(readFileSync(file));
  });
  await new Promise((ok, fail) => server.once("error", fail).listen(0, "127.0.0.1", ok));
  const profile = mkdtempSync(join(tmpdir(), "tessera-chromium-"));
  let context;
  try {
    const { chromium } = createRequire(TOOLS + sep)("playwright-core");
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, timeout: TIMEOUT_MS,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const problems = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
    await page.goto(`http://127.0.0.1:${server.address().port}/`, { timeout: TIMEOUT_MS });
    await page.waitForSelector('#result:is([data-state="done"], [data-state="failed"])', { timeout: TIMEOUT_MS });
    const text = await page.textContent("#result");
    if ((await page.getAttribute("#result", "data-state")) !== "done") throw new Error(`the Vite page failed: ${text}`);
    if (problems.length) throw new Error(problems.join("\n"));
    const report = JSON.parse(text);
    checkReport("Vite production build in Chromium", report);
    if (!served.includes(wasm[0])) throw new Error(`the page did not load ${wasm[0]} (served: ${served.join(", ")})`);
    console.log(`PASS Vite project (tarball): shared.ts type-checked (DOM, moduleResolution bundler), \`vite build\`, ` +
      `dist/ in headless Chromium: ${report.totpChecked} TOTP vectors, the link flow, a freed object after \`using\`; ` +
      `the .wasm loaded as the asset ${wasm[0]}`);
  } finally {
    if (context) await context.close().catch(() => {});
    server.closeAllConnections();
    await new Promise((ok) => server.close(ok));
    rmSync(profile, { recursive: true, force: true });
  }
}

try {
  if (!existsSync(join(PACKAGE, "pkg/tessera_wasm_bg.wasm"))) throw new Error("run bindings-wasm/build.sh first");
  step("npm pack", pack);
  const [nodeDir, viteDir] = step("npm install (2 projects)", () => [nodeSetup(), viteSetup()]);
  const t0 = Date.now();
  await Promise.all([tsc(nodeDir), tsc(viteDir)]);
  times.push(`tsc (2 projects at once) ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  step("node project", () => nodeRun(nodeDir));
  esbuildBundle(nodeDir);
  await viteRun(viteDir);
  console.log(`(times: ${times.join(", ")})`);
} catch (e) {
  console.error(`FAIL packed: ${e.message}`);
  process.exitCode = 1;
}
