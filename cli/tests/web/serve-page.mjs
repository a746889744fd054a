#!/usr/bin/env node
// The demo page of `tessera serve` in headless Chromium, end to end with the
// device simulator (the `tessera` binary, as a child process):
//   log in as a test user; link a phone (offer text read from the page,
//   `tessera device link --qr … --server URL`, the check code it printed
//   typed into the page; a wrong one first); see the device in the list;
//   approve a login (challenge created on the page, answered by the device,
//   a wrong code first, then the right one); unlink the device and see it
//   gone; the phone's next status request says it was unlinked.
//
//   node cli/tests/web/serve-page.mjs URL TESSERA_BINARY
//
// It starts no server (scripts/serve-web-test.sh does). Exits 0 with "PASS"
// lines, or 1 with the reason. Tools come from ${TESSERA_CACHE:-~/.cache/tessera}/npm
// (scripts/setup.sh); Chromium is /usr/bin/chromium (or $CHROMIUM).
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir, tmpdir } from "node:os";
import { join, sep } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const STEP_TIMEOUT_MS = 30_000;
const OVERALL_TIMEOUT_MS = 180_000;
const PASSCODE = "480215";

const [url, bin] = process.argv.slice(2);
process.exitCode = await main();

async function main() {
  const watchdog = setTimeout(() => {
    console.error(`FAIL serve page: no result after ${OVERALL_TIMEOUT_MS / 1000} s`);
    process.exit(1);
  }, OVERALL_TIMEOUT_MS);
  watchdog.unref();
  let context;
  const profile = mkdtempSync(join(tmpdir(), "tessera-serve-chromium-"));
  const phone = mkdtempSync(join(tmpdir(), "tessera-serve-phone-"));
  try {
    if (!url || !bin) throw new Error("usage: node cli/tests/web/serve-page.mjs URL TESSERA_BINARY");
    const cache = process.env.TESSERA_CACHE || join(homedir(), ".cache/tessera");
    let chromium;
    try {
      ({ chromium } = createRequire(join(cache, "npm") + sep)("playwright-core"));
    } catch (e) {
      throw new Error(`playwright-core not found under ${cache}/npm (run scripts/setup.sh): ${e.message}`);
    }
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
    page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
    await flow(page, phone);
    // A wrong code's 422 is logged by Chromium as a failed resource: expected.
    const unexpected = problems.filter((p) => !/status of 422/.test(p));
    if (unexpected.length) throw new Error(unexpected.join("; "));
    return 0;
  } catch (e) {
    console.error(`FAIL serve page: ${e.message}`);
    return 1;
  } finally {
    clearTimeout(watchdog);
    if (context) await context.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
    rmSync(phone, { recursive: true, force: true });
  }
}

/** The device simulator: its stdout's first line. */
async function device(...args) {
  const { stdout } = await run(bin, ["device", ...args]);
  return stdout.trim().split("\n")[0];
}

/** The device simulator when it must fail: its error code. */
async function deviceFails(...args) {
  try {
    await run(bin, ["device", ...args]);
  } catch (e) {
    return (/error\[([A-Z_]+)\]/.exec(e.stderr) || [])[1];
  }
  throw new Error(`tessera device ${args[0]} succeeded`);
}

async function message(page, state, pattern) {
  await page.waitForFunction(
    ({ state, source }) => {
      const m = document.getElementById("message");
      return m.dataset.state === state && new RegExp(source).test(m.textContent);
    },
    { state, source: pattern.source },
  ).catch(async () => {
    throw new Error(`expected a "${state}" message like ${pattern}, the page says: ${await page.textContent("#message")}`);
  });
}

async function flow(page, phone) {
  await page.goto(url);
  if (!(await page.textContent(".banner")).includes("TEST / DEMO PAGE")) throw new Error("no test-page banner");
  const account = "web-user@example.com";
  await page.fill("#account", account);
  await page.click("#login");
  await page.waitForSelector("#portal:not([hidden])");
  if ((await page.textContent("#who")) !== account) throw new Error("not logged in as the test user");
  await page.waitForSelector("#no-devices:not([hidden])");
  console.log("PASS serve page: logged in as a test user, no devices");

  // Link a phone: the QR code (server SVG) and its text on the page.
  await page.click("#link");
  await page.waitForFunction(() => document.getElementById("offer-text").textContent.startsWith("TS:"));
  const offer = await page.textContent("#offer-text");
  await page.waitForFunction(() => {
    const img = document.querySelector("#offer-qr img");
    return img && img.complete && img.naturalWidth >= 100;
  });
  const check = await device("link", "--dir", phone, "--qr", offer, "--name", "Web Pixel", "--passcode", PASSCODE,
    "--server", url);
  if (!/^\d{6}$/.test(check)) throw new Error(`the device printed ${check}, not a check code`);
  await page.fill("#check-code", check === "000000" ? "111111" : "000000");
  await page.click("#confirm");
  await message(page, "error", /CHECK_CODE_MISMATCH/);
  await page.fill("#check-code", check);
  await page.click("#confirm");
  await message(page, "ok", /linked "Web Pixel"/);
  const row = page.locator("#devices tr", { hasText: "Web Pixel" });
  await row.waitFor();
  const deviceId = await row.getAttribute("data-device-id");
  if (!/^[0-9a-f]{16}$/.test(deviceId || "")) throw new Error(`device id ${deviceId}`);
  console.log(`PASS serve page: phone linked through the page and the server (device ${deviceId})`);

  // Approve a login.
  await page.click("#approve");
  await page.waitForFunction(() => document.getElementById("challenge-text").textContent.startsWith("TS:"));
  const qr = await page.textContent("#challenge-text");
  await page.waitForFunction(() => document.querySelector("#challenge-qr img")?.naturalWidth >= 100);
  const code = await device("answer", "--dir", phone, "--qr", qr, "--passcode", PASSCODE);
  if (!/^\d{6,10}$/.test(code)) throw new Error(`the device printed ${code}, not a code`);
  const wrong = (code[0] === "0" ? "1" : "0") + code.slice(1);
  await page.fill("#answer-code", wrong);
  await page.click("#verify");
  await message(page, "error", /INVALID_ANSWER/);
  await page.fill("#answer-code", code);
  await page.click("#verify");
  await message(page, "ok", /login approved/);
  console.log("PASS serve page: login approved with the phone's code (a wrong one refused first)");

  // Unlink; the device list no longer shows it, and the phone learns it.
  await row.locator("button.unlink").click();
  await message(page, "ok", /unlinked "Web Pixel"/);
  await page.locator("#devices tr", { hasText: "Web Pixel" }).waitFor({ state: "detached" });
  await page.waitForSelector("#no-devices:not([hidden])");
  const revoked = await deviceFails("status-request", "--dir", phone, "--server", url);
  if (revoked !== "DEVICE_REVOKED") throw new Error(`the phone's status request said ${revoked}`);
  console.log("PASS serve page: device unlinked on the page; the phone's status request says DEVICE_REVOKED");
}
