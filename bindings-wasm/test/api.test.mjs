// The package itself: how it loads, what it exports, its TypeScript types,
// base32 and the random secret.
import test from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import * as sdk from "@tessera/sdk";

const require = createRequire(import.meta.url);
const PUBLIC = ["LinkRequest", "PendingLink", "StatusProbe", "TesseraDevice", "TesseraPortal", "base32Decode",
  "base32Encode", "errorCodes", "formatOtpauthUri", "hotp", "hotpResync", "hotpVerify", "linkQrSvg", "newOtpSecret",
  "newStorageKey", "ocra", "otpauthCode", "parseOtpauthUri", "totp", "totpVerify"];

test("the package name resolves to the Node build for import and require", () => {
  assert.match(fileURLToPath(import.meta.resolve("@tessera/sdk")), /bindings-wasm\/pkg\/node\/tessera_wasm\.js$/);
  assert.match(require.resolve("@tessera/sdk"), /bindings-wasm\/pkg\/node\/tessera_wasm\.js$/);
  const cjs = require("@tessera/sdk");
  assert.equal(cjs.hotp, sdk.hotp);
});

test("exports exactly the public API", () => {
  const names = Object.keys(sdk).filter((k) => k !== "default" && k !== "module.exports").sort();
  assert.deepEqual(names, PUBLIC);
});

test("errorCodes() lists the frozen table and the TypeScript union matches it", () => {
  const codes = sdk.errorCodes();
  assert.ok(Array.isArray(codes));
  assert.equal(new Set(codes).size, codes.length);
  for (const c of ["INVALID_INPUT", "INVALID_DIGITS", "INVALID_SECRET", "SECRET_TOO_SHORT", "INVALID_OCRA_SUITE",
    "OTP_REPLAYED", "LOCKED_OUT", "INTERNAL"]) {
    assert.ok(codes.includes(c), c);
  }
  for (const dir of ["node", "web"]) {
    const dts = readFileSync(new URL(`../pkg/${dir}/tessera_wasm.d.ts`, import.meta.url), "utf8");
    const union = dts.match(/export type TesseraErrorCode =([^;]*);/);
    assert.ok(union, `${dir}: TesseraErrorCode missing`);
    assert.deepEqual([...union[1].matchAll(/"([A-Z_]+)"/g)].map((m) => m[1]), codes, `${dir}: update src/lib.rs`);
  }
});

test("TypeScript declarations are typed, not any", () => {
  const dts = readFileSync(new URL("../pkg/node/tessera_wasm.d.ts", import.meta.url), "utf8");
  const want = [
    "export function hotp(secret: Uint8Array, counter: number, digits?: number, algorithm?: OtpAlgorithm): string;",
    "export function totp(secret: Uint8Array, time: number, period?: number, digits?: number, algorithm?: OtpAlgorithm): string;",
    "export function ocra(suite: string, key: Uint8Array, params: OcraParams): string;",
    "export function base32Encode(bytes: Uint8Array): string;",
    "export function base32Decode(text: string): Uint8Array;",
    "export function newOtpSecret(): Uint8Array;",
    "export function parseOtpauthUri(uri: string, allowShortSecret?: boolean): OtpAuthUri;",
    "export function formatOtpauthUri(uri: OtpAuthUriInit): string;",
    "export function otpauthCode(uri: string, time: number, allowShortSecret?: boolean): string;",
    "export function totpVerify(config: OtpVerifierConfig, code: string, time: number, state?: OtpVerifierState): OtpCheck;",
    "export function hotpVerify(config: OtpVerifierConfig, code: string, time: number, state?: OtpVerifierState): OtpCheck;",
    "export function errorCodes(): TesseraErrorCode[];",
    "export function newStorageKey(): Uint8Array;",
    "export function linkQrSvg(qrText: string): string;",
    // Linking: device side.
    "constructor(storageKey: Uint8Array);",
    "scanLinkQr(qrText: string, now: number, options?: ScanOptions): LinkOfferInfo;",
    "startLink(params: LinkStartParams): LinkStart;",
    "openPendingLink(sealed: Uint8Array): PendingLink;",
    "account(state: Uint8Array): LinkedAccount;",
    "totp(state: Uint8Array, unlock: Unlock, now: number): string;",
    "statusRequest(state: Uint8Array, now: number): StatusCheck;",
    "readStatusAnswer(state: Uint8Array, probe: StatusProbe, answer: string): LinkStatus;",
    "unlinkLocally(state: Uint8Array): LinkedAccount;",
    "sealed(): Uint8Array;",
    "finish(answer: string): LinkFinish;",
    "request(): string;",
    // Linking: portal side.
    "static generate(name: string): TesseraPortal;",
    "static fromSecret(secret: Uint8Array, name: string): TesseraPortal;",
    "secret(): Uint8Array;",
    "publicKey(): Uint8Array;",
    "readonly fingerprint: string;",
    "readonly name: string;",
    "createOffer(params: LinkOfferParams): LinkOffer;",
    "openLinkRequest(request: string): LinkRequest;",
    "confirmLink(pending: StoredPendingLink, code: string, now: number): LinkConfirmResult;",
    "renameDevice(device: StoredDevice, name: string, now: number): PortalOutcome;",
    "unlinkDevice(device: StoredDevice, now: number): PortalOutcome;",
    "openStatusRequest(request: string): { deviceId: string };",
    "answerStatus(request: string, records: StatusRecords, now: number): string;",
    "verifyDeviceTotp(device: StoredDevice, code: string, now: number): DeviceTotpCheck;",
    "accept(offer: StoredOffer | null, keyUse: DeviceKeyUse, now: number): LinkAcceptResult;",
    "refuse(code: TesseraErrorCode): string;",
    "readonly offerId: string;",
    "readonly deviceId: string;",
    "readonly deviceName: string;",
  ];
  for (const line of want) assert.ok(dts.includes(line), line);
  // No `any` in any signature, free function or method.
  for (const line of dts.split("\n").filter((l) => /^(export function|    (static |readonly )?[a-zA-Z]+[(:])/.test(l))) {
    assert.doesNotMatch(line, /\bany\b/, line);
  }
  for (const t of ["OcraParams", "OtpAuthUri", "OtpVerifierConfig", "OtpVerifierState", "OtpCheck", "TesseraError",
    "PasscodeRules", "LinkOfferInfo", "ScanOptions", "LinkedAccount", "LinkStartParams", "LinkStart", "LinkFinish",
    "StatusCheck", "LinkOfferParams", "LinkOffer", "StoredOffer", "StoredPendingLink", "StoredDevice", "PortalOutcome",
    "LinkAcceptResult", "LinkConfirmResult", "DeviceTotpCheck", "StatusRecords"]) {
    assert.match(dts, new RegExp(`export interface ${t} `), t);
  }
  for (const t of ["Unlock", "PortalEvent", "DeviceStatus", "LinkStatus", "StoredWrite", "DeviceKeyUse"]) {
    assert.match(dts, new RegExp(`export type ${t} =`), t);
  }
  // Every stored row carries its version; a write says which version it replaces.
  for (const t of ["StoredOffer", "StoredPendingLink", "StoredDevice"]) {
    assert.match(dts, new RegExp(`export interface ${t} \\{[^}]*\\n\\s+version: number;`), `${t}.version`);
  }
  for (const [kind, row] of [["offer", "StoredOffer"], ["pendingLink", "StoredPendingLink"], ["device", "StoredDevice"]]) {
    const member = `{ kind: "${kind}"; key: string; version: number; expectedVersion: number | null; row: ${row} }`;
    assert.ok(dts.includes(member), member);
  }
  assert.match(dts, /export type LinkStatus = "active" \| "awaiting_confirmation";/);
  assert.match(dts, /export type DeviceKeyUse = "fresh" \| "seen";/);
  for (const c of ["TesseraDevice", "PendingLink", "StatusProbe", "TesseraPortal", "LinkRequest"]) {
    assert.match(dts, new RegExp(`export class ${c} \\{`), c);
  }
});

test("base32 round trip, lenient decoding", () => {
  const bytes = new TextEncoder().encode("12345678901234567890");
  assert.equal(sdk.base32Encode(bytes), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
  assert.deepEqual(sdk.base32Decode("gezd gnbv gy3t qojq gezd gnbv gy3t qojq"), bytes);
  assert.deepEqual(sdk.base32Decode("MZXW6==="), new TextEncoder().encode("foo"));
  assert.ok(sdk.base32Decode("") instanceof Uint8Array);
  for (let n = 0; n < 40; n++) {
    const v = Uint8Array.from({ length: n }, (_, i) => (i * 37) & 255);
    assert.deepEqual(sdk.base32Decode(sdk.base32Encode(v)), v);
  }
});

test("newStorageKey: 32 fresh random bytes", () => {
  const a = sdk.newStorageKey();
  assert.ok(a instanceof Uint8Array);
  assert.equal(a.length, 32);
  assert.notDeepEqual(a, sdk.newStorageKey());
  assert.ok(new sdk.TesseraDevice(a));
  for (const k of [new Uint8Array(31), new Uint8Array(33), [...a], a.buffer, "key", null]) {
    assert.throws(() => new sdk.TesseraDevice(k), (e) => e.name === "TesseraError" && e.code === "INVALID_INPUT");
  }
});

test("newOtpSecret: 20 fresh random bytes", () => {
  const a = sdk.newOtpSecret();
  const b = sdk.newOtpSecret();
  assert.ok(a instanceof Uint8Array);
  assert.equal(a.length, 20);
  assert.notDeepEqual(a, b);
  assert.equal(sdk.hotp(a, 0).length, 6);
});
