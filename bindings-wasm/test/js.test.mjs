// What only the JavaScript surface can get wrong: how the package loads and
// what it exports, its TypeScript declarations, the thrown errors, argument
// decoding (types, numbers, bytes), times as epoch milliseconds or a Date.
// Behaviour (linking, challenges, activation, OTP, verifiers) is in the scenario files
// (test/scenarios.mjs runs vectors/scenarios/*.json), not here.
import test from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir, tmpdir } from "node:os";
import { join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as sdk from "@tessera/sdk";
import { throwsCode } from "./helpers.mjs";

await sdk.init();

const require = createRequire(import.meta.url);
const PUBLIC = ["Device", "LinkRequest", "OfflineAuthenticator", "PendingLink", "Portal", "StatusProbe", "base32Decode",
  "base32Encode", "errorCodes", "factoryFileSerials", "formatOtpauthUri", "hotp", "init", "initSync", "isTesseraError", "newOtpSecret", "newStorageKey", "ocra", "otpauthCode",
  "parseOtpauthUri", "qrSvg", "resyncHotp", "signedAnswerChallengeId", "totp", "unlockVerifier", "verifyHotp",
  "verifyTotp"];
const KEY = new TextEncoder().encode("12345678901234567890");
// The glue's declarations (pkg/index.d.ts re-exports them next to `init`).
const dts = () => readFileSync(new URL("../pkg/tessera_wasm.d.ts", import.meta.url), "utf8");
const isClass = (f) => /^class\b/.test(Function.prototype.toString.call(f));

/** A linked phone and its portal, through the API (the scenarios test the flow itself). */
function linked(now = Date.now()) {
  const portal = sdk.Portal.generate("Example Bank");
  const offer = portal.createOffer("anna@example.org", {}, now);
  const device = new sdk.Device(sdk.newStorageKey());
  const pending = device.startLink(offer.qrText, { deviceName: "Pixel", passcode: "493817", biometrics: true }, null, now);
  const request = portal.openLinkRequest(pending.request());
  const answer = request.accept({ offer: offer.change.writes[0].row, deviceKeySeen: false }, now);
  const pendingRow = answer.change.writes.find((w) => w.kind === "pendingLink").row;
  const fin = pending.finish(answer.answer);
  const conf = portal.confirmLink([pendingRow], fin.checkCode, now);
  assert.equal(conf.verdict.kind, "accepted");
  return { portal, offer, device, pending, request, answer, pendingRow, fin, deviceRow: conf.device };
}

const PASSCODE = { kind: "passcode", passcode: "493817" };
const TRANSACTION = { kind: "transaction", amount: "125.50", currency: "EUR", payee: "ACME Energy Ltd",
  text: ["Invoice 2026-118"] };

/** Fast slow hashes for tests (the API's minimum; the default is 600 000). */
const ACTIVATION = { hashIterations: 10_000 };
const FACTORY_HEADER = "tessera-factory-records v1";

/** A portal with one imported offline authenticator, ordered for anna and started: the rows and the app. */
function activationStarted(now = Date.now()) {
  const portal = sdk.Portal.generate("Example Bank");
  const token = new sdk.OfflineAuthenticator(sdk.newStorageKey());
  const made = token.create("TS00012345");
  const file = `${FACTORY_HEADER}\n${made.factoryRecord}\n`;
  const imported = portal.importDevices(file, [], now);
  const authRow = imported.change.writes[0].row;
  const order = portal.orderDevice("anna@example.org", "271828", authRow, ACTIVATION, now);
  const orderRow = order.change.writes.find((w) => w.kind === "order").row;
  const authRow2 = order.change.writes.find((w) => w.kind === "authenticator").row;
  const start = portal.startActivation(orderRow, authRow2, ACTIVATION, now);
  return { portal, token, made, file, imported, order, start, authRow: authRow2, orderRow: start.change.writes.find((w) => w.kind === "order").row,
    activationRow: start.change.writes.find((w) => w.kind === "activation").row };
}

/** The rows of a change, applied in memory as a database would (compare-and-set on `version`). */
function rowStore() {
  const rows = new Map();
  const KEYS = { offer: "offerId", pendingLink: "deviceId", device: "deviceId", challenge: "challengeId",
    authenticator: "serial", order: "userId", activation: "activationId", credentials: "account" };
  const keyOf = (w) => `${w.kind}:${w.row[KEYS[w.kind]]}`;
  return {
    apply(change) {
      for (const w of change.writes) {
        assert.equal(rows.get(keyOf(w))?.version, w.expectedVersion, `compare-and-set of ${keyOf(w)}`);
        rows.set(keyOf(w), w.row);
      }
      return change;
    },
    get: (kind, key) => rows.get(`${kind}:${key}`),
  };
}

test("the package name resolves to the Node entry for import and require (one module instance)", () => {
  assert.match(fileURLToPath(import.meta.resolve("@tessera/sdk")), /bindings-wasm\/pkg\/node\.js$/);
  assert.match(require.resolve("@tessera/sdk"), /bindings-wasm\/pkg\/node\.js$/);
  const required = require("@tessera/sdk");
  assert.equal(required.hotp, sdk.hotp);
  assert.equal(required.init, sdk.init);
  assert.equal(required.default, sdk.init);
});

test("init: once is enough, again does nothing; a failed load says what is missing and can be retried", async () => {
  assert.equal(sdk.default, sdk.init);
  assert.equal(await sdk.init(), undefined);
  assert.equal(await sdk.init("/nowhere/tessera_wasm_bg.wasm"), undefined, "already loaded: the argument is not read");
  sdk.initSync(new Uint8Array(0)); // already loaded: nothing to do
  for (const junk of [42, {}, null, true, [1, 2]]) {
    await assert.rejects(sdk.init(junk), (e) => sdk.isTesseraError(e) && e.code === "INVALID_INPUT", `init(${junk})`);
    throwsCode(() => sdk.initSync(junk), "INVALID_INPUT", `initSync(${junk})`);
  }
  // A fresh process: a path that does not exist, then the default.
  const script = `import { init, totp } from "@tessera/sdk";
    await init("/nowhere/tessera_wasm_bg.wasm").then(() => console.log("loaded?"), (e) => console.log(e.message));
    await init();
    console.log(totp(new TextEncoder().encode("12345678901234567890"), 59000, 30, 8));`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script],
    { cwd: fileURLToPath(new URL(".", import.meta.url)), encoding: "utf8" }).trim().split("\n");
  assert.match(out[0], /^@tessera\/sdk: cannot read \/nowhere\/tessera_wasm_bg\.wasm \(ENOENT\): a bundle needs tessera_wasm_bg\.wasm copied next to it, or its bytes passed to init\(\)$/);
  assert.equal(out[1], "94287082");
});

test("exports exactly the public API", () => {
  const names = Object.keys(sdk).filter((k) => k !== "default" && k !== "module.exports").sort();
  assert.deepEqual(names, PUBLIC);
});

test("TypeScript declarations: the tsify types of tessera-host (one set for Node and browsers)", () => {
  for (const dir of ["pkg"]) {
    const d = dts();
    for (const t of ["LinkOffer", "StoredOffer", "StoredPendingLink", "StoredDevice", "PortalChange", "LinkAnswer",
      "LinkConfirmation", "CodeCheck", "LinkLookup", "StatusLookup", "OfferSettings", "PasscodeRules", "LinkOfferInfo",
      "LinkedAccount", "LinkChoices", "LinkFinish", "OtpAuthUri", "OtpVerifierConfig", "OtpVerifierState", "OtpCheck",
      "OcraParams", "TesseraError", "ChallengeSettings", "ChallengeIssued", "AnswerCheck", "ChallengeView",
      "SignedChallenge", "StoredChallenge", "DeviceCodeRules", "ActivationSettings", "StoredAuthenticator", "StoredOrder",
      "StoredActivation", "StoredCredentials", "DeviceImport", "DeviceOrder", "ActivationUpdate", "CredentialCheck",
      "NewAuthenticator", "AuthenticatorScreen", "AuthenticatorInfo"]) {
      assert.match(d, new RegExp(`export interface ${t} (extends Error )?\\{`), `${dir}: interface ${t}`);
    }
    for (const t of ["Verdict", "ErrorCode", "TesseraErrorCode", "Timestamp", "RecordWrite", "PortalEvent", "Unlock",
      "OtpKind", "OtpAlgorithm", "DeviceStatus", "PendingStatus", "LinkStatus", "Approval", "ChallengeStatus", "ChallengeKind",
      "ActivationStep", "ActivationStatus", "AuthenticatorStatus", "OrderStatus", "ScreenKind"]) {
      assert.match(d, new RegExp(`export type ${t} =`), `${dir}: type ${t}`);
    }
    assert.match(d, /export type Verdict = \{ kind: "accepted" \} \| \{ kind: "repeated" \} \| \{ kind: "refused"; code: ErrorCode; detail: string \};/);
    assert.match(d, /export type Timestamp = number;/);
    assert.ok(d.includes('{ kind: "challenge"; row: StoredChallenge; expectedVersion?: number }'), `${dir}: RecordWrite challenge`);
    for (const [kind, row] of [["authenticator", "StoredAuthenticator"], ["order", "StoredOrder"],
      ["activation", "StoredActivation"], ["credentials", "StoredCredentials"]]) {
      assert.ok(d.includes(`{ kind: "${kind}"; row: ${row}; expectedVersion?: number }`), `${dir}: RecordWrite ${kind}`);
    }
    assert.match(d, /export type ActivationStep = "deviceCode" \| "activationCode" \| "bindingCode" \| "serial" \| "testOtp" \| "initialPassword" \| "newPassword" \| "done";/);
    assert.ok(d.includes('{ kind: "deviceActivated"; account: string; deviceId: string; serial: string; usableFrom: Timestamp; at: Timestamp }'),
      `${dir}: PortalEvent deviceActivated`);
    assert.match(d, /export interface StoredDevice \{[^}]*serial\?: string;[^}]*usableFrom\?: Timestamp;/);
    assert.ok(d.includes('export type Approval = { kind: "login" } | { kind: "transaction"; amount: string; currency: string; '
      + 'payee: string; text?: string[] } | { kind: "linkDevice"; deviceName: string; deviceId: string };'), `${dir}: Approval`);
    assert.match(d, /export type TesseraErrorCode = ErrorCode;/);
    // Signatures are typed: times take a number or a Date, results are the host's records.
    for (const line of [
      "createOffer(account: string, settings: OfferSettings | null | undefined, now: Timestamp | Date): LinkOffer;",
      "accept(lookup: LinkLookup, now: Timestamp | Date): LinkAnswer;",
      "read(answer: string): LinkStatus;",
      "confirmLink(pendings: StoredPendingLink[], code: string, now: Timestamp | Date): LinkConfirmation;",
      "export function errorCodes(): TesseraErrorCode[];",
      "export function isTesseraError(e: any): e is TesseraError;",
      "export function verifyTotp(config: OtpVerifierConfig, state: OtpVerifierState | undefined, code: string, now: Timestamp | Date): OtpCheck;",
      "createChallenge(devices: StoredDevice[], approval: Approval, settings: ChallengeSettings | null | undefined, now: Timestamp | Date): ChallengeIssued;",
      "verifyAnswer(challenge: StoredChallenge, devices: StoredDevice[], answer: string, now: Timestamp | Date): AnswerCheck;",
      "unlockDevice(device: StoredDevice, now: Timestamp | Date): PortalChange;",
      "createOfferForNewDevice(account: string, devices: StoredDevice[], settings: OfferSettings | null | undefined, now: Timestamp | Date): LinkOffer;",
      "createLinkChallenge(pending: StoredPendingLink, devices: StoredDevice[], settings: ChallengeSettings | null | undefined, now: Timestamp | Date): ChallengeIssued;",
      "confirmWithAuthenticator(pending: StoredPendingLink, challenge: StoredChallenge, devices: StoredDevice[], answer: string, now: Timestamp | Date): LinkConfirmation;",
      "readChallenge(state: Uint8Array, qrText: string, now: Timestamp | Date): ChallengeView;",
      "answerChallenge(state: Uint8Array, qrText: string, unlock: Unlock, now: Timestamp | Date): string;",
      "signChallenge(state: Uint8Array, qrText: string, unlock: Unlock, now: Timestamp | Date): SignedChallenge;",
      "export function signedAnswerChallengeId(answer: string): string;",
      "export function factoryFileSerials(file: string): string[];",
      "importDevices(file: string, alreadyImported: string[], now: Timestamp | Date): DeviceImport;",
      "orderDevice(account: string, activationCode: string, authenticator: StoredAuthenticator, settings: ActivationSettings | null | undefined, now: Timestamp | Date): DeviceOrder;",
      "startActivation(order: StoredOrder, authenticator: StoredAuthenticator, settings: ActivationSettings | null | undefined, now: Timestamp | Date): ActivationUpdate;",
      "activationNext(activation: StoredActivation, order: StoredOrder, authenticator: StoredAuthenticator, credentials: StoredCredentials | null | undefined, input: string, settings: ActivationSettings | null | undefined, now: Timestamp | Date): ActivationUpdate;",
      "activationStatus(activation: StoredActivation): ActivationUpdate;",
      "verifyPassword(credentials: StoredCredentials, password: string, now: Timestamp | Date): CredentialCheck;",
      "redeemRecoveryCode(credentials: StoredCredentials, code: string, now: Timestamp | Date): CredentialCheck;",
      "cancelPendingCredentials(credentials: StoredCredentials, now: Timestamp | Date): PortalChange;",
      "export class OfflineAuthenticator {",
      "constructor(storageKey: Uint8Array);",
      "create(serial: string): NewAuthenticator;",
      "scan(state: Uint8Array, qrText: string): AuthenticatorScreen;",
      "info(state: Uint8Array): AuthenticatorInfo;",
    ]) {
      assert.ok(d.includes(line), `${dir}: ${line}`);
    }
    // No `any` in a signature but the type guard's parameter.
    for (const line of d.split("\n").filter((l) => /^(export function|  (static |readonly )?[a-zA-Z]+[(:])/.test(l))) {
      if (!line.includes("isTesseraError")) assert.doesNotMatch(line, /\bany\b/, `${dir}: ${line}`);
    }
  }
});

test("errorCodes() equals the ErrorCode union of the .d.ts; no hand-written copy of the table", () => {
  const codes = sdk.errorCodes();
  assert.ok(Array.isArray(codes) && codes.length > 20);
  assert.equal(new Set(codes).size, codes.length);
  for (const dir of ["pkg"]) {
    const union = dts().match(/export type ErrorCode = ([^;]*);/);
    assert.ok(union, `${dir}: ErrorCode missing`);
    assert.deepEqual([...union[1].matchAll(/"([A-Z_]+)"/g)].map((m) => m[1]), codes, dir);
  }
  // The shells name no code but in Rust (`ErrorCode::InvalidInput`): the strings come from the core's table.
  const shells = readFileSync(new URL("../src/lib.rs", import.meta.url), "utf8");
  for (const c of codes) assert.ok(!shells.includes(`"${c}"`), `bindings-wasm/src/lib.rs spells out "${c}"`);
});

test("isTesseraError: true for what Tessera throws, false for anything else", () => {
  const e = throwsCode(() => sdk.hotp(KEY, 0, 5), "INVALID_DIGITS");
  assert.equal(sdk.isTesseraError(e), true);
  assert.equal(sdk.isTesseraError(throwsCode(() => new sdk.Device(new Uint8Array(31)), "INVALID_INPUT")), true);
  for (const x of [new TypeError("x"), new Error("x"), Object.assign(new TypeError("x"), { code: "INVALID_INPUT" }),
    { name: "TesseraError", code: "INVALID_INPUT", message: "x" }, Object.assign(new Error("x"), { name: "TesseraError" }),
    Object.assign(new Error("x"), { name: "TesseraError", code: "NOT_A_CODE" }), null, undefined, "TesseraError", 0,
    sdk.errorCodes()]) {
    assert.equal(sdk.isTesseraError(x), false, String(x && (x.name ?? x)));
  }
});

test("a thrown error: an Error named TesseraError with a code from errorCodes() and a message", () => {
  const e = throwsCode(() => sdk.hotp(KEY, 0, 5), "INVALID_DIGITS");
  assert.ok(e instanceof Error);
  assert.equal(typeof e.stack, "string");
  assert.match(String(e), /^TesseraError: /);
  assert.ok(sdk.errorCodes().includes(e.code));
});

test("bad argument types are INVALID_INPUT, never a TypeError or a trap", () => {
  const now = Date.now();
  const { portal, offer, device, request, pendingRow, fin, deviceRow } = linked(now);
  const a = activationStarted(now);
  const cases = {
    "string for a number": () => sdk.hotp(KEY, "5"),
    "NaN counter": () => sdk.hotp(KEY, NaN),
    "fraction": () => sdk.hotp(KEY, 1.5),
    "2^53": () => sdk.hotp(KEY, 2 ** 53),
    "negative counter": () => sdk.hotp(KEY, -1),
    "Infinity digits": () => sdk.hotp(KEY, 0, Infinity),
    "missing counter": () => sdk.hotp(KEY),
    "string time": () => sdk.totp(KEY, "59000"),
    "NaN time": () => sdk.totp(KEY, NaN),
    "Invalid Date": () => sdk.totp(KEY, new Date(NaN)),
    "missing time": () => sdk.totp(KEY),
    "fraction in a record": () => sdk.verifyTotp({ secret: KEY, digits: 6.5 }, undefined, "123456", now),
    "2^53 in a record": () => sdk.verifyTotp({ secret: KEY, window: 2 ** 53 }, undefined, "123456", now),
    "NaN in a record": () => sdk.verifyTotp({ secret: KEY, maxFailures: NaN }, undefined, "123456", now),
    "string for a number in a record": () => portal.createOffer("anna", { ttlSeconds: "300" }, now),
    "missing field": () => sdk.verifyTotp({}, undefined, "123456", now),
    "missing deviceKeySeen": () => request.accept({ offer: offer.change.writes[0].row }, now),
    "missing row field": () => portal.confirmLink([{ ...pendingRow, version: undefined }], fin.checkCode, now),
    "row version as a string": () => portal.verifyDeviceCode({ ...deviceRow, version: "1" }, "123456", now),
    "unknown enum value": () => device.code(fin.state, { kind: "face" }, now),
    "unknown algorithm": () => sdk.hotp(KEY, 0, 6, "md5"),
    "number for a string": () => sdk.parseOtpauthUri(42),
    "storage key of 31 bytes": () => new sdk.Device(new Uint8Array(31)),
    "storage key as Uint16Array": () => new sdk.Device(new Uint16Array(16)),
    "storage key as ArrayBuffer": () => new sdk.Device(new ArrayBuffer(32)),
    "storage key as plain array": () => new sdk.Device(Array(32).fill(1)),
    "storage key as a string": () => new sdk.Device("k".repeat(32)),
    "no storage key": () => new sdk.Device(),
    "secret as Uint16Array": () => sdk.hotp(new Uint16Array(10), 0),
    "secret as a string": () => sdk.hotp("12345678901234567890", 0),
    "sealed bytes as Uint16Array in a row": () => portal.verifyDeviceCode({ ...deviceRow, sealed: new Uint16Array(4) }, "1", now),
    "state as a string": () => device.account("state"),
    "pinned key as Uint16Array": () => device.scanLinkQr(offer.qrText, now, new Uint16Array(33)),
    "amount as a number": () => portal.createChallenge([deviceRow], { ...TRANSACTION, amount: 125.5 }, {}, now),
    "approval without a kind": () => portal.createChallenge([deviceRow], { amount: "1.00" }, {}, now),
    "unknown approval kind": () => portal.createChallenge([deviceRow], { kind: "payment" }, {}, now),
    "text as a string": () => portal.createChallenge([deviceRow], { ...TRANSACTION, text: "Invoice" }, {}, now),
    "digits as a fraction": () => portal.createChallenge([deviceRow], { kind: "login" }, { digits: 8.5 }, now),
    "devices not an array": () => portal.createChallenge(deviceRow, { kind: "login" }, {}, now),
    "challenge row without sealed": () => portal.verifyAnswer({ challengeId: "00" }, [deviceRow], "12345678", now),
    "unknown challenge status": () => {
      const c = portal.createChallenge([deviceRow], { kind: "login" }, {}, now).change.writes[0].row;
      portal.verifyAnswer({ ...c, status: "closed" }, [deviceRow], "12345678", now);
    },
    "challenge state as a string": () => device.readChallenge("state", "TS:x", now),
    "answer as a number": () => sdk.signedAnswerChallengeId(12345678),
    "OfflineAuthenticator storage key of 31 bytes": () => new sdk.OfflineAuthenticator(new Uint8Array(31)),
    "OfflineAuthenticator storage key as a string": () => new sdk.OfflineAuthenticator("k".repeat(32)),
    "no OfflineAuthenticator storage key": () => new sdk.OfflineAuthenticator(),
    "authenticator state as a string": () => a.token.info("state"),
    "authenticator state as a plain array": () => a.token.scan([...a.made.state], a.start.qrText),
    "serial as a number": () => a.token.create(12345678),
    "factory file as bytes": () => sdk.factoryFileSerials(new TextEncoder().encode(a.file)),
    "alreadyImported as a string": () => a.portal.importDevices(a.file, "TS00012345", now),
    "alreadyImported holding a number": () => a.portal.importDevices(a.file, [12345678], now),
    "no alreadyImported": () => a.portal.importDevices(a.file, undefined, now),
    "authenticator row without sealed": () => a.portal.startActivation(a.orderRow, { ...a.authRow, sealed: undefined }, ACTIVATION, now),
    "unknown authenticator status": () => a.portal.startActivation(a.orderRow, { ...a.authRow, status: "lost" }, ACTIVATION, now),
    "order row version as a string": () => a.portal.startActivation({ ...a.orderRow, version: "2" }, a.authRow, ACTIVATION, now),
    "unknown activation step": () => a.portal.activationStatus({ ...a.activationRow, step: "pin" }),
    "credentials as a string": () => a.portal.activationNext(a.activationRow, a.orderRow, a.authRow, "creds", "1", ACTIVATION, now),
    "hashIterations as a string": () => a.portal.orderDevice("bob", "271828", a.authRow, { hashIterations: "10000" }, now),
    "blocklist as a string": () => a.portal.startActivation(a.orderRow, a.authRow, { blocklist: "password" }, now),
    "activation input as a number": () => a.portal.activationNext(a.activationRow, a.orderRow, a.authRow, null, 1234567890, ACTIVATION, now),
    "password as a number": () => a.portal.verifyPassword({ account: "a", recoveryCodesLeft: 10, locked: false, version: 1,
      sealed: new Uint8Array(8) }, 12345678, now),
  };
  for (const [what, fn] of Object.entries(cases)) throwsCode(fn, "INVALID_INPUT", what);
  // The edges that must work.
  assert.equal(sdk.hotp(KEY, 0), "755224");
  assert.equal(sdk.hotp(Buffer.from(KEY), 1), "287082"); // a Node Buffer is a Uint8Array
  assert.equal(typeof sdk.hotp(KEY, Number.MAX_SAFE_INTEGER), "string");
});

test("a value of the wrong type is not quoted in the error message (it may be a secret)", () => {
  const now = Date.now();
  const { fin, device } = linked(now);
  const a = activationStarted(now);
  const cases = [
    ["JBSWY3DPEHPK3PXP", () => sdk.verifyTotp({ secret: "JBSWY3DPEHPK3PXP" }, undefined, "123456", now)],
    ["493817", () => device.code(fin.state, { kind: "passcode", passcode: 493817 }, now)],
    ["271828", () => device.startLink("TS:x", { deviceName: "P", passcode: 271828 }, null, now)],
    ["314159", () => device.answerChallenge(fin.state, "TS:x", { kind: "passcode", passcode: 314159 }, now)],
    ["161803", () => device.signChallenge(fin.state, "TS:x", { kind: "passcode", passcode: 161803 }, now)],
    ["271828", () => a.portal.orderDevice("bob", 271828, a.authRow, ACTIVATION, now)],
    ["577215", () => a.portal.activationNext(a.activationRow, a.orderRow, a.authRow, null, 577215, ACTIVATION, now)],
    ["blocked-secret", () => a.portal.orderDevice("bob", "271828", a.authRow, { blocklist: "blocked-secret" }, now)],
  ];
  for (const [secret, fn] of cases) {
    try {
      fn();
      assert.fail(`no error for ${secret}`);
    } catch (e) {
      assert.ok(sdk.isTesseraError(e), String(e));
      assert.equal(e.code, "INVALID_INPUT");
      assert.ok(!e.message.includes(secret), `the message quotes the value: ${e.message}`);
    }
  }
});

// Input records refuse unknown keys (a misspelt setting must not silently
// become its default); stored rows may carry a host's own extra properties.
test("input records refuse unknown keys: INVALID_INPUT", () => {
  const now = Date.now();
  const { portal, offer, request, fin, device, deviceRow } = linked(now);
  const state = { nextCounter: 0, consecutiveFailures: 0, locked: false };
  const cases = {
    "OfferSettings.ttl (for ttlSeconds)": () => portal.createOffer("anna", { ttl: 60 }, now),
    "PasscodeRules extra key": () => portal.createOffer("anna", { rules: { minLen: 6, minLength: 8 } }, now),
    "LinkChoices extra key": () => device.startLink(offer.qrText, { deviceName: "P", passcode: "493817", pin: "1" }, null, now),
    "LinkLookup extra key": () => request.accept({ offer: offer.change.writes[0].row, deviceKeySeen: false, seen: true }, now),
    "StatusLookup extra key": () => portal.answerStatus(device.statusRequest(fin.state, now).request(), { device: deviceRow, row: 1 }, now),
    "OtpVerifierConfig extra key": () => sdk.verifyTotp({ secret: KEY, period: 30 }, undefined, "123456", now),
    "OtpVerifierState extra key": () => sdk.verifyHotp({ secret: KEY }, { ...state, failures: 0 }, "755224", now),
    "OcraParams extra key": () => sdk.ocra("OCRA-1:HOTP-SHA1-6:QN08", KEY, { question: "00000000", q: "1" }),
    "a `sealed` field does not make a record a row": () => portal.createOffer("anna", { ttl: 60, sealed: new Uint8Array(1) }, now),
    "DeviceCodeRules extra key": () => portal.createOffer("anna", { deviceCodes: { digits: 8, period: 60 } }, now),
    "Approval extra key": () => portal.createChallenge([deviceRow], { ...TRANSACTION, iban: "DE89" }, {}, now),
    "login Approval with a payee": () => portal.createChallenge([deviceRow], { kind: "login", payee: "ACME" }, {}, now),
    "ChallengeSettings.ttl (for ttlSeconds)": () => portal.createChallenge([deviceRow], { kind: "login" }, { ttl: 60 }, now),
    "ActivationSettings.iterations (for hashIterations)": () => {
      const a = activationStarted(now);
      a.portal.startActivation(a.orderRow, a.authRow, { ...ACTIVATION, iterations: 10_000 }, now);
    },
    "ActivationSettings extra key in orderDevice": () => {
      const a = activationStarted(now);
      a.portal.orderDevice("bob", "271828", a.authRow, { ...ACTIVATION, usableAfter: 0 }, now);
    },
    "Unlock extra key in answerChallenge": () => {
      const qr = portal.createChallenge([deviceRow], { kind: "login" }, {}, now).qrText;
      device.answerChallenge(fin.state, qr, { ...PASSCODE, pin: "1" }, now);
    },
  };
  const accepted = [];
  for (const [what, fn] of Object.entries(cases)) {
    try {
      throwsCode(fn, "INVALID_INPUT", what);
    } catch (e) {
      accepted.push(`${what}: ${e.message}`);
    }
  }
  assert.deepEqual(accepted, [], `records with an unknown key that did not throw INVALID_INPUT:\n${accepted.join("\n")}`);
  // The same records without the extra key work.
  assert.ok(portal.createOffer("anna", { ttlSeconds: 60 }, now).qrText.length > 0);
  assert.ok(portal.createOffer("anna", { deviceCodes: { digits: 8, periodSeconds: 60 } }, now).qrText.length > 0);
  assert.ok(portal.createChallenge([deviceRow], TRANSACTION, { ttlSeconds: 60 }, now).qrText.length > 0);
  assert.equal(sdk.verifyHotp({ secret: KEY }, state, "755224", now).verdict.kind, "accepted");
  // A stored row read back with a database's own property still works.
  const row = { ...deviceRow, _id: "db-42" };
  assert.equal(portal.renameDevice(row, "Renamed", now).events[0].kind, "deviceRenamed");
  const issued = portal.createChallenge([{ ...deviceRow, _id: "db-42" }], { kind: "login" }, {}, now);
  const challengeRow = { ...issued.change.writes[0].row, _id: "db-43" };
  const code = device.answerChallenge(fin.state, issued.qrText, PASSCODE, now);
  assert.equal(portal.verifyAnswer(challengeRow, [row], code, now).verdict.kind, "accepted");
  // A refusal names the place, below the argument, and what was expected.
  const where = (fn) => throwsCode(fn, "INVALID_INPUT").message;
  assert.match(where(() => portal.createOffer("anna", { deviceCodes: { digits: 8, period: 60 } }, now)),
    /^settings\.deviceCodes: unknown field `period`/);
  assert.match(where(() => portal.createOffer("anna", { deviceCodes: { digits: 7.5 } }, now)),
    /^settings\.deviceCodes\.digits: must be an integer from -2147483648 to 2147483647$/);
  assert.match(where(() => portal.createChallenge([deviceRow, { ...deviceRow, sealed: [1, 2] }], { kind: "login" }, {}, now)),
    /^devices\[1\]\.sealed: must be a Uint8Array, not an array$/);
  assert.match(where(() => portal.createChallenge([deviceRow], { kind: "payment" }, {}, now)),
    /^approval\.kind: must be one of `login`, `transaction`/);
  assert.match(where(() => portal.createChallenge([deviceRow], TRANSACTION, { ttlSeconds: "60" }, now)),
    /^settings\.ttlSeconds: must be a number, not string$/);
});

test("a stored verifier state carries nextCounter, consecutiveFailures and locked: a missing one is INVALID_INPUT", () => {
  const now = Date.now();
  const config = { secret: KEY };
  const state = { nextCounter: 0, consecutiveFailures: 0, locked: false };
  for (const k of ["nextCounter", "consecutiveFailures", "locked"]) {
    const partial = { ...state };
    delete partial[k];
    throwsCode(() => sdk.verifyHotp(config, partial, "755224", now), "INVALID_INPUT", `verifyHotp without ${k}`);
    throwsCode(() => sdk.verifyTotp(config, partial, "755224", now), "INVALID_INPUT", `verifyTotp without ${k}`);
    throwsCode(() => sdk.unlockVerifier(partial), "INVALID_INPUT", `unlockVerifier without ${k}`);
  }
  // A locked state that lost `locked` is refused, not read as unlocked.
  throwsCode(() => sdk.verifyHotp(config, { nextCounter: 0, consecutiveFailures: 5 }, "755224", now), "INVALID_INPUT");
  assert.equal(sdk.unlockVerifier({ ...state, locked: true }).locked, false);
  // The optional keys may be left out; no state at all is a new verifier.
  assert.equal(sdk.verifyHotp(config, state, "755224", now).verdict.kind, "accepted");
  const fresh = sdk.verifyHotp(config, undefined, "755224", now);
  assert.equal(fresh.verdict.kind, "accepted");
  for (const k of ["nextCounter", "consecutiveFailures", "locked"]) assert.ok(k in fresh.state, `returned state has ${k}`);
});

test("classes only the SDK makes: `new` throws INVALID_STATE", () => {
  for (const name of ["Portal", "LinkRequest", "PendingLink", "StatusProbe"]) {
    throwsCode(() => new sdk[name](), "INVALID_STATE", `new ${name}()`);
  }
});

test("the clock: Date.now() and new Date() alike; seconds by mistake are INVALID_TIME", () => {
  // Epoch milliseconds and a Date give the same codes.
  assert.equal(sdk.totp(KEY, 59_000, 30, 8), "94287082");
  assert.equal(sdk.totp(KEY, new Date(59_000), 30, 8), "94287082");
  assert.equal(sdk.totp(KEY, 59_999, 30, 8), "94287082"); // sub-second parts are dropped
  // A whole link with Date.now() and one with new Date().
  for (const clock of [() => Date.now(), () => new Date()]) {
    const before = Date.now();
    const { portal, offer, device, fin, deviceRow } = linked(clock());
    assert.ok(offer.expiresAt >= before + 299_000 && offer.expiresAt <= Date.now() + 301_000, `${offer.expiresAt}`);
    assert.equal(offer.expiresAt % 1000, 0);
    const info = device.scanLinkQr(portal.createOffer("bob", {}, clock()).qrText, clock(), portal.publicKey());
    assert.equal(info.portalName, "Example Bank");
    assert.equal(typeof info.expiresAt, "number");
    const code = device.code(fin.state, { kind: "passcode", passcode: "493817" }, clock());
    assert.equal(portal.verifyDeviceCode(deviceRow, code, clock()).verdict.kind, "accepted");
    const probe = device.statusRequest(fin.state, clock());
    const answer = portal.answerStatus(probe.request(), { device: deviceRow }, clock());
    assert.equal(probe.read(answer), "active");
    const secret = sdk.newOtpSecret();
    const check = sdk.verifyTotp({ secret }, undefined, sdk.totp(secret, clock()), clock());
    assert.equal(check.verdict.kind, "accepted");
  }
  // Unix seconds where milliseconds are expected: a time in 1970.
  throwsCode(() => sdk.Portal.generate("B").createOffer("anna", {}, Math.floor(Date.now() / 1000)), "INVALID_TIME");
});

test("every throw of every export is a TesseraError with a code from errorCodes()", () => {
  const now = Date.now();
  const w = linked(now);
  // A pending link not finished yet (linked() finished its own).
  w.pending = w.device.startLink(w.offer.qrText, { deviceName: "P", passcode: "493817" }, null, now);
  const challenge = w.portal.createChallenge([w.deviceRow], TRANSACTION, {}, now);
  const signed = w.device.signChallenge(w.fin.state, challenge.qrText, PASSCODE, now);
  const a = activationStarted(now);
  const codes = new Set(sdk.errorCodes());
  const values = [undefined, null, true, 0, -1, 1.5, NaN, 2 ** 53, now, new Date(now), new Date(NaN), "", "x",
    "\u{1F600}", "TS:", "493817", 10n, Symbol("s"), {}, [], () => {}, new Uint8Array(0), new Uint8Array(32),
    new Uint8Array(300).fill(255), new Uint16Array(4), w.offer.qrText, w.pending.request(), w.answer.answer,
    w.fin.state, w.pendingRow, w.deviceRow, w.offer.change.writes[0].row, { secret: KEY }, { kind: "passcode", passcode: "1" },
    { offer: w.offer.change.writes[0].row, deviceKeySeen: false }, { device: w.deviceRow },
    "otpauth://totp/a?secret=AAAAAAAAAAAAAAAAAAAAAAAAAA", "OCRA-1:HOTP-SHA1-6:QN08", challenge.qrText,
    challenge.change.writes[0].row, [w.deviceRow], TRANSACTION, { kind: "login" }, { digits: 8 }, signed.answer,
    signed.state, "12345678", a.file, a.made.state, a.made.factoryRecord, a.start.qrText, a.authRow, a.orderRow,
    a.activationRow, ACTIVATION, ["TS00012345"], "TS00012345", "271828", a.order.initialPassword];
  let calls = 0;
  const call = (what, fn) => {
    calls++;
    try {
      fn();
    } catch (e) {
      assert.ok(sdk.isTesseraError(e) && codes.has(e.code), `${what}: ${e && e.stack ? e.stack : String(e)}`);
    }
  };
  const pick = (i) => values[i % values.length];
  // `init` (and its `default` alias) returns a promise: its junk arguments are tested on their own.
  const fns = Object.entries(sdk).filter(([name, f]) => typeof f === "function" && !isClass(f) &&
    name !== "init" && name !== "default");
  for (const [name, fn] of fns) {
    for (let i = 0; i < values.length; i++) {
      for (let j = 0; j < values.length; j++) call(name, () => fn(values[i], values[j], pick(i + j), pick(i * j), pick(i + 3)));
    }
  }
  const probe = w.device.statusRequest(w.fin.state, now);
  const objects = { Device: w.device, Portal: w.portal, PendingLink: w.pending, LinkRequest: w.request, StatusProbe: probe,
    OfflineAuthenticator: a.token, "Portal (of the activation rows)": a.portal };
  for (const [cls, obj] of Object.entries(objects)) {
    const methods = Object.getOwnPropertyNames(Object.getPrototypeOf(obj))
      .filter((m) => !["constructor", "free", "__destroy_into_raw"].includes(m)
        && typeof Object.getOwnPropertyDescriptor(Object.getPrototypeOf(obj), m).value === "function");
    for (const m of methods) {
      for (let i = 0; i < values.length; i++) {
        for (let j = 0; j < values.length; j++) {
          const args = [values[i], values[j], pick(i + j), pick(i * j), pick(i + 5)];
          call(`${cls}.${m}`, () => obj[m](...args));
        }
      }
    }
  }
  for (const v of values) {
    call("new Device", () => new sdk.Device(v));
    call("new OfflineAuthenticator", () => new sdk.OfflineAuthenticator(v));
    call("Portal.generate", () => sdk.Portal.generate(v));
    for (const v2 of values) call("Portal.fromSecret", () => sdk.Portal.fromSecret(v, v2));
  }
  assert.ok(calls > 20_000, `${calls}`);
  // Still healthy afterwards.
  assert.equal(sdk.totp(KEY, 59_000, 30, 8), "94287082");
  assert.equal(linked().deviceRow.status, "active");
});

test("a caller's own exception (a throwing getter or Proxy trap) propagates as itself; the module stays usable", () => {
  const mine = new Error("mine");
  // Records are read from their own properties: the trap that says which
  // exist throws first, then (for an own getter) the getter.
  const trap = new Proxy({}, { get() { throw mine; }, getOwnPropertyDescriptor() { throw mine; } });
  const getter = { get secret() { throw mine; } };
  const keysTrap = new Proxy({}, { ownKeys() { throw mine; } });
  const itemTrap = new Proxy([{}], { get: (t, k) => { if (k === "0") throw mine; return Reflect.get(t, k); } });
  const portal = sdk.Portal.generate("B");
  for (const fn of [() => sdk.verifyTotp(getter, undefined, "123456", Date.now()), () => sdk.formatOtpauthUri(trap),
    () => portal.createOffer("a", trap, Date.now()), () => portal.createOffer("a", { rules: keysTrap }, Date.now()),
    () => portal.createChallenge(itemTrap, { kind: "login" }, {}, Date.now())]) {
    assert.throws(fn, (e) => e === mine);
  }
  // Where only the type matters, a Proxy is never looked into: INVALID_INPUT.
  for (const fn of [() => sdk.base32Decode(trap), () => sdk.hotp(KEY, trap), () => sdk.totp(KEY, trap),
    () => new sdk.Device(trap), () => sdk.parseOtpauthUri(trap)]) {
    throwsCode(fn, "INVALID_INPUT");
  }
  assert.equal(sdk.totp(KEY, 59_000, 30, 8), "94287082");
  assert.equal(linked().deviceRow.status, "active");
  assert.ok(portal.createOffer("a", {}, Date.now()).qrText.length > 0, "the portal that read the traps still works");
});

// A hostile or odd value must never leave the called object borrowed (an
// exception unwinding through wasm would: it could then never be freed,
// nor its keys zeroized), nor be read as something it is not.
test("odd values: fake Dates and Uint8Arrays, revoked Proxies, detached buffers are refused and the object can still be freed", () => {
  const now = Date.now();
  const mine = new Error("mine");
  const revoked = () => { const r = Proxy.revocable({}, {}); r.revoke(); return r.proxy; };
  const detached = () => { const b = new Uint8Array(32); structuredClone(b.buffer, { transfer: [b.buffer] }); return b; };
  const { deviceRow } = linked(now);
  const cases = {
    "a keys trap": [(p) => p.createOffer("a", { rules: new Proxy({}, { ownKeys() { throw mine; } }) }, now), mine],
    "a Date without a time": [(p) => p.createOffer("a", {}, Object.create(Date.prototype)), "INVALID_INPUT"],
    "a revoked Proxy as a string": [(p) => p.createOffer(revoked(), {}, now), "INVALID_INPUT"],
    "a revoked Proxy as a record": [(p) => p.createOffer("a", revoked(), now), TypeError],
    "a Uint8Array without bytes": [(p) => p.renameDevice({ ...deviceRow, sealed: Object.create(Uint8Array.prototype) }, "N", now), "INVALID_INPUT"],
    "a detached Uint8Array": [(p) => p.renameDevice({ ...deviceRow, sealed: detached() }, "N", now), TypeError],
    "an array item trap": [(p) => p.createChallenge(new Proxy([deviceRow], { get: (t, k) => { if (k === "0") throw mine; return Reflect.get(t, k); } }), { kind: "login" }, {}, now), mine],
  };
  for (const [what, [call, expected]] of Object.entries(cases)) {
    const portal = sdk.Portal.generate("B");
    let caught;
    try { call(portal); } catch (e) { caught = e; }
    if (typeof expected === "string") {
      assert.ok(sdk.isTesseraError(caught) && caught.code === expected, `${what}: ${caught}`);
    } else if (expected === mine) {
      assert.equal(caught, mine, `${what}: ${caught}`);
    } else {
      assert.ok(caught instanceof expected, `${what}: ${caught}`); // the engine's own refusal, rethrown as it is
    }
    assert.ok(portal.createOffer("a", {}, now).qrText.length > 0, `${what}: the portal still works`);
    portal.free(); // throws "attempted to take ownership … while it was borrowed" after an uncaught exception
  }
  // A Uint8Array subclass that lies about its length gives its real bytes.
  class Liar extends Uint8Array { get length() { return 2 ** 31; } }
  const key = Liar.from(KEY);
  assert.equal(sdk.hotp(key, 0), sdk.hotp(KEY, 0));
});

test("records: null is no default, inherited and Map entries are no fields, typed arrays are no records", () => {
  const now = Date.now();
  const portal = sdk.Portal.generate("B");
  const msg = (fn) => throwsCode(fn, "INVALID_INPUT").message;
  // `null` for a defaulted flag must not turn into its default (`true` here: biometrics allowed).
  assert.equal(msg(() => portal.createOffer("a", { rules: { biometricsAllowed: null } }, now)),
    "settings.rules.biometricsAllowed: must be a boolean, not null");
  assert.equal(msg(() => portal.createOffer("a", { ttlSeconds: null, deviceCodes: { digits: null } }, now)).split(":")[0],
    "settings.deviceCodes.digits");
  // An Option takes null as None.
  assert.ok(portal.createOffer("a", { ttlSeconds: null }, now).qrText.length > 0);
  // A polluted Object.prototype is not read into a record.
  Object.prototype.ttlSeconds = "polluted";
  try {
    assert.ok(portal.createOffer("a", {}, now).qrText.length > 0);
  } finally {
    delete Object.prototype.ttlSeconds;
  }
  const offer = portal.createOffer("a", {}, now);
  const device = new sdk.Device(sdk.newStorageKey());
  assert.match(msg(() => device.startLink(offer.qrText, Object.create({ deviceName: "P", passcode: "493817" }), null, now)),
    /^choices: missing field `deviceName`$/);
  assert.equal(msg(() => portal.createOffer("a", new Map([["ttlSeconds", 60]]), now)), "settings: must be an object, not a Map");
  assert.equal(msg(() => portal.createOffer("a", new Uint8Array(8), now)), "settings: must be an object, not a typed array");
  // A key name is repeated shortened and without control characters.
  const long = `x\u0000${"y".repeat(100)}`;
  assert.equal(msg(() => portal.createOffer("a", { [long]: 1 }, now)), `settings: unknown field \`x?${"y".repeat(38)}…\``);
});

test("records cross as plain objects with Uint8Array bytes and millisecond times", () => {
  const { offer, fin, deviceRow } = linked();
  const row = offer.change.writes[0].row;
  assert.ok(row.sealed instanceof Uint8Array && fin.state instanceof Uint8Array && deviceRow.sealed instanceof Uint8Array);
  assert.equal(Object.getPrototypeOf(row), Object.prototype);
  assert.equal(offer.change.writes[0].expectedVersion, undefined); // an insert
  assert.ok(Number.isSafeInteger(row.expiresAt) && row.expiresAt > Date.UTC(2020, 0));
  const k = sdk.parseOtpauthUri("otpauth://totp/ACME:john?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME");
  assert.deepEqual(k.kind, { type: "totp", periodSeconds: 30 });
  assert.ok(k.secret instanceof Uint8Array);
  assert.deepEqual(sdk.parseOtpauthUri(sdk.formatOtpauthUri(k)), k);
  assert.equal(sdk.base32Encode(KEY), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
  assert.deepEqual(sdk.base32Decode("gezd gnbv gy3t qojq gezd gnbv gy3t qojq"), KEY);
  assert.equal(sdk.newOtpSecret().length, 20);
  assert.equal(sdk.newStorageKey().length, 32);
  assert.notDeepEqual(sdk.newStorageKey(), sdk.newStorageKey());
  assert.match(sdk.qrSvg(offer.qrText), /^<svg[^>]*>/);
});

// The scenario files test challenge/response in depth; this is the one
// flow through the JS API itself, records and all, as a portal and an app see it.
test("a transaction approval on both sides: shown as asked, typed code accepted once, another amount's code INVALID_ANSWER, signed answer accepted", () => {
  const now = Date.now();
  const { portal, device, fin, deviceRow } = linked(now);
  const db = rowStore();
  db.apply({ writes: [{ kind: "device", row: deviceRow }] });
  const devices = () => [db.get("device", deviceRow.deviceId)];

  // Portal: the challenge QR code and the row it inserts.
  const c1 = portal.createChallenge(devices(), TRANSACTION, undefined, new Date(now));
  db.apply(c1.change);
  assert.match(c1.qrText, /^TS:/);
  assert.match(sdk.qrSvg(c1.qrText), /^<svg[^>]*>/);
  assert.deepEqual(c1.change.events, []);
  const [write] = c1.change.writes;
  assert.equal(write.kind, "challenge");
  assert.equal(write.expectedVersion, undefined); // an insert
  assert.deepEqual({ ...write.row, sealed: undefined }, { challengeId: c1.challengeId, account: "anna@example.org",
    deviceIds: [deviceRow.deviceId], kind: "transaction", expiresAt: c1.expiresAt, status: "open", version: 1, sealed: undefined });
  assert.ok(write.row.sealed instanceof Uint8Array);
  assert.equal(c1.expiresAt, Math.floor(now / 1000) * 1000 + 300_000);

  // Device: exactly what is approved, then the code for the passcode.
  const view = device.readChallenge(fin.state, c1.qrText, now);
  assert.deepEqual(view, { challengeId: c1.challengeId, portalName: "Example Bank", account: "anna@example.org",
    approval: TRANSACTION, expiresAt: c1.expiresAt, digits: 8 });
  const code = device.answerChallenge(fin.state, c1.qrText, PASSCODE, now);
  assert.match(code, /^[0-9]{8}$/);

  // Portal: accepted, by that device, once.
  const ok = portal.verifyAnswer(db.get("challenge", c1.challengeId), devices(), code, now);
  assert.deepEqual(ok.verdict, { kind: "accepted" });
  assert.equal(ok.deviceId, deviceRow.deviceId);
  db.apply(ok.change);
  assert.deepEqual(ok.change.events.map((e) => [e.kind, e.challengeId, e.deviceId]),
    [["challengeAnswered", c1.challengeId, deviceRow.deviceId]]);
  assert.equal(db.get("challenge", c1.challengeId).status, "answered");
  const again = portal.verifyAnswer(db.get("challenge", c1.challengeId), devices(), code, now);
  assert.equal(again.verdict.code, "TOKEN_ALREADY_USED");

  // A tampered amount: the phone was shown 9125.50 (a look-alike challenge) and
  // its code is typed for the real 125.50: refused, without saying why, and counted.
  const real = portal.createChallenge(devices(), TRANSACTION, {}, now);
  db.apply(real.change);
  const fake = portal.createChallenge(devices(), { ...TRANSACTION, amount: "9125.50" }, {}, now);
  db.apply(fake.change);
  assert.equal(device.readChallenge(fin.state, fake.qrText, now).approval.amount, "9125.50");
  const fakeCode = device.answerChallenge(fin.state, fake.qrText, PASSCODE, now);
  const refused = portal.verifyAnswer(db.get("challenge", real.challengeId), devices(), fakeCode, now);
  assert.equal(refused.verdict.kind, "refused");
  assert.equal(refused.verdict.code, "INVALID_ANSWER");
  assert.equal(refused.deviceId, undefined);
  assert.ok(refused.change.writes.length > 0, "a wrong answer is counted");
  db.apply(refused.change);

  // A signed answer (a device with network) to the real challenge: state first, then the answer.
  const signed = device.signChallenge(fin.state, real.qrText, PASSCODE, now);
  assert.ok(signed.state instanceof Uint8Array && typeof signed.answer === "string");
  assert.equal(sdk.signedAnswerChallengeId(signed.answer), real.challengeId);
  const signedOk = portal.verifyAnswer(db.get("challenge", sdk.signedAnswerChallengeId(signed.answer)), devices(),
    signed.answer, now);
  assert.deepEqual(signedOk.verdict, { kind: "accepted" });
  assert.equal(signedOk.deviceId, deviceRow.deviceId);
  db.apply(signedOk.change);
  assert.equal(device.account(signed.state).deviceId, deviceRow.deviceId);
  throwsCode(() => sdk.signedAnswerChallengeId(code), "MALFORMED_MESSAGE");
});

// The scenario files test activation in depth (every step, wrong entries,
// locks, QR attacks); this is the one activation through the JS API itself,
// records and all, as a portal and an app acting as the device see it.
test("an offline authenticator's activation on both sides: import, order, every step, status, password, recovery code", () => {
  const now = Date.now();
  const portal = sdk.Portal.generate("Example Bank");
  const db = rowStore();

  // The app acting as the device, and the maker's file.
  const token = new sdk.OfflineAuthenticator(sdk.newStorageKey());
  const made = token.create("TS00012345");
  assert.ok(made.state instanceof Uint8Array);
  assert.match(made.factoryRecord, /^TS00012345 [0-9a-f]+$/); // a line of the factory file (docs/PROTOCOL.md)
  let state = made.state;
  const fresh = token.info(state);
  assert.equal(fresh.serial, "TS00012345");
  assert.equal(fresh.userId ?? null, null);
  assert.equal(fresh.deviceId ?? null, null);
  const file = `${FACTORY_HEADER}\n# one device\n${made.factoryRecord}\n`;
  assert.deepEqual(sdk.factoryFileSerials(file), ["TS00012345"]);
  throwsCode(() => sdk.factoryFileSerials("tessera-factory-records v2\n"), "UNSUPPORTED_VERSION");

  // Portal: import (an insert per device), then the same file again is refused whole.
  const imported = portal.importDevices(file, [], new Date(now));
  assert.deepEqual(imported.serials, ["TS00012345"]);
  db.apply(imported.change);
  const [authWrite] = imported.change.writes;
  assert.equal(authWrite.kind, "authenticator");
  assert.equal(authWrite.expectedVersion, undefined);
  assert.equal(authWrite.row.status, "inStock");
  assert.equal(authWrite.row.importedAt, Math.floor(now / 1000) * 1000);
  assert.ok(authWrite.row.sealed instanceof Uint8Array);
  throwsCode(() => portal.importDevices(file, sdk.factoryFileSerials(file), now), "DUPLICATE_RECORD");

  // The order: the letter's user ID and initial password; the device is assigned.
  const order = portal.orderDevice("anna@example.org", "271828", { ...db.get("authenticator", "TS00012345"), _id: "db-1" },
    ACTIVATION, now);
  db.apply(order.change);
  assert.match(order.userId, /^[0-9]{10}$/);
  assert.match(order.initialPassword, /^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$/);
  assert.equal(order.serial, "TS00012345");
  assert.equal(order.expiresAt, Math.floor(now / 1000) * 1000 + 90 * 86_400_000);
  assert.equal(db.get("authenticator", "TS00012345").status, "assigned");
  assert.equal(db.get("order", order.userId).status, "ordered");
  const rows = (id) => {
    const activation = db.get("activation", id);
    return [activation, db.get("order", activation.userId), db.get("authenticator", activation.serial),
      db.get("credentials", activation.account) ?? null];
  };

  // The activation: one entry per step, the device's codes typed from its screen.
  const start = portal.startActivation(db.get("order", order.userId), db.get("authenticator", "TS00012345"), ACTIVATION, now);
  db.apply(start.change);
  assert.deepEqual(start.verdict, { kind: "accepted" });
  assert.equal(start.step, "deviceCode");
  assert.match(start.qrText, /^TS:/);
  assert.match(sdk.qrSvg(start.qrText), /^<svg[^>]*>/);
  const id = start.activationId;
  const row = db.get("activation", id);
  assert.deepEqual({ ...row, sealed: undefined }, { activationId: id, userId: order.userId, account: "anna@example.org",
    serial: "TS00012345", step: "deviceCode", status: "open", failures: 0, expiresAt: Math.floor(now / 1000) * 1000 + 1_800_000,
    version: 1, sealed: undefined });
  const next = (input, t = now) => {
    const u = portal.activationNext(...rows(id), input, ACTIVATION, t);
    db.apply(u.change);
    return u;
  };
  const scan = (qrText) => {
    const screen = token.scan(state, qrText);
    assert.ok(screen.state instanceof Uint8Array);
    state = screen.state;
    return screen;
  };
  const s1 = scan(start.qrText);
  assert.equal(s1.kind, "deviceCode");
  assert.match(s1.code, /^[0-9]{10}$/);
  assert.equal(s1.portalName, "Example Bank");
  // A wrong entry is a verdict with a change to store (counted), not an exception.
  const wrong = next("0000000000");
  assert.deepEqual([wrong.verdict.kind, wrong.verdict.code, wrong.step], ["refused", "DEVICE_CODE_MISMATCH", "deviceCode"]);
  assert.equal(wrong.qrText, start.qrText);
  assert.equal(db.get("activation", id).failures, 1);
  assert.equal(next(s1.code).step, "activationCode");
  // The same entry again (a double submit): a repeat, nothing to store, not judged as the activation code.
  const twice = next(s1.code);
  assert.deepEqual([twice.verdict, twice.step, twice.change.writes.length], [{ kind: "repeated" }, "activationCode", 0]);
  const bind = next("271828");
  assert.equal(bind.step, "bindingCode");
  // After a reload: where it stands, with the same QR code and nothing to store.
  const status = portal.activationStatus({ ...db.get("activation", id), _id: "db-2" });
  assert.deepEqual([status.verdict.kind, status.activationId, status.step, status.qrText, status.change.writes.length,
    status.change.events.length], ["accepted", id, "bindingCode", bind.qrText, 0, 0]);
  const s2 = scan(bind.qrText);
  assert.deepEqual([s2.kind, s2.userId, s2.replaced], ["bindingCode", order.userId, false]);
  assert.match(s2.code, /^[0-9]{8}$/);
  assert.equal(next(s2.code).step, "serial");
  const test = next("ts0001-2345");  // case, spaces and dashes are ignored
  assert.equal(test.step, "testOtp");
  const s3 = scan(test.qrText);
  assert.deepEqual([s3.kind, s3.approval], ["challenge", { kind: "login" }]);
  assert.equal(next(s3.code).step, "initialPassword");
  assert.equal(next(order.initialPassword.toLowerCase()).step, "newPassword");
  const weak = next("aaaaaaaaaaaaaaaa");
  assert.deepEqual([weak.verdict.code, weak.change.writes.length], ["PASSWORD_POLICY", 0]);
  const done = next("correct horse battery staple".normalize("NFKC"));
  assert.deepEqual(done.verdict, { kind: "accepted" });
  assert.equal(done.step, "done");
  assert.equal(done.qrText, undefined);
  assert.equal(done.recoveryCodes.length, 10);
  for (const c of done.recoveryCodes) assert.match(c, /^[A-Z2-9]{4}(-[A-Z2-9]{4}){3}$/);
  assert.equal(done.usableFrom, Math.floor(now / 1000) * 1000 + 4 * 3_600_000);
  const [event] = done.change.events;
  assert.deepEqual({ ...event, at: undefined }, { kind: "deviceActivated", account: "anna@example.org", deviceId: done.deviceId,
    serial: "TS00012345", usableFrom: done.usableFrom, at: undefined });
  assert.deepEqual(Object.fromEntries(done.change.writes.map((w) => [w.kind, w.row.status ?? null])),
    { activation: "done", order: "activated", authenticator: "active", credentials: null, device: "active" });
  const device = db.get("device", done.deviceId);
  assert.deepEqual([device.serial, device.usableFrom, device.account], ["TS00012345", done.usableFrom, "anna@example.org"]);
  const bound = token.info(state);
  assert.deepEqual([bound.serial, bound.userId, bound.portalName, bound.deviceId],
    ["TS00012345", order.userId, "Example Bank", done.deviceId]);

  // The account's password and recovery codes.
  const creds = () => db.get("credentials", "anna@example.org");
  assert.deepEqual([creds().recoveryCodesLeft, creds().locked], [10, false]);
  const badPassword = portal.verifyPassword(creds(), "correct horse battery stable", now);
  assert.deepEqual([badPassword.verdict.code, badPassword.recoveryCodesLeft], ["PASSWORD_MISMATCH", 10]);
  db.apply(badPassword.change);
  const stored = (result) => {
    db.apply(result.change);
    return result;
  };
  assert.deepEqual(stored(portal.verifyPassword(creds(), "correct horse battery staple", new Date(now))).verdict,
    { kind: "accepted" });
  const redeemed = stored(portal.redeemRecoveryCode({ ...creds(), _id: "db-3" }, done.recoveryCodes[3], now));
  assert.deepEqual([redeemed.verdict.kind, redeemed.recoveryCodesLeft, creds().recoveryCodesLeft], ["accepted", 9, 9]);
  const again = portal.redeemRecoveryCode(creds(), done.recoveryCodes[3], now);
  assert.equal(again.verdict.code, "RECOVERY_CODE_MISMATCH");
  // The first activation's credentials are in force at once: none wait to be cancelled.
  assert.equal(creds().pendingFrom, undefined);
  throwsCode(() => portal.cancelPendingCredentials(creds(), now), "INVALID_STATE");
  // An activation that is done takes no more entries.
  throwsCode(() => portal.startActivation(db.get("order", order.userId), db.get("authenticator", "TS00012345"), ACTIVATION,
    now), "INVALID_STATE");
});

// The host layer is the API: every function and method it exports (for
// UniFFI: `uniffi::export`) has its shell here, or is named below as left
// out on purpose. A new host call without a shell fails this test.
test("every exported tessera-host call has a shell", () => {
  const LEFT_OUT = {
    "ErrorCode.code_string": "codes are strings in JS",
    "ErrorCode.summary": "not needed: the thrown error's message",
    "Verdict.check": "a verdict is a plain object in JS",
    "new_verifier_state": "a new verifier's state is `undefined`",
  };
  const camel = (n) => n.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
  const dir = new URL("../../host/src/", import.meta.url);
  const found = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".rs"))) {
    const lines = readFileSync(new URL(file, dir), "utf8").split("\n");
    lines.forEach((line, i) => {
      if (!/^#\[cfg_attr\(feature = "uniffi", uniffi::export\)\]$/.test(line)) return;
      const head = lines[i + 1];
      const fn = head.match(/^pub fn (\w+)/);
      if (fn) {
        found.push([null, fn[1]]);
        return;
      }
      const impl = head.match(/^impl (\w+) \{$/) ?? assert.fail(`${file}:${i + 2}: unexpected ${head}`);
      for (let j = i + 2; j < lines.length && lines[j] !== "}"; j++) {
        const m = lines[j].match(/^    pub fn (\w+)/);
        if (m) found.push([impl[1], m[1]]);
      }
    });
  }
  const missing = [];
  for (const [cls, name] of found) {
    const label = cls ? `${cls}.${name}` : name;
    if (Object.hasOwn(LEFT_OUT, label)) continue;
    let ok;
    if (!cls) ok = typeof sdk[camel(name)] === "function";
    else if (name === "new") ok = isClass(sdk[cls]);
    else ok = isClass(sdk[cls]) && (camel(name) in sdk[cls].prototype || camel(name) in sdk[cls]);
    if (!ok) missing.push(label);
  }
  assert.deepEqual(missing, [], `host calls without a shell in bindings-wasm/src/lib.rs: ${missing.join(", ")}`);
  assert.ok(found.length > 60, `${found.length} host calls found`);
  for (const label of Object.keys(LEFT_OUT)) {
    assert.ok(found.some(([c, n]) => (c ? `${c}.${n}` : n) === label), `LEFT_OUT names ${label}, which the host no longer exports`);
  }
});

test("README: every call it names exists", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const w = linked();
  const objects = { portal: w.portal, device: w.device, pendingLink: w.pending, pending: w.pending, request: w.request,
    linkRequest: w.request, probe: w.device.statusRequest(w.fin.state, Date.now()),
    token: new sdk.OfflineAuthenticator(sdk.newStorageKey()) };
  for (const c of ["Portal", "Device", "OfflineAuthenticator", "PendingLink", "LinkRequest", "StatusProbe"]) {
    objects[c] = { ...Object.fromEntries(Object.getOwnPropertyNames(sdk[c]).map((k) => [k, 1])),
      ...Object.fromEntries(Object.getOwnPropertyNames(sdk[c].prototype).map((k) => [k, 1])) };
  }
  let checked = 0;
  const re = new RegExp(`(?<![.\\w])(${Object.keys(objects).join("|")})\\.([a-zA-Z]+)\\b`, "g");
  for (const [, obj, member] of readme.matchAll(re)) {
    assert.ok(member in objects[obj], `README: ${obj}.${member} does not exist`);
    checked++;
  }
  // Bare calls (not methods of something else): the SDK's, or the example's own helpers.
  for (const [, name] of readme.matchAll(/(?<![.\w])([a-z][a-zA-Z0-9]+)\(/g)) {
    if (["fetch", "init", "require", "call", "read", "change", "show", "save", "mail", "if", "for", "async"].includes(name)) continue;
    const known = name in sdk || Object.values(objects).some((o) => name in o);
    assert.ok(known, `README: ${name}() is not in the API`);
    checked++;
  }
  assert.ok(checked > 50, `${checked}`);
  for (const old of ["TesseraPortal", "TesseraDevice", "linkQrSvg", "totpVerify", "hotpVerify", "verifyDeviceTotp",
    "readStatusAnswer", "openStatusRequest", "refuse("]) {
    assert.ok(!readme.includes(old), `README still names ${old}`);
  }
});

test("README: the write kinds and event kinds it lists are those of the .d.ts", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8").replace(/\s+/g, " ");
  const union = (type) => {
    const line = dts().split("\n").find((l) => l.startsWith(`export type ${type} = `));
    assert.ok(line, `.d.ts: no type ${type}`);
    return [...line.matchAll(/\{ kind: "(\w+)"/g)].map((m) => m[1]);
  };
  const listed = (re) => {
    const m = readme.match(re);
    assert.ok(m, `README: no list ${re}`);
    return [...m[1].matchAll(/"(\w+)"/g)].map((x) => x[1]);
  };
  assert.deepEqual(listed(/`RecordWrite` `\{ kind: ((?:"\w+"(?: \| )?)+), row/), union("RecordWrite"));
  assert.deepEqual(listed(/events \(`\{ kind: ((?:"\w+"(?: \| )?)+), account/), union("PortalEvent"));
  assert.ok(union("PortalEvent").includes("deviceCloneSuspected"));
});

test("TypeScript: a small .ts file type-checks against the .d.ts", (t) => {
  const cache = process.env.TESSERA_CACHE || join(homedir(), ".cache/tessera");
  let tsc;
  for (const base of [join(cache, "npm") + sep, new URL("../", import.meta.url).pathname]) {
    try {
      tsc = createRequire(base).resolve("typescript/bin/tsc");
      break;
    } catch {
      // not there
    }
  }
  if (!tsc) {
    t.skip("typescript is not installed: run scripts/setup.sh (it installs typescript@5 in the tool cache)");
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "tessera-ts-"));
  try {
    const types = new URL("../pkg/index.js", import.meta.url).pathname;
    writeFileSync(join(dir, "use.mts"), `
import { Portal, Device, newStorageKey, isTesseraError, errorCodes, signedAnswerChallengeId, type LinkOffer, type Verdict,
  type TesseraErrorCode, type Approval, type ChallengeIssued, type ChallengeView, type SignedChallenge, type AnswerCheck,
  type StoredChallenge, OfflineAuthenticator, factoryFileSerials, type ActivationSettings, type ActivationUpdate,
  type AuthenticatorScreen, type CredentialCheck, type StoredOrder, type StoredActivation, type StoredAuthenticator,
  type StoredCredentials } from ${JSON.stringify(types)};
import init, { totp } from ${JSON.stringify(types)};
await init();
console.log(totp(newStorageKey(), Date.now()));
{
  using scoped = new Device(newStorageKey());
  console.log(scoped.account);
}
const portal = Portal.generate("Example Bank");
const offer: LinkOffer = portal.createOffer("anna", {}, Date.now());
const device = new Device(newStorageKey());
const p = device.startLink(offer.qrText, { deviceName: "Pixel", passcode: "493817" }, null, new Date(), null);
const v: Verdict = portal.openLinkRequest(p.request()).accept({ deviceKeySeen: false }, Date.now()).verdict;
try { device.account(new Uint8Array(1)); } catch (e) { if (isTesseraError(e)) { const c: TesseraErrorCode = e.code; console.log(c, v.kind, errorCodes().length); } }
const approval: Approval = { kind: "transaction", amount: "125.50", currency: "EUR", payee: "ACME Energy Ltd" };
const issued: ChallengeIssued = portal.createChallenge([], approval, { digits: 8 }, Date.now());
const view: ChallengeView = device.readChallenge(new Uint8Array(1), issued.qrText, new Date());
if (view.approval.kind === "transaction") console.log(view.approval.amount, view.approval.text?.length);
const signed: SignedChallenge = device.signChallenge(new Uint8Array(1), issued.qrText, { kind: "passcode", passcode: "493817" }, Date.now());
const w = issued.change.writes[0];
if (w.kind === "challenge") {
  const check: AnswerCheck = portal.verifyAnswer(w.row, [], signed.answer, Date.now());
  const row: StoredChallenge = w.row;
  console.log(check.verdict.kind, check.deviceId, row.deviceIds, signedAnswerChallengeId(signed.answer));
}
const token = new OfflineAuthenticator(newStorageKey());
const made = token.create("TS00012345");
const file = \`tessera-factory-records v1\\n\${made.factoryRecord}\\n\`;
const settings: ActivationSettings = { hashIterations: 10_000, blocklist: ["examplebank"] };
const imported = portal.importDevices(file, factoryFileSerials(file).filter((s) => s === "held"), new Date());
let auth: StoredAuthenticator | undefined;
let order: StoredOrder | undefined;
let activation: StoredActivation | undefined;
let credentials: StoredCredentials | null = null;
for (const x of imported.change.writes) {
  if (x.kind === "authenticator") auth = x.row;
  else if (x.kind === "order") order = x.row;
  else if (x.kind === "activation") activation = x.row;
  else if (x.kind === "credentials") credentials = x.row;
}
if (auth && order && activation) {
  const ordered = portal.orderDevice("anna", "271828", auth, settings, Date.now());
  console.log(ordered.userId, ordered.initialPassword, ordered.expiresAt + 1);
  const started: ActivationUpdate = portal.startActivation(order, auth, settings, Date.now());
  const screen: AuthenticatorScreen = token.scan(made.state, started.qrText ?? "");
  const u: ActivationUpdate = portal.activationNext(activation, order, auth, credentials, screen.code, null, new Date());
  if (u.verdict.kind === "refused") console.log(u.verdict.code, u.verdict.detail);
  if (u.step === "done") console.log(u.recoveryCodes?.length, u.deviceId, u.usableFrom);
  console.log(portal.activationStatus(activation).step, token.info(screen.state).deviceId, screen.approval?.kind);
  if (credentials) {
    const c: CredentialCheck = portal.verifyPassword(credentials, "correct horse", Date.now());
    console.log(c.recoveryCodesLeft, portal.redeemRecoveryCode(credentials, "ABCD", Date.now()).verdict.kind);
  }
}
for (const e of imported.change.events) {
  if (e.kind === "deviceActivated") console.log(e.serial, e.usableFrom);
  if (e.kind === "orderLocked") console.log(e.userId);
}
`);
    const check = (lib) => {
      try {
        execFileSync(process.execPath, [tsc, "--noEmit", "--strict", "--module", "nodenext", "--target", "es2022",
          "--lib", lib, join(dir, "use.mts")], { stdio: "pipe" });
        return "";
      } catch (e) {
        return `${e.stdout}${e.stderr}` || String(e);
      }
    };
    // The declarations pass without skipLibCheck given `esnext.disposable`
    // (the classes' [Symbol.dispose]); without it they do not (the README
    // says so).
    assert.equal(check("es2022,esnext.disposable,dom"), "");
    assert.match(check("es2022,dom"), /Property 'dispose' does not exist on type 'SymbolConstructor'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// What a browser downloads: the .wasm and the JS glue (tessera_wasm.js +
// index.js + source.js), gzipped (build.sh prints the same total). Issue 11's target is
// 100 KB; the package is over twice that (253 KB on 2026-11-30 with the
// derived codec of tessera_host::js, 298 KB before with serde-wasm-bindgen:
// the portal, device, challenge and activation flows; see docs/DESIGN.md),
// so this is a ceiling that stops growth, to be lowered as the package
// shrinks, not the target.
const SIZE_TARGET = 100_000;
const SIZE_CEILING = 260_000;

test(`size: .wasm + JS glue gzipped at most ${SIZE_CEILING} bytes (target ${SIZE_TARGET}, not met yet)`, (t) => {
  // `gzip -9`, as build.sh measures (zlib's level 9 gives about 2% more).
  const pkg = (name) => readFileSync(new URL(`../pkg/${name}`, import.meta.url));
  const gz = (bytes) => execFileSync("gzip", ["-9", "-c"], { input: bytes, maxBuffer: 1 << 26 }).length;
  const wasms = readdirSync(new URL("../pkg/", import.meta.url)).filter((f) => f.endsWith(".wasm"));
  assert.deepEqual(wasms, ["tessera_wasm_bg.wasm"], "one .wasm");
  const wasm = gz(pkg("tessera_wasm_bg.wasm"));
  const glue = gz(Buffer.concat([pkg("tessera_wasm.js"), pkg("index.js"), pkg("source.js")]));
  const total = wasm + glue;
  t.diagnostic(`.wasm gzip ${wasm} + glue gzip ${glue} = ${total} bytes (target ${SIZE_TARGET}: ` +
    `${total <= SIZE_TARGET ? "met" : `${total - SIZE_TARGET} bytes over`})`);
  assert.ok(total <= SIZE_CEILING, `.wasm + glue is ${total} bytes gzipped, over the ceiling of ${SIZE_CEILING}`);
});
