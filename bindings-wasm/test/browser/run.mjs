#!/usr/bin/env node
// Browser check of the web build (bindings-wasm/pkg/web): serves bindings-wasm/
// on 127.0.0.1 (ephemeral port), opens test/browser/index.html in headless
// Debian Chromium through playwright-core, and checks the TOTP the page
// computed plus the `.code` of an error thrown in the browser.
//
//   node bindings-wasm/test/browser/run.mjs      (after bindings-wasm/build.sh)
//
// Exits 0 and prints a "PASS" line, or exits 1 with the reason. Tools come
// from ${TESSERA_CACHE:-~/.cache/tessera}/npm (scripts/setup.sh).
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, extname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const EXPECTED_TOTP = "94287082";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const STEP_TIMEOUT_MS = 30_000;
const OVERALL_TIMEOUT_MS = 120_000;

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "../.."); // bindings-wasm/
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".ts": "text/plain; charset=utf-8",
};

// `node --test bindings-wasm/test/` runs every .mjs under test/, this file
// included: there it only reports itself as skipped (test.sh runs it directly).
if (process.env.NODE_TEST_CONTEXT) {
  const { test } = await import("node:test");
  test("headless Chromium check", { skip: "run directly: node bindings-wasm/test/browser/run.mjs" }, () => {});
} else {
  process.exitCode = await main();
}

async function main() {
  const watchdog = setTimeout(() => {
    console.error(`FAIL browser: no result after ${OVERALL_TIMEOUT_MS / 1000} s`);
    process.exit(1);
  }, OVERALL_TIMEOUT_MS);
  watchdog.unref();

  let server;
  let context;
  let profile;
  try {
    if (!existsSync(join(ROOT, "pkg/web/tessera_wasm_bg.wasm"))) {
      throw new Error("bindings-wasm/pkg/web is missing: run bindings-wasm/build.sh first");
    }
    const cache = process.env.TESSERA_CACHE || join(homedir(), ".cache/tessera");
    let chromium;
    try {
      ({ chromium } = createRequire(join(cache, "npm") + sep)("playwright-core"));
    } catch (e) {
      throw new Error(`playwright-core not found under ${cache}/npm (run scripts/setup.sh): ${e.message}`);
    }

    const served = [];
    server = createServer((req, res) => serve(req, res, served));
    await new Promise((ok, fail) => server.once("error", fail).listen(0, "127.0.0.1", ok));
    const base = `http://127.0.0.1:${server.address().port}`;

    profile = mkdtempSync(join(tmpdir(), "tessera-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: STEP_TIMEOUT_MS,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    const page = context.pages()[0] ?? (await context.newPage());
    const problems = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
    });

    await page.goto(`${base}/test/browser/index.html`, { timeout: STEP_TIMEOUT_MS });
    await page.waitForSelector('#status:is([data-state="done"], [data-state="failed"])', { timeout: STEP_TIMEOUT_MS });
    const status = await page.textContent("#status");
    if (status !== "done") throw new Error(`the page failed: ${status}`);

    const computed = await page.textContent("#totp");
    if (computed !== EXPECTED_TOTP) throw new Error(`TOTP in the page is ${computed}, expected ${EXPECTED_TOTP}`);

    const pageError = JSON.parse(await page.textContent("#error"));
    if (!(pageError.isError && pageError.name === "TesseraError" && pageError.code === "INVALID_DIGITS")) {
      throw new Error(`unexpected error in the page: ${JSON.stringify(pageError)}`);
    }
    // The same module instance, driven from the test: a bad number.
    const thrown = await page.evaluate(async () => {
      const m = await import("/pkg/web/tessera_wasm.js");
      try {
        m.totp(new Uint8Array(20), -1);
        return null;
      } catch (e) {
        return { isError: e instanceof Error, name: e.name, code: e.code };
      }
    });
    if (!(thrown && thrown.isError && thrown.name === "TesseraError" && thrown.code === "INVALID_INPUT")) {
      throw new Error(`unexpected error from page.evaluate: ${JSON.stringify(thrown)}`);
    }

    const wasm = served.find((s) => s.path.endsWith(".wasm"));
    if (!wasm || wasm.type !== "application/wasm") throw new Error(`the .wasm was not served as application/wasm`);
    if (problems.length) throw new Error(problems.join("\n"));

    const agent = await page.evaluate(() => navigator.userAgent.match(/(?:Headless)?Chrome\/[\d.]+/)?.[0]);
    console.log(`PASS browser: ${agent} computed TOTP ${computed}; thrown errors carry .code ` +
      `(${pageError.code}, ${thrown.code}); ${served.length} files served from ${base}`);
    return 0;
  } catch (e) {
    console.error(`FAIL browser: ${e.message}`);
    return 1;
  } finally {
    clearTimeout(watchdog);
    if (context) await withTimeout(context.close(), 10_000).catch(() => {});
    if (server) {
      server.closeAllConnections();
      await new Promise((ok) => server.close(ok));
    }
    if (profile) rmSync(profile, { recursive: true, force: true });
  }
}

// Static files under bindings-wasm/ only, GET/HEAD only.
function serve(req, res, served) {
  let path;
  try {
    path = decodeURIComponent(new URL(req.url, "http://x").pathname);
  } catch {
    path = "\0";
  }
  const file = resolve(ROOT, "." + path);
  const inside = file === ROOT || file.startsWith(ROOT + sep);
  if ((req.method !== "GET" && req.method !== "HEAD") || !inside || path.includes("\0")
      || !existsSync(file) || !statSync(file).isFile()) {
    res.writeHead(404, { "Content-Type": "text/plain" }).end("not found");
    return;
  }
  const type = TYPES[extname(file)] ?? "application/octet-stream";
  served.push({ path: relative(ROOT, file), type });
  res.writeHead(200, { "Content-Type": type, "Cache-Control": "no-store" });
  res.end(req.method === "HEAD" ? undefined : readFileSync(file));
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, fail) => { timer = setTimeout(() => fail(new Error("timeout")), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
