// Flow 1, linking a device by single-use QR code: the golden vectors of
// vectors/link.json, then both sides in JS (TesseraPortal in a "server",
// TesseraDevice in an "app"), one test per outcome. Every stored record
// goes through JSON, as it would through a database.
import test from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { join, sep } from "node:path";
import { LinkRequest, PendingLink, StatusProbe, TesseraDevice, TesseraPortal, linkQrSvg, newStorageKey }
  from "@tessera/sdk";
import { db, throwsCode } from "./helpers.mjs";

const V = JSON.parse(readFileSync(new URL("../../vectors/link.json", import.meta.url), "utf8"));
const hex = (s) => new Uint8Array(Buffer.from(s, "hex"));
const T0 = 1_767_225_600;
const PASSCODE = "493817";


/** Change one character in the middle of a base64url text. */
function tamper(text, at = Math.floor(text.length / 2)) {
  return text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1);
}

/** A portal (new unless given) with one offer for `account`. */
function portalWithOffer({ portal = TesseraPortal.generate("Example Bank"), account = "anna@example.org", ttl, passcode,
  now = T0 } = {}) {
  const { qrText, offer } = portal.createOffer({ account, ttl, passcode, now });
  return { portal, qrText, offer: db(offer) };
}

/** A device scans `qrText` and sends its request; the portal accepts it against `offer`. */
function request(portal, qrText, offer, { name = "Anna's Pixel", passcode = PASSCODE, biometrics = false, at = T0 + 10 } = {}) {
  const device = new TesseraDevice(newStorageKey());
  const start = device.startLink({ qrText, deviceName: name, passcode, biometrics, now: at });
  const req = portal.openLinkRequest(start.request);
  const accepted = db(req.accept(offer, at + 1));
  return { device, start, req, accepted };
}

/** Offer → request → accept → finish → confirm: a linked device. */
function linked(opts = {}) {
  const { portal, qrText, offer } = portalWithOffer(opts);
  const r = request(portal, qrText, offer, opts);
  assert.ok(r.accepted.accepted, r.accepted.errorCode);
  const fin = r.start.pending.finish(r.accepted.answer);
  const conf = db(portal.confirmLink(r.accepted.pending, fin.checkCode, T0 + 30));
  assert.ok(conf.linked, conf.errorCode);
  return { portal, qrText, ...r, fin, deviceRecord: conf.device };
}

test("golden vectors: the device scans and finishes, TOTP by passcode and biometrics, the portal opens the request", () => {
  const device = new TesseraDevice(hex(V.storage_key_hex));
  const info = device.scanLinkQr(V.qr_text, V.scan_time);
  assert.deepEqual(info, {
    portalName: V.portal_name,
    portalFingerprint: V.portal_fingerprint,
    expiresAt: V.expires_at,
    passcodeRules: { minLen: 6, maxLen: 6, digitsOnly: true, biometricsAllowed: true },
  });
  const pending = device.openPendingLink(hex(V.pending_sealed_hex));
  assert.ok(pending instanceof PendingLink);
  const fin = pending.finish(V.answer);
  assert.equal(fin.checkCode, V.check_code);
  assert.equal(fin.account.deviceId, V.device_id);
  assert.deepEqual(fin.account, {
    portalName: V.portal_name,
    portalFingerprint: V.portal_fingerprint,
    account: V.account,
    deviceId: V.device_id,
    deviceName: V.device_name,
    linkedAt: V.accept_time,
    confirmBy: V.confirm_by,
    biometrics: V.biometrics,
  });
  assert.ok(fin.state instanceof Uint8Array);
  assert.deepEqual(device.account(fin.state), fin.account);
  assert.equal(device.totp(fin.state, { passcode: V.passcode }, V.totp_time), V.totp);
  assert.equal(device.totp(fin.state, { biometricSecret: hex(V.biometric_secret_hex) }, V.totp_time), V.totp);
  assert.notEqual(device.totp(fin.state, { passcode: "000111" }, V.totp_time), V.totp);

  const portal = TesseraPortal.fromSecret(hex(V.portal_secret_hex), V.portal_name);
  assert.equal(portal.fingerprint, V.portal_fingerprint);
  assert.equal(portal.name, V.portal_name);
  assert.deepEqual(portal.secret(), hex(V.portal_secret_hex));
  for (const n of [0, 24, 31, 33]) {
    throwsCode(() => TesseraPortal.fromSecret(new Uint8Array(n).fill(7), V.portal_name), "INVALID_INPUT", `${n} bytes`);
  }
  // Any 32 bytes are a seed; another seed is another portal.
  assert.notEqual(TesseraPortal.fromSecret(new Uint8Array(32), V.portal_name).fingerprint, V.portal_fingerprint);
  throwsCode(() => TesseraPortal.fromSecret(hex(V.portal_secret_hex), "x".repeat(21)), "INVALID_INPUT");
  const req = portal.openLinkRequest(V.request);
  assert.ok(req instanceof LinkRequest);
  assert.equal(req.offerId, V.offer_id);
  assert.equal(req.deviceId, V.device_id);
  assert.equal(req.deviceName, V.device_name);
});

test("success: scan, request, accept, check code confirmed, device listed", () => {
  const { portal, qrText, offer } = portalWithOffer();
  assert.deepEqual(Object.keys(offer), ["offerId", "account", "expiresAt", "usedAt", "sealed"]);
  assert.equal(offer.account, "anna@example.org");
  assert.equal(offer.expiresAt, T0 + 300);
  assert.equal(offer.usedAt, null);
  assert.match(offer.sealed, /^[A-Za-z0-9_-]+$/);
  assert.match(qrText, /^TS:[0-9A-Z $%*+\-./:]+$/);

  const device = new TesseraDevice(newStorageKey());
  const info = device.scanLinkQr(qrText, T0 + 5);
  assert.equal(info.portalName, "Example Bank");
  assert.equal(info.portalFingerprint, portal.fingerprint);
  assert.equal(info.expiresAt, T0 + 300);

  const start = device.startLink({ qrText, deviceName: "Anna's Pixel", passcode: PASSCODE, biometrics: true, now: T0 + 10 });
  assert.equal(typeof start.request, "string");
  assert.ok(start.pending instanceof PendingLink);
  assert.equal(start.biometricSecret.length, 32);

  const req = portal.openLinkRequest(start.request);
  assert.equal(req.offerId, offer.offerId);
  assert.equal(req.deviceName, "Anna's Pixel");
  const acc = db(req.accept(offer, T0 + 11));
  assert.equal(acc.accepted, true);
  assert.equal(acc.errorCode, undefined);
  assert.equal(acc.offer.usedAt, T0 + 11);
  assert.equal(acc.offer.offerId, offer.offerId);
  assert.deepEqual(Object.keys(acc.pending), ["deviceId", "account", "deviceName", "confirmBy", "attempts", "closed", "sealed"]);
  assert.deepEqual({ ...acc.pending, sealed: undefined }, {
    deviceId: req.deviceId, account: "anna@example.org", deviceName: "Anna's Pixel",
    confirmBy: T0 + 11 + 600, attempts: 0, closed: false, sealed: undefined,
  });
  assert.deepEqual(acc.events, [{ type: "linkRequested", account: "anna@example.org", deviceId: req.deviceId,
    deviceName: "Anna's Pixel", at: T0 + 11 }]);

  const fin = start.pending.finish(acc.answer);
  assert.match(fin.checkCode, /^\d{6}$/);
  assert.equal(fin.account.deviceId, req.deviceId);
  assert.equal(fin.account.account, "anna@example.org");
  assert.equal(fin.account.biometrics, true);

  const conf = db(portal.confirmLink(acc.pending, fin.checkCode, T0 + 20));
  assert.equal(conf.linked, true);
  assert.equal(conf.errorCode, undefined);
  assert.equal(conf.pending.closed, true);
  assert.deepEqual(conf.events, [{ type: "deviceLinked", account: "anna@example.org", deviceId: req.deviceId,
    deviceName: "Anna's Pixel", at: T0 + 20 }]);
  // What the portal lists.
  assert.deepEqual(Object.keys(conf.device), ["deviceId", "account", "name", "linkedAt", "lastUsedAt", "status", "sealed"]);
  assert.deepEqual({ ...conf.device, sealed: undefined }, {
    deviceId: req.deviceId, account: "anna@example.org", name: "Anna's Pixel",
    linkedAt: T0 + 20, lastUsedAt: null, status: "active", sealed: undefined,
  });
  // Confirming again: the pending link is closed.
  const again = portal.confirmLink(conf.pending, fin.checkCode, T0 + 21);
  assert.equal(again.linked, false);
  assert.equal(again.errorCode, "INVALID_STATE");

  // The linked device's TOTP (passcode or biometrics), accepted once; rename.
  const code = device.totp(fin.state, { passcode: PASSCODE }, T0 + 100);
  assert.equal(device.totp(fin.state, { biometricSecret: start.biometricSecret }, T0 + 100), code);
  const ok = db(portal.verifyDeviceTotp(conf.device, code, T0 + 100));
  assert.deepEqual({ accepted: ok.accepted, errorCode: ok.errorCode, lastUsedAt: ok.device.lastUsedAt },
    { accepted: true, errorCode: undefined, lastUsedAt: T0 + 100 });
  assert.equal(portal.verifyDeviceTotp(ok.device, code, T0 + 100).errorCode, "OTP_REPLAYED");
  const renamed = db(portal.renameDevice(ok.device, "Anna's old Pixel", T0 + 110));
  assert.equal(renamed.device.name, "Anna's old Pixel");
  assert.deepEqual(renamed.event, { type: "deviceRenamed", account: "anna@example.org", deviceId: req.deviceId,
    name: "Anna's old Pixel", at: T0 + 110 });
  throwsCode(() => portal.renameDevice(renamed.device, "", T0 + 111), "INVALID_INPUT");

  // A restored portal (secret from the secret store) reads the same records.
  const restored = TesseraPortal.fromSecret(portal.secret(), portal.name);
  assert.equal(restored.fingerprint, portal.fingerprint);
  assert.equal(restored.verifyDeviceTotp(renamed.device, device.totp(fin.state, { passcode: PASSCODE }, T0 + 130),
    T0 + 130).accepted, true);
});

test("several devices per account, each linked on its own", () => {
  const portal = TesseraPortal.generate("Example Bank");
  const ids = new Set();
  for (const name of ["Phone", "Tablet"]) {
    const { qrText, offer } = portal.createOffer({ account: "hana", now: T0 });
    const r = request(portal, qrText, db(offer), { name });
    const fin = r.start.pending.finish(r.accepted.answer);
    const conf = portal.confirmLink(r.accepted.pending, fin.checkCode, T0 + 20);
    assert.equal(conf.device.name, name);
    ids.add(conf.device.deviceId);
  }
  assert.equal(ids.size, 2);
});

test("the same QR code used twice: TOKEN_ALREADY_USED for the portal and the second device", () => {
  const { portal, qrText, offer } = portalWithOffer();
  const first = request(portal, qrText, offer, { name: "Phone A" });
  assert.equal(first.accepted.accepted, true);
  const used = first.accepted.offer; // what the portal stored
  const second = request(portal, qrText, used, { name: "Phone B", passcode: "728194", at: T0 + 20 });
  assert.equal(second.accepted.accepted, false);
  assert.equal(second.accepted.errorCode, "TOKEN_ALREADY_USED");
  assert.equal(second.accepted.offer, undefined);
  assert.equal(second.accepted.pending, undefined);
  assert.deepEqual(second.accepted.events, []);
  throwsCode(() => second.start.pending.finish(second.accepted.answer), "TOKEN_ALREADY_USED");
  // The first device is unaffected.
  assert.match(first.start.pending.finish(first.accepted.answer).checkCode, /^\d{6}$/);
});

test("an expired QR code: TOKEN_EXPIRED on scan, on start and on accept", () => {
  const { portal, qrText, offer } = portalWithOffer({ ttl: 60 });
  assert.equal(offer.expiresAt, T0 + 60);
  const device = new TesseraDevice(newStorageKey());
  throwsCode(() => device.scanLinkQr(qrText, T0 + 60), "TOKEN_EXPIRED");
  assert.equal(device.scanLinkQr(qrText, T0 + 59).expiresAt, T0 + 60);
  throwsCode(() => device.startLink({ qrText, deviceName: "Phone", passcode: PASSCODE, now: T0 + 60 }), "TOKEN_EXPIRED");
  // Scanned in time, accepted too late.
  const r = request(portal, qrText, offer, { at: T0 + 59 }); // accepted at T0 + 60
  assert.equal(r.accepted.accepted, false);
  assert.equal(r.accepted.errorCode, "TOKEN_EXPIRED");
  throwsCode(() => r.start.pending.finish(r.accepted.answer), "TOKEN_EXPIRED");
  // Lifetimes are minutes: 1..=600 s.
  for (const ttl of [0, 601, 3600]) {
    throwsCode(() => portal.createOffer({ account: "a", ttl, now: T0 }), "INVALID_INPUT", `ttl ${ttl}`);
  }
  assert.equal(portal.createOffer({ account: "a", ttl: 600, now: T0 }).offer.expiresAt, T0 + 600);
});

test("an unknown offer: accept(null) and a wrong offer give TOKEN_UNKNOWN", () => {
  const { portal, qrText, offer } = portalWithOffer();
  const r = request(portal, qrText, null);
  assert.equal(r.accepted.accepted, false);
  assert.equal(r.accepted.errorCode, "TOKEN_UNKNOWN");
  throwsCode(() => r.start.pending.finish(r.accepted.answer), "TOKEN_UNKNOWN");
  const other = db(portal.createOffer({ account: "anna@example.org", now: T0 }).offer);
  const r2 = request(portal, qrText, other);
  assert.equal(r2.accepted.errorCode, "TOKEN_UNKNOWN");
  // undefined works like null; the real offer still works afterwards.
  const r3 = portal.openLinkRequest(request(portal, qrText, offer).start.request);
  assert.equal(db(r3.accept(undefined, T0 + 12)).errorCode, "TOKEN_UNKNOWN");
  // Another portal cannot read the request.
  throwsCode(() => TesseraPortal.generate("Other").openLinkRequest(r.start.request), "MESSAGE_TAMPERED");
});

test("a device holding an account refuses a second one: DEVICE_ALREADY_LINKED", () => {
  const l = linked();
  const { qrText } = portalWithOffer({ account: "work@example.org" });
  throwsCode(() => l.device.startLink({ qrText, deviceName: "Phone", passcode: PASSCODE, currentState: l.fin.state,
    now: T0 + 40 }), "DEVICE_ALREADY_LINKED");
  // null / undefined currentState: not linked.
  assert.equal(typeof l.device.startLink({ qrText, deviceName: "Phone", passcode: PASSCODE, currentState: null,
    now: T0 + 40 }).request, "string");
  // After unlinking locally the app deletes the state and may link again.
  assert.equal(l.device.unlinkLocally(l.fin.state).account, "anna@example.org");
});

test("passcodes: WEAK_PASSCODE and PASSCODE_POLICY, rules from the QR code", () => {
  const { qrText } = portalWithOffer();
  const device = new TesseraDevice(newStorageKey());
  const start = (passcode, biometrics = false, qr = qrText) =>
    device.startLink({ qrText: qr, deviceName: "Phone", passcode, biometrics, now: T0 + 1 });
  for (const weak of ["123456", "111111", "654321", "121212", "123123", "890123"]) {
    throwsCode(() => start(weak), "WEAK_PASSCODE", weak);
  }
  for (const bad of ["49381", "4938172", "49381a", ""]) throwsCode(() => start(bad), "PASSCODE_POLICY", bad);
  assert.equal(typeof start(PASSCODE, true).request, "string");

  // A portal asking for 8..16 characters of any kind, without biometrics.
  const rules = { minLen: 8, maxLen: 16, digitsOnly: false, biometricsAllowed: false };
  const strict = portalWithOffer({ passcode: rules });
  assert.deepEqual(device.scanLinkQr(strict.qrText, T0).passcodeRules, rules);
  throwsCode(() => start(PASSCODE, false, strict.qrText), "PASSCODE_POLICY");
  throwsCode(() => start("abcdefgh", false, strict.qrText), "WEAK_PASSCODE");
  throwsCode(() => start("correct horse", true, strict.qrText), "PASSCODE_POLICY");
  assert.equal(typeof start("correct horse", false, strict.qrText).request, "string");
  // Partial rules take the defaults (6 digits exactly, biometrics allowed).
  const partial = portalWithOffer({ passcode: { biometricsAllowed: false } });
  assert.deepEqual(device.scanLinkQr(partial.qrText, T0).passcodeRules,
    { minLen: 6, maxLen: 6, digitsOnly: true, biometricsAllowed: false });
  const portal = TesseraPortal.generate("Example Bank");
  for (const passcode of [{ minLen: 5 }, { minLen: 8 }, { maxLen: 17 }, { minLen: 300 }, { digitsOnly: 1 }, "6"]) {
    throwsCode(() => portal.createOffer({ account: "a", passcode, now: T0 }), "INVALID_INPUT", JSON.stringify(passcode));
  }
  throwsCode(() => device.startLink({ qrText, deviceName: "", passcode: PASSCODE, now: T0 }), "INVALID_INPUT");
  throwsCode(() => device.startLink({ qrText, deviceName: "x".repeat(65), passcode: PASSCODE, now: T0 }), "INVALID_INPUT");
});

test("wrong check codes: CHECK_CODE_MISMATCH four times, LOCKED_OUT at the fifth; expiry", () => {
  const { portal, qrText, offer } = portalWithOffer();
  const r = request(portal, qrText, offer);
  const fin = r.start.pending.finish(r.accepted.answer);
  const wrong = fin.checkCode === "111112" ? "111113" : "111112";
  let pending = r.accepted.pending;
  for (let i = 1; i <= 4; i++) {
    const res = db(portal.confirmLink(pending, wrong, T0 + 20 + i));
    assert.deepEqual([res.linked, res.errorCode, res.pending.attempts, res.pending.closed, res.device],
      [false, "CHECK_CODE_MISMATCH", i, false, undefined]);
    pending = res.pending; // stored after every attempt
  }
  const locked = db(portal.confirmLink(pending, wrong, T0 + 30));
  assert.deepEqual([locked.linked, locked.errorCode, locked.pending.attempts, locked.pending.closed],
    [false, "LOCKED_OUT", 5, true]);
  const late = portal.confirmLink(locked.pending, fin.checkCode, T0 + 31);
  assert.deepEqual([late.linked, late.errorCode], [false, "INVALID_STATE"]);

  // The check code must be typed within 10 minutes.
  const b = portalWithOffer();
  const r2 = request(b.portal, b.qrText, b.offer);
  const fin2 = r2.start.pending.finish(r2.accepted.answer);
  const expired = b.portal.confirmLink(r2.accepted.pending, fin2.checkCode, r2.accepted.pending.confirmBy);
  assert.deepEqual([expired.linked, expired.errorCode, expired.pending.closed], [false, "TOKEN_EXPIRED", true]);
  // Not a string: a programming error, thrown.
  throwsCode(() => b.portal.confirmLink(r2.accepted.pending, 650987, T0), "INVALID_INPUT");
});

test("tampered messages and state: MESSAGE_TAMPERED, STATE_CORRUPT, MALFORMED_MESSAGE", () => {
  const { portal, qrText, offer } = portalWithOffer();
  const device = new TesseraDevice(newStorageKey());
  const start = device.startLink({ qrText, deviceName: "Phone", passcode: PASSCODE, now: T0 + 10 });
  // Request.
  throwsCode(() => portal.openLinkRequest(tamper(start.request)), "MESSAGE_TAMPERED", "request");
  throwsCode(() => portal.openLinkRequest("not a message!"), "MALFORMED_MESSAGE");
  throwsCode(() => portal.openLinkRequest(start.request.slice(0, 20)), "MALFORMED_MESSAGE");
  // QR text.
  throwsCode(() => device.scanLinkQr("hello", T0), "MALFORMED_MESSAGE");
  throwsCode(() => device.scanLinkQr(qrText.slice(0, -6), T0), "MALFORMED_MESSAGE");
  // Answer: a damaged or forged one is refused and does not spend the
  // pending link (junk cannot cancel a link); the genuine answer then works.
  const saved = start.pending.sealed();
  const acc = db(portal.openLinkRequest(start.request).accept(offer, T0 + 11));
  throwsCode(() => start.pending.finish(tamper(acc.answer)), "MESSAGE_TAMPERED", "answer");
  throwsCode(() => start.pending.finish("!!"), "MALFORMED_MESSAGE");
  throwsCode(() => start.pending.finish("AwE"), "MESSAGE_TAMPERED"); // empty body
  throwsCode(() => start.pending.finish(start.request), "WRONG_MESSAGE_KIND");
  const forged = portalWithOffer();
  const elsewhere = request(forged.portal, forged.qrText, forged.offer);
  throwsCode(() => start.pending.finish(elsewhere.accepted.answer), "MESSAGE_TAMPERED", "another link's answer");
  const fin = start.pending.finish(acc.answer);
  throwsCode(() => start.pending.finish(acc.answer), "ALREADY_CONSUMED");
  // State and sealed pending link.
  for (const blob of [fin.state, saved]) {
    for (const i of [0, 1, 2, 20, blob.length - 1]) {
      const t = Uint8Array.from(blob);
      t[i] ^= 1;
      const e = throwsCode(() => (blob === saved ? device.openPendingLink(t) : device.account(t)),
        i === 0 ? "WRONG_MESSAGE_KIND" : i === 1 ? "UNSUPPORTED_VERSION" : "STATE_CORRUPT", `byte ${i}`);
      assert.ok(e);
    }
    throwsCode(() => (blob === saved ? device.openPendingLink(blob.slice(0, 10)) : device.account(blob.slice(0, 10))),
      "STATE_CORRUPT", "truncated");
  }
  throwsCode(() => device.account(saved), "WRONG_MESSAGE_KIND", "a pending link is not a state");
  // Another device key.
  const other = new TesseraDevice(newStorageKey());
  throwsCode(() => other.account(fin.state), "STATE_CORRUPT");
  throwsCode(() => other.totp(fin.state, { passcode: PASSCODE }, T0), "STATE_CORRUPT");
  throwsCode(() => other.openPendingLink(saved), "STATE_CORRUPT");
});

test("single use: finish twice, accept twice → ALREADY_CONSUMED; a refusal spends the pending link", () => {
  const { portal, qrText, offer } = portalWithOffer();
  const r = request(portal, qrText, offer);
  const fin = r.start.pending.finish(r.accepted.answer);
  assert.match(fin.checkCode, /^\d{6}$/);
  throwsCode(() => r.start.pending.finish(r.accepted.answer), "ALREADY_CONSUMED");
  throwsCode(() => r.start.pending.sealed(), "ALREADY_CONSUMED");
  throwsCode(() => r.req.accept(offer, T0 + 12), "ALREADY_CONSUMED");
  // The getters still answer; refuse still works after accept (a lost compare-and-set).
  assert.equal(r.req.offerId, offer.offerId);
  const device = new TesseraDevice(newStorageKey());
  const start = device.startLink({ qrText, deviceName: "Phone", passcode: PASSCODE, now: T0 + 20 });
  const req = portal.openLinkRequest(start.request);
  const saved = start.pending.sealed();
  const before = req.refuse("TOKEN_ALREADY_USED");
  assert.equal(db(req.accept(offer, T0 + 21)).accepted, true);
  const after = req.refuse("TOKEN_ALREADY_USED");
  throwsCode(() => start.pending.finish(after), "TOKEN_ALREADY_USED");
  throwsCode(() => device.openPendingLink(saved).finish(before), "TOKEN_ALREADY_USED");
  throwsCode(() => req.refuse("NOT_A_CODE"), "INVALID_INPUT");
  throwsCode(() => req.refuse(3), "INVALID_INPUT");
  // The portal's refusal is final for that handle: a second finish is
  // ALREADY_CONSUMED (a pending link opened from its sealed copy is a new handle).
  throwsCode(() => start.pending.finish(after), "ALREADY_CONSUMED");
  const again = device.openPendingLink(saved);
  throwsCode(() => again.finish(req.refuse("TOKEN_EXPIRED")), "TOKEN_EXPIRED");
  throwsCode(() => again.finish(after), "ALREADY_CONSUMED");
  throwsCode(() => again.sealed(), "ALREADY_CONSUMED");
});

test("unlink on the portal reaches the device: status answer → DEVICE_REVOKED", () => {
  const l = linked();
  const { portal, device, fin } = l;
  // Still linked: the status request is answered and moves lastUsedAt.
  let st = device.statusRequest(fin.state, T0 + 50);
  assert.ok(st.probe instanceof StatusProbe);
  assert.deepEqual(portal.openStatusRequest(st.request), { deviceId: fin.account.deviceId });
  const ok = db(portal.answerStatus(st.request, l.deviceRecord, T0 + 50));
  assert.equal(ok.device.lastUsedAt, T0 + 50);
  assert.equal(device.readStatusAnswer(fin.state, st.probe, ok.answer), undefined);
  // A probe reads one answer.
  throwsCode(() => device.readStatusAnswer(fin.state, st.probe, ok.answer), "ALREADY_CONSUMED");

  // Lost phone: the portal unlinks it without the device.
  const un = db(portal.unlinkDevice(ok.device, T0 + 70));
  assert.equal(un.device.status, "unlinked");
  assert.deepEqual(un.event, { type: "deviceUnlinked", account: "anna@example.org", deviceId: fin.account.deviceId,
    at: T0 + 70 });
  throwsCode(() => portal.unlinkDevice(un.device, T0 + 71), "INVALID_STATE");
  st = device.statusRequest(fin.state, T0 + 80);
  const revoked = db(portal.answerStatus(st.request, un.device, T0 + 80));
  assert.equal(revoked.device.lastUsedAt, T0 + 50);
  throwsCode(() => device.readStatusAnswer(fin.state, st.probe, revoked.answer), "DEVICE_REVOKED");
  // Its codes are refused too.
  const code = device.totp(fin.state, { passcode: PASSCODE }, T0 + 90);
  assert.equal(portal.verifyDeviceTotp(un.device, code, T0 + 90).errorCode, "DEVICE_REVOKED");

  // A forged answer, an old request, another device's record.
  st = device.statusRequest(fin.state, T0 + 100);
  throwsCode(() => device.readStatusAnswer(fin.state, st.probe, tamper(revoked.answer, 30)), "MESSAGE_TAMPERED");
  throwsCode(() => portal.answerStatus(tamper(st.request, 40), un.device, T0 + 100), "MESSAGE_TAMPERED");
  throwsCode(() => portal.answerStatus(st.request, un.device, T0 + 1000), "INVALID_TIME");
  const sibling = linked({ portal });
  throwsCode(() => portal.answerStatus(st.request, sibling.deviceRecord, T0 + 100), "DEVICE_UNKNOWN");
  const stranger = linked();
  throwsCode(() => portal.answerStatus(st.request, stranger.deviceRecord, T0 + 100), "STATE_CORRUPT");
  throwsCode(() => device.readStatusAnswer(fin.state, {}, revoked.answer), "INVALID_INPUT");
  throwsCode(() => device.readStatusAnswer(fin.state, null, revoked.answer), "INVALID_INPUT");
});

test("device TOTP: wrong passcode → OTP_MISMATCH; the fifth failure → LOCKED_OUT", () => {
  const l = linked();
  const { portal, device, fin } = l;
  let rec = l.deviceRecord;
  for (let i = 0; i < 5; i++) {
    const t = T0 + 200 + 30 * i;
    const wrong = device.totp(fin.state, { passcode: "000111" }, t); // the device cannot tell
    assert.match(wrong, /^\d{6}$/);
    const res = db(portal.verifyDeviceTotp(rec, wrong, t));
    // The fifth failure locks, and says so.
    assert.deepEqual([res.accepted, res.errorCode], [false, i < 4 ? "OTP_MISMATCH" : "LOCKED_OUT"], `attempt ${i + 1}`);
    rec = res.device; // stored after every attempt
  }
  // Locked: even the right passcode's code is refused now.
  const t = T0 + 400;
  const good = device.totp(fin.state, { passcode: PASSCODE }, t);
  const locked = db(portal.verifyDeviceTotp(rec, good, t));
  assert.deepEqual([locked.accepted, locked.errorCode], [false, "LOCKED_OUT"]);
  // The unlock object: exactly one factor.
  for (const unlock of [{}, { passcode: PASSCODE, biometricSecret: new Uint8Array(32) }, { passcode: 493817 },
    { biometricSecret: new Uint8Array(31) }, "493817", null]) {
    throwsCode(() => device.totp(fin.state, unlock, t), "INVALID_INPUT", JSON.stringify(unlock));
  }
});

test("stored records survive JSON round trips; the sealed copy is the truth", () => {
  const { portal, qrText, offer } = portalWithOffer();
  // Every record crosses JSON twice and keeps working.
  const twice = (v) => db(db(v));
  const r = request(portal, qrText, twice(offer));
  const used = twice(r.accepted.offer);
  const fin = r.start.pending.finish(r.accepted.answer);
  const conf = twice(portal.confirmLink(twice(r.accepted.pending), fin.checkCode, T0 + 20));
  assert.equal(conf.linked, true);
  assert.equal(typeof JSON.stringify(conf.device), "string");
  // Edited columns change nothing: a used offer marked unused is still used,
  // an unlinked device marked active is still unlinked.
  const edited = { ...used, usedAt: null, account: "mallory" };
  const r2 = request(portal, qrText, edited, { name: "Phone B" });
  assert.equal(r2.accepted.errorCode, "TOKEN_ALREADY_USED");
  const un = twice(portal.unlinkDevice(conf.device, T0 + 30)).device;
  const code = r.device.totp(fin.state, { passcode: PASSCODE }, T0 + 60);
  assert.equal(portal.verifyDeviceTotp({ ...un, status: "active" }, code, T0 + 60).errorCode, "DEVICE_REVOKED");
  // Only `sealed` is needed.
  assert.equal(portal.verifyDeviceTotp({ sealed: un.sealed }, code, T0 + 60).errorCode, "DEVICE_REVOKED");
});

test("a stored record whose sealed text was changed → STATE_CORRUPT", () => {
  const l = linked();
  const { portal, qrText } = l;
  const offer = db(portal.createOffer({ account: "anna@example.org", now: T0 }).offer);
  const req = () => portal.openLinkRequest(new TesseraDevice(newStorageKey())
    .startLink({ qrText, deviceName: "P", passcode: PASSCODE, now: T0 + 1 }).request);
  const cases = [
    ["offer", (s) => req().accept({ ...offer, sealed: s }, T0 + 2), offer.sealed],
    ["pending", (s) => portal.confirmLink({ ...l.accepted.pending, sealed: s }, "000000", T0 + 2), l.accepted.pending.sealed],
    ["device", (s) => portal.verifyDeviceTotp({ ...l.deviceRecord, sealed: s }, "000000", T0 + 2), l.deviceRecord.sealed],
  ];
  for (const [what, use, sealed] of cases) {
    for (const at of [5, Math.floor(sealed.length / 2), sealed.length - 2]) {
      throwsCode(() => use(tamper(sealed, at)), "STATE_CORRUPT", `${what} at ${at}`);
    }
    throwsCode(() => use(sealed.slice(0, -8)), "STATE_CORRUPT", `${what} truncated`);
    throwsCode(() => use("!!"), "STATE_CORRUPT", `${what} not base64url`);
    throwsCode(() => use(""), "STATE_CORRUPT", `${what} empty`);
    throwsCode(() => use(42), "INVALID_INPUT", `${what} not a string`);
    // Sealed under another portal's key.
    throwsCode(() => use(TesseraPortal.generate("Other").createOffer({ account: "a", now: T0 }).offer.sealed),
      "STATE_CORRUPT", `${what} other portal`);
  }
  // A record of another kind (a column mix-up in the host's database).
  throwsCode(() => req().accept(l.deviceRecord, T0 + 2), "STATE_CORRUPT", "device as offer");
  throwsCode(() => portal.confirmLink(offer, "000000", T0 + 2), "STATE_CORRUPT", "offer as pending");
  throwsCode(() => portal.verifyDeviceTotp(l.accepted.pending, "000000", T0 + 2), "STATE_CORRUPT", "pending as device");
  throwsCode(() => req().accept({}, T0), "INVALID_INPUT");
  throwsCode(() => req().accept("offer", T0), "INVALID_INPUT");
  throwsCode(() => portal.renameDevice({ sealed: l.accepted.pending.sealed }, "x", T0), "STATE_CORRUPT");
});

test("linkQrSvg: an SVG of the QR code (error correction M, quiet zone, at least 256 units)", () => {
  const { qrText } = portalWithOffer();
  const svg = linkQrSvg(qrText);
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]* viewBox="0 0 (\d+) \1"/);
  const size = Number(svg.match(/viewBox="0 0 (\d+)/)[1]);
  assert.ok(size >= 256, `${size}`);
  assert.ok(svg.endsWith("</svg>"));
  assert.doesNotMatch(svg, /<\?xml/);
  const decoded = decodeSvgQr(svg);
  if (decoded) {
    assert.equal(decoded.data, qrText);
    assert.ok(decoded.version <= 5, `version ${decoded.version}`);
  }
  // The longest portal name still fits version 5 (37 modules + 2 × 4 quiet).
  const long = TesseraPortal.generate("Ministry of Finance!").createOffer({ account: "x", now: T0 }).qrText;
  const modules = 45;
  const svgLong = linkQrSvg(long);
  const w = Number(svgLong.match(/viewBox="0 0 (\d+)/)[1]);
  assert.equal(w % modules, 0, `${w} is not a multiple of ${modules}`);
  throwsCode(() => linkQrSvg("x".repeat(5000)), "INVALID_INPUT");
  throwsCode(() => linkQrSvg(42), "INVALID_INPUT");
  assert.match(linkQrSvg(""), /^<svg/);
});

/** Rasterise the SVG path (rectangles) and decode it with jsQR, if installed (scripts/setup.sh). */
function decodeSvgQr(svg) {
  let jsQR;
  try {
    const cache = process.env.TESSERA_CACHE || join(homedir(), ".cache/tessera");
    jsQR = createRequire(join(cache, "npm") + sep)("jsqr");
  } catch {
    return null;
  }
  const size = Number(svg.match(/viewBox="0 0 (\d+)/)[1]);
  const rgba = new Uint8ClampedArray(size * size * 4).fill(255);
  const d = svg.match(/<path[^>]* d="([^"]*)"/)[1];
  for (const m of d.matchAll(/M(\d+) (\d+)h(\d+)v(\d+)H\d+V\d+/g)) {
    const [x, y, w, h] = m.slice(1).map(Number);
    for (let yy = y; yy < y + h; yy++) {
      for (let xx = x; xx < x + w; xx++) rgba.fill(0, (yy * size + xx) * 4, (yy * size + xx) * 4 + 3);
    }
  }
  const out = jsQR(rgba, size, size);
  assert.ok(out, "jsQR found no QR code in the SVG");
  return out;
}
