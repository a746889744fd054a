#!/usr/bin/env node
// Browser checks of the package in the browser (bindings-wasm/pkg/index.js): serves bindings-wasm/
// (and vectors/scenarios/, with a generated index.json) on 127.0.0.1
// (ephemeral port) and drives headless Debian Chromium through playwright-core:
//   1. test/browser/index.html: the TOTP the page computed (a Date as the
//      clock) and an error thrown in the browser (name, code, isTesseraError);
//   2. test/browser/scenarios.html: every vectors/scenarios/*.json run in the
//      page by the same runner module as in Node (test/scenarios.mjs); the
//      page reports its counts (files, steps, failures) back here;
//   3. test/browser/link.html: a portal page showing a link QR code (qrSvg).
//      The QR element is screenshotted, decoded in Node (PNG via node:zlib,
//      then jsQR), compared with the text the page shows, and scanned by a
//      device of the Node build pinned to the key the page shows;
//   4. test/browser/approve.html: a portal page (its own in-page store) where a
//      device of the Node build links (link QR code decoded from a screenshot,
//      request and answer through page.evaluate, check code typed into the
//      page), then approves a payment: the transaction challenge QR code is
//      decoded from a screenshot, the device reads and answers it, and the
//      code is typed into the page: a wrong code first (INVALID_ANSWER), then
//      the right one (accepted).
//
//   node bindings-wasm/test/browser/run.mjs      (after bindings-wasm/build.sh)
//
// Exits 0 and prints "PASS" lines, or exits 1 with the reason. Tools come
// from ${TESSERA_CACHE:-~/.cache/tessera}/npm (scripts/setup.sh).
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, extname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { inflateSync } from "node:zlib";

const EXPECTED_TOTP = "94287082";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const STEP_TIMEOUT_MS = 30_000;
const OVERALL_TIMEOUT_MS = 180_000;

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "../.."); // bindings-wasm/
const SCENARIOS = resolve(ROOT, "../vectors/scenarios"); // served at /vectors/scenarios/
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
  test("headless Chromium checks", { skip: "run directly: node bindings-wasm/test/browser/run.mjs" }, () => {});
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
    if (!existsSync(join(ROOT, "pkg/tessera_wasm_bg.wasm"))) {
      throw new Error("bindings-wasm/pkg is missing: run bindings-wasm/build.sh first");
    }
    const cache = process.env.TESSERA_CACHE || join(homedir(), ".cache/tessera");
    const tool = (name) => {
      try {
        return createRequire(join(cache, "npm") + sep)(name);
      } catch (e) {
        throw new Error(`${name} not found under ${cache}/npm (run scripts/setup.sh): ${e.message}`);
      }
    };
    const { chromium } = tool("playwright-core");
    const jsQR = tool("jsqr");

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
    await checkOtpPage(page, base, served);
    await checkScenarioPage(await context.newPage(), base);
    await checkLinkPage(await context.newPage(), base, jsQR);
    await checkApprovePage(await context.newPage(), base, jsQR);
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

/** Page 1: a TOTP computed in the page and errors thrown in the browser. */
async function checkOtpPage(page, base, served) {
  const problems = watch(page);
  await page.goto(`${base}/test/browser/index.html`, { timeout: STEP_TIMEOUT_MS });
  await page.waitForSelector('#status:is([data-state="done"], [data-state="failed"])', { timeout: STEP_TIMEOUT_MS });
  const status = await page.textContent("#status");
  if (status !== "done") throw new Error(`the page failed: ${status}`);

  const computed = await page.textContent("#totp");
  if (computed !== EXPECTED_TOTP) throw new Error(`TOTP in the page is ${computed}, expected ${EXPECTED_TOTP}`);

  const pageError = JSON.parse(await page.textContent("#error"));
  if (!(pageError.isError && pageError.guard && pageError.name === "TesseraError" && pageError.code === "INVALID_DIGITS")) {
    throw new Error(`unexpected error in the page: ${JSON.stringify(pageError)}`);
  }
  // The same module instance, driven from the test: a bad number.
  const thrown = await page.evaluate(async () => {
    const m = await import("/pkg/index.js");
    try {
      m.totp(new Uint8Array(20), "59000");
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
}

/** Page 2: every scenario file, run in the page by test/scenarios.mjs over pkg/index.js. */
async function checkScenarioPage(page, base) {
  const problems = watch(page);
  await page.goto(`${base}/test/browser/scenarios.html`, { timeout: STEP_TIMEOUT_MS });
  await page.waitForSelector('#status:is([data-state="done"], [data-state="failed"])', { timeout: 120_000 });
  const status = await page.textContent("#status");
  if (status !== "done") throw new Error(`the scenario page failed: ${status}`);
  const r = await page.evaluate(() => window.scenarioResult);
  const listed = readdirSync(SCENARIOS).filter((n) => n.endsWith(".json")).length;
  console.log(`${r.failed ? "FAIL" : "PASS"} browser scenarios: ${r.passed} of ${r.files} files passed, ${r.steps} steps ` +
    `run in the page${r.skipped.length ? `, ${r.skipped.length} skipped` : ""}`);
  if (r.failures.length) throw new Error(`scenario failures in the browser:\n  ${r.failures.join("\n  ")}`);
  if (r.files === 0 || r.files !== listed || r.passed !== r.files) {
    throw new Error(`the page ran ${r.files} files (${r.passed} passed); vectors/scenarios holds ${listed}`);
  }
  if (problems.length) throw new Error(problems.join("\n"));
}

/**
 * Page 3: the page is a portal showing a link QR code; Node reads the code
 * from a screenshot, as a camera would, and scans it with a pinned device.
 */
async function checkLinkPage(page, base, jsQR) {
  const { init, Device, newStorageKey } = await import("@tessera/sdk"); // the Node entry
  await init();
  const problems = watch(page);
  await page.goto(`${base}/test/browser/link.html`, { timeout: STEP_TIMEOUT_MS });
  await page.waitForSelector('#status:is([data-state="ready"], [data-state="failed"])', { timeout: STEP_TIMEOUT_MS });
  const status = await page.textContent("#status");
  if (status !== "ready") throw new Error(`the link page failed: ${status}`);

  const { qr, image } = await screenshotQr(page, "#qr svg", jsQR);
  const shown = await page.textContent("#qr-text");
  if (qr.data !== shown) throw new Error(`the decoded QR text differs from the page's:\n  ${qr.data}\n  ${shown}`);

  // A device reads the decoded text, pinned to the portal key the page shows.
  const phone = new Device(newStorageKey());
  const pinned = Uint8Array.from(Buffer.from(await page.textContent("#portal-key"), "hex"));
  const info = phone.scanLinkQr(qr.data, Date.now(), pinned);
  const portalName = await page.textContent("#portal-name");
  const fingerprint = await page.textContent("#fingerprint");
  if (info.portalName !== portalName || info.portalFingerprint !== fingerprint) {
    throw new Error(`the device read ${JSON.stringify(info)}, the page shows ${portalName} / ${fingerprint}`);
  }
  const wrongPin = Uint8Array.from(pinned);
  wrongPin[32] ^= 1;
  let pinCode = "no error";
  try {
    phone.scanLinkQr(qr.data, new Date(), wrongPin);
  } catch (e) {
    pinCode = e.name === "TesseraError" ? e.code : String(e);
  }
  if (pinCode !== "WRONG_ACCOUNT") throw new Error(`a scan pinned to another key gave ${pinCode}`);
  if (problems.length) throw new Error(problems.join("\n"));
  console.log(`PASS browser link: QR code decoded in Node from a ${image.width}x${image.height} screenshot ` +
    `(version ${qr.version}) equals the offer text the page shows (${shown.length} characters); a device pinned to ` +
    `the page's key reads "${info.portalName}" (${info.portalFingerprint}), another pin is WRONG_ACCOUNT`);
}

/**
 * Page 4: the page is a portal; a device of the Node build links to it and
 * approves the payment it shows, reading both QR codes from screenshots
 * and typing its codes into the page as a user would.
 */
async function checkApprovePage(page, base, jsQR) {
  const { init, Device, newStorageKey } = await import("@tessera/sdk"); // the Node entry
  await init();
  const problems = watch(page);
  const passcode = "493817";
  const waitState = async (state) => {
    await page.waitForSelector(`#status:is([data-state="${state}"], [data-state="failed"])`, { timeout: STEP_TIMEOUT_MS });
    const status = await page.textContent("#status");
    if (status !== state) throw new Error(`the approve page failed: ${status}`);
  };
  await page.goto(`${base}/test/browser/approve.html`, { timeout: STEP_TIMEOUT_MS });
  await waitState("link");

  // Link: the QR code from a screenshot, pinned to the key the page shows.
  const link = await screenshotQr(page, "#link-qr svg", jsQR);
  const pinned = Uint8Array.from(Buffer.from(await page.textContent("#portal-key"), "hex"));
  const phone = new Device(newStorageKey());
  const pending = phone.startLink(link.qr.data, { deviceName: "Anna's Pixel", passcode }, null, Date.now(), pinned);
  const answer = await page.evaluate((request) => window.portalServer.linkRequest(request), pending.request());
  const { state, checkCode } = pending.finish(answer);
  await page.locator("#link-code").pressSequentially(checkCode);
  await page.click("#link-confirm");
  await waitState("approve");

  // The challenge: decoded from a screenshot, read by the device, which shows what the page shows.
  const { qr, image } = await screenshotQr(page, "#challenge-qr svg", jsQR);
  const shownText = await page.textContent("#challenge-text");
  if (qr.data !== shownText) throw new Error(`the decoded challenge differs from the page's:\n  ${qr.data}\n  ${shownText}`);
  const view = phone.readChallenge(state, qr.data, Date.now());
  const onPage = { kind: "transaction", amount: await page.textContent("#amount"),
    currency: await page.textContent("#currency"), payee: await page.textContent("#payee"),
    text: [await page.textContent("#text")] };
  if (JSON.stringify(view.approval) !== JSON.stringify(onPage) || view.portalName !== await page.textContent("#portal-name")) {
    throw new Error(`the device shows ${JSON.stringify(view)}, the page ${JSON.stringify(onPage)}`);
  }
  const code = phone.answerChallenge(state, qr.data, { kind: "passcode", passcode }, Date.now());
  if (!new RegExp(`^[0-9]{${view.digits}}$`).test(code)) throw new Error(`the device's code is ${code}`);

  // Typed into the page: a wrong code (every digit + 1), then the device's code.
  const submit = async (typed, n) => {
    await page.locator("#answer").fill("");
    await page.locator("#answer").pressSequentially(typed);
    await page.click("#answer-submit");
    await page.waitForSelector(`#result[data-n="${n}"], #status[data-state="failed"]`, { timeout: STEP_TIMEOUT_MS });
    if ((await page.getAttribute("#status", "data-state")) === "failed") {
      throw new Error(`the approve page failed: ${await page.textContent("#status")}`);
    }
    return { result: await page.textContent("#result"), events: await page.textContent("#events") };
  };
  const wrong = await submit(code.replace(/[0-9]/g, (d) => String((Number(d) + 1) % 10)), 1);
  if (wrong.result !== "INVALID_ANSWER") throw new Error(`a wrong code gave ${JSON.stringify(wrong)}, expected INVALID_ANSWER`);
  const right = await submit(code, 2);
  if (right.result !== "accepted" || right.events !== "challengeAnswered") {
    throw new Error(`the device's code gave ${JSON.stringify(right)}, expected accepted with challengeAnswered`);
  }
  if (problems.length) throw new Error(problems.join("\n"));
  console.log(`PASS browser approve: a Node device linked to the page (link QR code decoded from a ` +
    `${link.image.width}x${link.image.height} screenshot, check code typed), read the payment challenge decoded from a ` +
    `${image.width}x${image.height} screenshot (version ${qr.version}: ${view.approval.amount} ${view.approval.currency} to ` +
    `${view.approval.payee}); typed codes: a wrong one is ${wrong.result}, the device's ${code.length}-digit code is ${right.result}`);
}

/** Screenshot of a QR element → PNG → RGBA pixels → jsQR. */
async function screenshotQr(page, selector, jsQR) {
  const png = await page.locator(selector).screenshot({ timeout: STEP_TIMEOUT_MS });
  const image = decodePng(png);
  const qr = jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
  if (!qr) throw new Error(`no QR code found in the ${image.width}x${image.height} screenshot of ${selector}`);
  return { qr, image };
}

/** Page errors and console errors/warnings, collected. */
function watch(page) {
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
  });
  return problems;
}

/**
 * The pixels of a PNG (8-bit grey/RGB/RGBA, not interlaced: what Chromium
 * writes) as RGBA, with node:zlib — enough for a screenshot, no dependency.
 */
function decodePng(buf) {
  if (buf.readUInt32BE(0) !== 0x89504e47 || buf.readUInt32BE(4) !== 0x0d0a1a0a) throw new Error("not a PNG");
  let width, height, depth, colorType, interlace;
  const idat = [];
  for (let pos = 8; pos + 8 <= buf.length;) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString("latin1", pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    pos += 12 + len;
    if (type === "IHDR") {
      [width, height, depth, colorType, interlace] = [data.readUInt32BE(0), data.readUInt32BE(4), data[8], data[9], data[12]];
    } else if (type === "IDAT") {
      idat.push(data);
    } else if (type === "IEND") {
      break;
    }
  }
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colorType];
  if (depth !== 8 || !channels || interlace !== 0) {
    throw new Error(`unsupported PNG: bit depth ${depth}, colour type ${colorType}, interlace ${interlace}`);
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length !== height * (stride + 1)) throw new Error("truncated PNG data");
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? px[y * stride + x - channels] : 0;
      const b = y > 0 ? px[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? px[(y - 1) * stride + x - channels] : 0;
      let predictor;
      switch (filter) {
        case 0: predictor = 0; break;
        case 1: predictor = a; break;
        case 2: predictor = b; break;
        case 3: predictor = (a + b) >> 1; break;
        case 4: {
          const p = a + b - c;
          const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
          predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default: throw new Error(`bad PNG filter type ${filter}`);
      }
      px[y * stride + x] = (line[x] + predictor) & 0xff;
    }
  }
  const data = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    const s = i * channels;
    const grey = channels < 3;
    data[4 * i] = px[s];
    data[4 * i + 1] = grey ? px[s] : px[s + 1];
    data[4 * i + 2] = grey ? px[s] : px[s + 2];
    data[4 * i + 3] = channels === 4 ? px[s + 3] : channels === 2 ? px[s + 1] : 255;
  }
  return { width, height, data };
}

// Static files under bindings-wasm/ and vectors/scenarios/ only, GET/HEAD only.
function serve(req, res, served) {
  let path;
  try {
    path = decodeURIComponent(new URL(req.url, "http://x").pathname);
  } catch {
    path = "\0";
  }
  // The scenario files: /vectors/scenarios/<name>.json, and their list.
  if (path === "/vectors/scenarios/index.json" && (req.method === "GET" || req.method === "HEAD")) {
    const names = readdirSync(SCENARIOS).filter((n) => n.endsWith(".json") && n !== "index.json").sort();
    served.push({ path: "vectors/scenarios/index.json", type: TYPES[".json"] });
    res.writeHead(200, { "Content-Type": TYPES[".json"], "Cache-Control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : JSON.stringify(names));
    return;
  }
  const scenario = path.startsWith("/vectors/scenarios/");
  const top = scenario ? SCENARIOS : ROOT;
  const file = scenario ? resolve(SCENARIOS, "." + path.slice("/vectors/scenarios".length)) : resolve(ROOT, "." + path);
  const inside = (file === top || file.startsWith(top + sep)) && (!scenario || extname(file) === ".json");
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
