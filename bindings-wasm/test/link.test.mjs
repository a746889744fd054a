// Flow 1, linking a device by single-use QR code: the golden vectors of
// vectors/link.json, then both sides in JS (TesseraPortal in a "server",
// TesseraDevice in an "app"), one test per outcome. The portal's database
// is a Map of JSON rows written only by versioned compare-and-set, as the
// host contract asks (docs/DESIGN.md); several "servers" share it to race.
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

/**
 * A portal host's database: JSON rows by kind ("offer", "pendingLink",
 * "device") and key, changed only by `apply`, which runs the writes of one
 * outcome as one transaction of compare-and-sets:
 * INSERT (expectedVersion null) or UPDATE … WHERE version = expectedVersion.
 */
class Store {
  tables = { offer: new Map(), pendingLink: new Map(), device: new Map() };
  commits = 0;
  conflicts = 0;

  get(kind, key) {
    const v = this.tables[kind].get(key);
    return v === undefined ? null : JSON.parse(v);
  }

  /** "seen" if a pending link or device row has this device id (any account). */
  keyUse(deviceId) {
    return this.tables.pendingLink.has(deviceId) || this.tables.device.has(deviceId) ? "seen" : "fresh";
  }

  insert(kind, key, row) {
    assert.ok(this.apply([{ kind, key, version: row.version, expectedVersion: null, row }]), `${kind} ${key} exists`);
  }

  /** All or nothing; false when another server wrote first. */
  apply(writes) {
    for (const w of writes) {
      assert.deepEqual(Object.keys(w), ["kind", "key", "version", "expectedVersion", "row"]);
      assert.equal(w.row.version, w.version);
      assert.equal(w.expectedVersion, w.version === 1 ? null : w.version - 1);
      assert.equal(w.key, w.kind === "offer" ? w.row.offerId : w.row.deviceId);
      const stored = this.get(w.kind, w.key);
      if ((stored === null ? null : stored.version) !== w.expectedVersion) {
        this.conflicts++;
        return false;
      }
    }
    for (const w of writes) this.tables[w.kind].set(w.key, JSON.stringify(w.row));
    this.commits++;
    return true;
  }
}

/**
 * What a server does for every state change: read the rows, call the SDK,
 * apply its writes; on a conflict read again and repeat the call.
 * `read()` returns the rows, `call(rows)` the SDK result.
 */
function transact(store, read, call) {
  for (let i = 0; i < 10; i++) {
    const out = call(read());
    if (store.apply(out.writes)) return out;
  }
  throw new Error("no progress after 10 conflicts");
}

/** The rows of one kind among a result's writes. */
const written = (out, kind) => out.writes.filter((w) => w.kind === kind).map((w) => w.row);
const only = (out, kind) => {
  const rows = written(out, kind);
  assert.equal(rows.length, 1, `one ${kind} write`);
  return rows[0];
};

/** Server handlers of a portal over a store (several may share one store). */
function server(portal, store) {
  return {
    /** POST /link/request → the answer to send. */
    accept(requestText, now) {
      const req = portal.openLinkRequest(requestText);
      return transact(store, () => [store.get("offer", req.offerId), store.keyUse(req.deviceId)],
        ([offer, keyUse]) => db(req.accept(offer, keyUse, now)));
    },
    /** POST /link/confirm: the code the user typed. */
    confirm(deviceId, code, now) {
      return transact(store, () => store.get("pendingLink", deviceId),
        (pending) => db(portal.confirmLink(pending, code, now)));
    },
    verify(deviceId, code, now) {
      return transact(store, () => store.get("device", deviceId),
        (device) => db(portal.verifyDeviceTotp(device, code, now)));
    },
    unlink(deviceId, now) {
      return transact(store, () => store.get("device", deviceId), (device) => db(portal.unlinkDevice(device, now)));
    },
    /** Read-only: the rows it answers from. */
    status(requestText, now) {
      const { deviceId } = portal.openStatusRequest(requestText);
      return portal.answerStatus(requestText,
        { device: store.get("device", deviceId), pending: store.get("pendingLink", deviceId) }, now);
    },
  };
}

/** A portal (new unless given) with one offer for `account`, inserted in `store`. */
function portalWithOffer({ portal = TesseraPortal.generate("Example Bank"), account = "anna@example.org", ttl, passcode,
  now = T0, store = new Store() } = {}) {
  const { qrText, offer } = portal.createOffer({ account, ttl, passcode, now });
  store.insert("offer", offer.offerId, db(offer));
  return { portal, qrText, offer: db(offer), store };
}

/** A device scans `qrText` and sends its request; the portal accepts it against `offer` (no store). */
function request(portal, qrText, offer, { name = "Anna's Pixel", passcode = PASSCODE, biometrics = false, at = T0 + 10,
  keyUse = "fresh" } = {}) {
  const device = new TesseraDevice(newStorageKey());
  const start = device.startLink({ qrText, deviceName: name, passcode, biometrics, now: at });
  const req = portal.openLinkRequest(start.request);
  const accepted = db(req.accept(offer, keyUse, at + 1));
  return { device, start, req, accepted };
}

/** Offer → request → accept → finish → confirm through a server and its store: a linked device. */
function linked(opts = {}) {
  const { portal, qrText, store } = portalWithOffer(opts);
  const srv = server(portal, store);
  const device = new TesseraDevice(newStorageKey());
  const start = device.startLink({ qrText, deviceName: opts.name ?? "Anna's Pixel", passcode: PASSCODE, now: T0 + 10 });
  const accepted = srv.accept(start.request, T0 + 11);
  assert.ok(accepted.accepted, accepted.errorCode);
  const fin = start.pending.finish(accepted.answer);
  const id = fin.account.deviceId;
  const conf = srv.confirm(id, fin.checkCode, T0 + 30);
  assert.ok(conf.linked, conf.errorCode);
  return { portal, qrText, store, srv, device, start, accepted, fin, id, deviceRecord: store.get("device", id) };
}

test("golden vectors: the device scans (pinned) and finishes, TOTP by passcode and biometrics, the portal opens the request", () => {
  const device = new TesseraDevice(hex(V.storage_key_hex));
  const info = device.scanLinkQr(V.qr_text, V.scan_time);
  assert.deepEqual(info, {
    portalName: V.portal_name,
    portalFingerprint: V.portal_fingerprint,
    expiresAt: V.expires_at,
    passcodeRules: { minLen: 6, maxLen: 6, digitsOnly: true, biometricsAllowed: true },
  });
  // Pinned to the vector portal's key: the same; pinned to another: WRONG_ACCOUNT.
  const key = hex(V.portal_public_key_hex);
  assert.equal(key.length, 33);
  assert.deepEqual(device.scanLinkQr(V.qr_text, V.scan_time, { pinnedPortalKey: key }), info);
  const otherKey = Uint8Array.from(key);
  otherKey[32] ^= 1;
  throwsCode(() => device.scanLinkQr(V.qr_text, V.scan_time, { pinnedPortalKey: otherKey }), "WRONG_ACCOUNT");
  throwsCode(() => device.scanLinkQr(V.qr_text, V.scan_time * 1000), "INVALID_TIME", "milliseconds");

  const pending = device.openPendingLink(hex(V.pending_sealed_hex));
  assert.ok(pending instanceof PendingLink);
  assert.equal(pending.request(), V.request, "the sealed pending link holds the request to resend");
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
  throwsCode(() => pending.request(), "ALREADY_CONSUMED");
  assert.ok(fin.state instanceof Uint8Array);
  assert.deepEqual(device.account(fin.state), fin.account);
  assert.equal(device.totp(fin.state, { passcode: V.passcode }, V.totp_time), V.totp);
  assert.equal(device.totp(fin.state, { biometricSecret: hex(V.biometric_secret_hex) }, V.totp_time), V.totp);
  assert.notEqual(device.totp(fin.state, { passcode: "000111" }, V.totp_time), V.totp);

  const portal = TesseraPortal.fromSecret(hex(V.portal_secret_hex), V.portal_name);
  assert.equal(portal.fingerprint, V.portal_fingerprint);
  assert.equal(portal.name, V.portal_name);
  assert.deepEqual(portal.secret(), hex(V.portal_secret_hex));
  assert.deepEqual(portal.publicKey(), key);
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

test("success: scan, request, accept, check code confirmed, device listed; every change is a versioned write", () => {
  const { portal, qrText, offer, store } = portalWithOffer();
  assert.deepEqual(Object.keys(offer), ["offerId", "account", "expiresAt", "usedAt", "version", "sealed"]);
  assert.equal(offer.account, "anna@example.org");
  assert.equal(offer.expiresAt, T0 + 300);
  assert.equal(offer.usedAt, null);
  assert.equal(offer.version, 1);
  assert.match(offer.sealed, /^[A-Za-z0-9_-]+$/);
  assert.match(qrText, /^TS:[0-9A-Z $%*+\-./:]+$/);

  const device = new TesseraDevice(newStorageKey());
  const info = device.scanLinkQr(qrText, T0 + 5);
  assert.equal(info.portalName, "Example Bank");
  assert.equal(info.portalFingerprint, portal.fingerprint);
  assert.equal(info.expiresAt, T0 + 300);
  assert.equal(portal.publicKey().length, 33);

  const start = device.startLink({ qrText, deviceName: "Anna's Pixel", passcode: PASSCODE, biometrics: true, now: T0 + 10 });
  assert.equal(typeof start.request, "string");
  assert.ok(start.pending instanceof PendingLink);
  assert.equal(start.pending.request(), start.request);
  assert.equal(start.biometricSecret.length, 32);

  const req = portal.openLinkRequest(start.request);
  assert.equal(req.offerId, offer.offerId);
  assert.equal(req.deviceName, "Anna's Pixel");
  assert.equal(store.keyUse(req.deviceId), "fresh");
  const acc = db(req.accept(store.get("offer", req.offerId), "fresh", T0 + 11));
  assert.deepEqual([acc.accepted, acc.repeated, acc.errorCode], [true, false, undefined]);
  // The writes: the offer, used (version 2 over 1), and a new pending link (insert).
  assert.deepEqual(acc.writes.map((w) => [w.kind, w.key, w.version, w.expectedVersion]),
    [["offer", offer.offerId, 2, 1], ["pendingLink", req.deviceId, 1, null]]);
  const used = only(acc, "offer");
  assert.equal(used.usedAt, T0 + 11);
  const pending = only(acc, "pendingLink");
  assert.deepEqual(Object.keys(pending),
    ["deviceId", "account", "deviceName", "confirmBy", "attempts", "closed", "version", "sealed"]);
  assert.deepEqual({ ...pending, sealed: undefined }, {
    deviceId: req.deviceId, account: "anna@example.org", deviceName: "Anna's Pixel",
    confirmBy: T0 + 11 + 600, attempts: 0, closed: false, version: 1, sealed: undefined,
  });
  assert.deepEqual(acc.events, [{ type: "linkRequested", account: "anna@example.org", deviceId: req.deviceId,
    deviceName: "Anna's Pixel", at: T0 + 11 }]);
  assert.ok(store.apply(acc.writes));

  const fin = start.pending.finish(acc.answer);
  assert.match(fin.checkCode, /^\d{6}$/);
  assert.equal(fin.account.deviceId, req.deviceId);
  assert.equal(fin.account.account, "anna@example.org");
  assert.equal(fin.account.biometrics, true);

  const conf = db(portal.confirmLink(store.get("pendingLink", req.deviceId), fin.checkCode, T0 + 20));
  assert.deepEqual([conf.linked, conf.errorCode], [true, undefined]);
  assert.deepEqual(conf.writes.map((w) => [w.kind, w.key, w.version, w.expectedVersion]),
    [["pendingLink", req.deviceId, 2, 1], ["device", req.deviceId, 1, null]]);
  assert.equal(only(conf, "pendingLink").closed, true);
  assert.deepEqual(conf.events, [{ type: "deviceLinked", account: "anna@example.org", deviceId: req.deviceId,
    deviceName: "Anna's Pixel", at: T0 + 20 }]);
  assert.ok(store.apply(conf.writes));
  // What the portal lists.
  const listed = store.get("device", req.deviceId);
  assert.deepEqual(Object.keys(listed),
    ["deviceId", "account", "name", "linkedAt", "lastUsedAt", "status", "version", "sealed"]);
  assert.deepEqual({ ...listed, sealed: undefined }, {
    deviceId: req.deviceId, account: "anna@example.org", name: "Anna's Pixel",
    linkedAt: T0 + 20, lastUsedAt: null, status: "active", version: 1, sealed: undefined,
  });
  // Confirming again: the pending link is closed, and nothing is written.
  const again = portal.confirmLink(store.get("pendingLink", req.deviceId), fin.checkCode, T0 + 21);
  assert.deepEqual([again.linked, again.errorCode, again.writes], [false, "INVALID_STATE", []]);

  // The linked device's TOTP (passcode or biometrics), accepted once; rename.
  const srv = server(portal, store);
  const code = device.totp(fin.state, { passcode: PASSCODE }, T0 + 100);
  assert.equal(device.totp(fin.state, { biometricSecret: start.biometricSecret }, T0 + 100), code);
  const ok = srv.verify(req.deviceId, code, T0 + 100);
  assert.deepEqual([ok.accepted, ok.errorCode, ok.events], [true, undefined, []]);
  assert.deepEqual(ok.writes.map((w) => [w.kind, w.version, w.expectedVersion, w.row.lastUsedAt]),
    [["device", 2, 1, T0 + 100]]);
  assert.equal(srv.verify(req.deviceId, code, T0 + 100).errorCode, "OTP_REPLAYED");
  const renamed = db(portal.renameDevice(store.get("device", req.deviceId), "Anna's old Pixel", T0 + 110));
  assert.deepEqual(Object.keys(renamed), ["writes", "events"]);
  assert.equal(only(renamed, "device").name, "Anna's old Pixel");
  assert.deepEqual(renamed.events, [{ type: "deviceRenamed", account: "anna@example.org", deviceId: req.deviceId,
    name: "Anna's old Pixel", at: T0 + 110 }]);
  assert.ok(store.apply(renamed.writes));
  assert.equal(store.get("device", req.deviceId).version, 4);
  throwsCode(() => portal.renameDevice(store.get("device", req.deviceId), "", T0 + 111), "INVALID_INPUT");

  // A restored portal (secret from the secret store) reads the same rows.
  const restored = TesseraPortal.fromSecret(portal.secret(), portal.name);
  assert.equal(restored.fingerprint, portal.fingerprint);
  assert.equal(restored.verifyDeviceTotp(store.get("device", req.deviceId),
    device.totp(fin.state, { passcode: PASSCODE }, T0 + 130), T0 + 130).accepted, true);
});

test("several devices per account, each linked on its own", () => {
  const portal = TesseraPortal.generate("Example Bank");
  const store = new Store();
  const ids = new Set();
  for (const name of ["Phone", "Tablet"]) {
    const l = linked({ portal, store, name });
    assert.equal(l.deviceRecord.name, name);
    ids.add(l.id);
  }
  assert.equal(ids.size, 2);
});

test("the same QR code used twice: TOKEN_ALREADY_USED for the portal and the second device, nothing written", () => {
  const { portal, qrText, offer } = portalWithOffer();
  const first = request(portal, qrText, offer, { name: "Phone A" });
  assert.equal(first.accepted.accepted, true);
  const used = only(first.accepted, "offer"); // what the portal stored
  const second = request(portal, qrText, used, { name: "Phone B", passcode: "728194", at: T0 + 20 });
  assert.deepEqual([second.accepted.accepted, second.accepted.repeated, second.accepted.errorCode],
    [false, false, "TOKEN_ALREADY_USED"]);
  assert.deepEqual(second.accepted.writes, []);
  assert.deepEqual(second.accepted.events, []);
  throwsCode(() => second.start.pending.finish(second.accepted.answer), "TOKEN_ALREADY_USED");
  // The first device is unaffected.
  assert.match(first.start.pending.finish(first.accepted.answer).checkCode, /^\d{6}$/);
});

test("a repeated request (the answer was lost) gets the very same answer bytes, and no writes", () => {
  const { portal, qrText, store } = portalWithOffer();
  const srv = server(portal, store);
  const device = new TesseraDevice(newStorageKey());
  const start = device.startLink({ qrText, deviceName: "Phone", passcode: PASSCODE, now: T0 + 10 });
  const saved = start.pending.sealed();
  const first = srv.accept(start.request, T0 + 11);
  assert.deepEqual([first.accepted, first.repeated], [true, false]);
  const commits = store.commits;
  // The phone never got it; it reopens its pending link and sends the same bytes, later, to another server.
  const resend = device.openPendingLink(saved).request();
  assert.equal(resend, start.request);
  const other = server(TesseraPortal.fromSecret(portal.secret(), portal.name), store);
  const repeat = other.accept(resend, T0 + 40);
  assert.deepEqual([repeat.accepted, repeat.repeated, repeat.errorCode, repeat.writes, repeat.events],
    [true, true, undefined, [], []]);
  assert.equal(repeat.answer, first.answer, "same bytes");
  assert.equal(store.commits, commits + 1); // an empty transaction
  // Even with its device id now "seen": a repeat is recognised first.
  const req = portal.openLinkRequest(resend);
  assert.equal(store.keyUse(req.deviceId), "seen");
  assert.equal(req.accept(store.get("offer", req.offerId), "seen", T0 + 50).answer, first.answer);
  const fin = start.pending.finish(repeat.answer);
  assert.equal(srv.confirm(fin.account.deviceId, fin.checkCode, T0 + 60).linked, true);
});

test("two servers race to accept: exactly one wins, the other retries and gets TOKEN_ALREADY_USED or the repeat", () => {
  const { portal, qrText, store } = portalWithOffer();
  const servers = [portal, TesseraPortal.fromSecret(portal.secret(), portal.name)];
  const phone = (name) => new TesseraDevice(newStorageKey()).startLink({ qrText, deviceName: name, passcode: PASSCODE,
    now: T0 + 10 });
  const race = (texts) => {
    // Both servers read the same rows before either writes.
    const reqs = texts.map((t, i) => servers[i].openLinkRequest(t));
    const outs = reqs.map((r) => db(r.accept(store.get("offer", r.offerId), store.keyUse(r.deviceId), T0 + 11)));
    assert.ok(outs.every((o) => o.accepted && !o.repeated && o.writes.length === 2), "both decided to accept");
    const applied = outs.map((o) => store.apply(o.writes));
    assert.deepEqual(applied, [true, false], "exactly one compare-and-set wins");
    // The loser reads again and repeats the call.
    const retry = transact(store, () => [store.get("offer", reqs[1].offerId), store.keyUse(reqs[1].deviceId)],
      ([offer, keyUse]) => db(reqs[1].accept(offer, keyUse, T0 + 12)));
    return [outs[0], retry];
  };

  // Two phones with the same picture.
  const [a, b] = [phone("Phone A"), phone("Phone B")];
  const [winA, loseB] = race([a.request, b.request]);
  assert.deepEqual([loseB.accepted, loseB.errorCode, loseB.writes], [false, "TOKEN_ALREADY_USED", []]);
  throwsCode(() => b.pending.finish(loseB.answer), "TOKEN_ALREADY_USED");
  const fin = a.pending.finish(winA.answer);
  assert.equal(store.tables.pendingLink.size, 1);
  assert.equal(store.get("pendingLink", fin.account.deviceId).deviceName, "Phone A");
  assert.equal(store.get("offer", winA.writes[0].key).version, 2);

  // One phone whose request reached two servers (a retry through a load balancer).
  const s2 = portalWithOffer({ portal, store });
  const c = new TesseraDevice(newStorageKey()).startLink({ qrText: s2.qrText, deviceName: "Phone C",
    passcode: PASSCODE, now: T0 + 10 });
  const [winC, repeatC] = race([c.request, c.request]);
  assert.deepEqual([repeatC.accepted, repeatC.repeated, repeatC.writes], [true, true, []]);
  assert.equal(repeatC.answer, winC.answer, "the loser sends the winner's answer, byte for byte");
  assert.match(c.pending.finish(repeatC.answer).checkCode, /^\d{6}$/);
  assert.equal(store.conflicts, 2);
});

test("an expired QR code: TOKEN_EXPIRED on scan, on start and on accept", () => {
  const { portal, qrText, offer } = portalWithOffer({ ttl: 60 });
  assert.equal(offer.expiresAt, T0 + 60);
  const device = new TesseraDevice(newStorageKey());
  throwsCode(() => device.scanLinkQr(qrText, T0 + 60), "TOKEN_EXPIRED");
  assert.equal(device.scanLinkQr(qrText, T0 + 59).expiresAt, T0 + 60);
  throwsCode(() => device.startLink({ qrText, deviceName: "Phone", passcode: PASSCODE, now: T0 + 60 }), "TOKEN_EXPIRED");
  // Scanned in time, accepted too late (at exactly the expiry).
  const r = request(portal, qrText, offer, { at: T0 + 59 }); // accepted at T0 + 60
  assert.deepEqual([r.accepted.accepted, r.accepted.errorCode], [false, "TOKEN_EXPIRED"]);
  // The refusal closes the offer with a write (version 2): a server that
  // refused from an older snapshot loses its compare-and-set.
  assert.deepEqual(r.accepted.writes.map((w) => [w.kind, w.version, w.expectedVersion]), [["offer", 2, 1]]);
  throwsCode(() => r.start.pending.finish(r.accepted.answer), "TOKEN_EXPIRED");
  // One second earlier it is accepted.
  assert.equal(db(r.req.accept(offer, "fresh", T0 + 59)).accepted, true);
  // Lifetimes are minutes: 1..=600 s.
  for (const ttl of [0, 601, 3600]) {
    throwsCode(() => portal.createOffer({ account: "a", ttl, now: T0 }), "INVALID_INPUT", `ttl ${ttl}`);
  }
  assert.equal(portal.createOffer({ account: "a", ttl: 600, now: T0 }).offer.expiresAt, T0 + 600);
});

test("an unknown offer: accept(null) and a wrong offer give TOKEN_UNKNOWN", () => {
  const { portal, qrText, offer } = portalWithOffer();
  const r = request(portal, qrText, null);
  assert.deepEqual([r.accepted.accepted, r.accepted.errorCode, r.accepted.writes], [false, "TOKEN_UNKNOWN", []]);
  throwsCode(() => r.start.pending.finish(r.accepted.answer), "TOKEN_UNKNOWN");
  const other = db(portal.createOffer({ account: "anna@example.org", now: T0 }).offer);
  const r2 = request(portal, qrText, other);
  assert.equal(r2.accepted.errorCode, "TOKEN_UNKNOWN");
  // undefined works like null; the real offer still works afterwards.
  const r3 = portal.openLinkRequest(request(portal, qrText, offer).start.request);
  assert.equal(db(r3.accept(undefined, "fresh", T0 + 12)).errorCode, "TOKEN_UNKNOWN");
  assert.equal(db(r3.accept(offer, "fresh", T0 + 12)).accepted, true);
  // Another portal cannot read the request.
  throwsCode(() => TesseraPortal.generate("Other").openLinkRequest(r.start.request), "MESSAGE_TAMPERED");
  // keyUse is "fresh" or "seen", nothing else (the old accept(offer, now) is refused).
  for (const k of [T0, undefined, null, true, "FRESH", ""]) {
    throwsCode(() => r3.accept(offer, k, T0 + 12), "INVALID_INPUT", String(k));
  }
});

test("a device key seen before (pending link or device of any account) is refused: DEVICE_ALREADY_LINKED", () => {
  const { portal, qrText, offer } = portalWithOffer();
  const r = request(portal, qrText, offer, { keyUse: "seen" });
  assert.deepEqual([r.accepted.accepted, r.accepted.errorCode, r.accepted.writes], [false, "DEVICE_ALREADY_LINKED", []]);
  throwsCode(() => r.start.pending.finish(r.accepted.answer), "DEVICE_ALREADY_LINKED");
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

test("a pinned scan refuses a look-alike QR code (same name, another key): WRONG_ACCOUNT", () => {
  const { portal, qrText } = portalWithOffer();
  const lookAlike = portalWithOffer({ portal: TesseraPortal.generate(portal.name) });
  const device = new TesseraDevice(newStorageKey());
  const pinnedPortalKey = portal.publicKey();
  assert.equal(device.scanLinkQr(qrText, T0, { pinnedPortalKey }).portalFingerprint, portal.fingerprint);
  assert.equal(device.scanLinkQr(lookAlike.qrText, T0).portalName, portal.name, "unpinned, it looks the same");
  throwsCode(() => device.scanLinkQr(lookAlike.qrText, T0, { pinnedPortalKey }), "WRONG_ACCOUNT");
  throwsCode(() => device.scanLinkQr(qrText, T0, { pinnedPortalKey: new Uint8Array(5) }), "WRONG_ACCOUNT");
  const params = { qrText: lookAlike.qrText, deviceName: "Phone", passcode: PASSCODE, now: T0 };
  throwsCode(() => device.startLink({ ...params, pinnedPortalKey }), "WRONG_ACCOUNT");
  assert.equal(typeof device.startLink({ ...params, qrText, pinnedPortalKey }).request, "string");
  // No pin: { }, null, undefined. A pin that is not bytes is a programming error.
  for (const options of [{}, null, undefined, { pinnedPortalKey: null }]) {
    assert.equal(device.scanLinkQr(lookAlike.qrText, T0, options).portalName, portal.name);
  }
  throwsCode(() => device.scanLinkQr(qrText, T0, { pinnedPortalKey: portal.fingerprint }), "INVALID_INPUT");
  throwsCode(() => device.scanLinkQr(qrText, T0, "pin"), "INVALID_INPUT");
  throwsCode(() => device.startLink({ ...params, pinnedPortalKey: [1, 2] }), "INVALID_INPUT");
});

test("the check code must match exactly: empty, 1 digit, a 5-digit prefix, 7 digits → CHECK_CODE_MISMATCH", () => {
  const l0 = portalWithOffer();
  const srv = server(l0.portal, l0.store);
  const start = new TesseraDevice(newStorageKey()).startLink({ qrText: l0.qrText, deviceName: "Phone",
    passcode: PASSCODE, now: T0 + 10 });
  const fin = start.pending.finish(srv.accept(start.request, T0 + 11).answer);
  const cc = fin.checkCode;
  const id = fin.account.deviceId;
  for (const [i, typed] of ["", cc[0], cc.slice(0, 5), cc + "0"].entries()) {
    const res = srv.confirm(id, typed, T0 + 20 + i);
    assert.deepEqual([res.linked, res.errorCode, res.events], [false, "CHECK_CODE_MISMATCH", []], JSON.stringify(typed));
    assert.equal(l0.store.get("pendingLink", id).attempts, i + 1, "counted");
  }
  assert.equal(l0.store.tables.device.size, 0);
  // White space around the right code is fine (the 5th try, not locked).
  const ok = srv.confirm(id, ` ${cc} `, T0 + 30);
  assert.equal(ok.linked, true, ok.errorCode);
  assert.equal(l0.store.get("device", id).status, "active");
});

test("wrong check codes: exactly five are counted, LOCKED_OUT at the fifth, even with servers racing; expiry", () => {
  const l0 = portalWithOffer();
  const portals = [l0.portal, TesseraPortal.fromSecret(l0.portal.secret(), l0.portal.name)];
  const servers = portals.map((p) => server(p, l0.store));
  const start = new TesseraDevice(newStorageKey()).startLink({ qrText: l0.qrText, deviceName: "Phone",
    passcode: PASSCODE, now: T0 + 10 });
  const fin = start.pending.finish(servers[0].accept(start.request, T0 + 11).answer);
  const id = fin.account.deviceId;
  const wrong = fin.checkCode === "111112" ? "111113" : "111112";
  // Rounds of two concurrent wrong codes: both servers read the same version,
  // one write wins, the other conflicts, reads again and is counted too.
  const codes = [];
  for (let round = 0; round < 4; round++) {
    const pending = l0.store.get("pendingLink", id);
    const outs = portals.map((p) => db(p.confirmLink(pending, wrong, T0 + 20 + round)));
    for (const [i, out] of outs.entries()) {
      const final = l0.store.apply(out.writes) ? out : servers[i].confirm(id, wrong, T0 + 20 + round);
      codes.push(final.errorCode);
    }
  }
  assert.deepEqual(codes, ["CHECK_CODE_MISMATCH", "CHECK_CODE_MISMATCH", "CHECK_CODE_MISMATCH", "CHECK_CODE_MISMATCH",
    "LOCKED_OUT", "INVALID_STATE", "INVALID_STATE", "INVALID_STATE"]);
  assert.equal(l0.store.conflicts, 3);
  const locked = l0.store.get("pendingLink", id);
  assert.deepEqual([locked.attempts, locked.closed, locked.version], [5, true, 6]);
  // The right code is too late now; nothing is written.
  const late = servers[0].confirm(id, fin.checkCode, T0 + 31);
  assert.deepEqual([late.linked, late.errorCode, late.writes], [false, "INVALID_STATE", []]);
  assert.equal(l0.store.tables.device.size, 0);

  // The check code must be typed within 10 minutes: at confirmBy it has expired.
  const b = portalWithOffer();
  const r2 = request(b.portal, b.qrText, b.offer);
  const fin2 = r2.start.pending.finish(r2.accepted.answer);
  const pending2 = only(r2.accepted, "pendingLink");
  const lastSecond = db(b.portal.confirmLink(pending2, fin2.checkCode, pending2.confirmBy - 1));
  assert.equal(lastSecond.linked, true);
  const expired = db(b.portal.confirmLink(pending2, fin2.checkCode, pending2.confirmBy));
  assert.deepEqual([expired.linked, expired.errorCode, only(expired, "pendingLink").closed], [false, "TOKEN_EXPIRED", true]);
  // Not a string: a programming error, thrown.
  throwsCode(() => b.portal.confirmLink(pending2, 650987, T0), "INVALID_INPUT");
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

test("tampered messages and state: MESSAGE_TAMPERED, STATE_CORRUPT, MALFORMED_MESSAGE", () => {
  const { portal, qrText, offer } = portalWithOffer();
  const device = new TesseraDevice(newStorageKey());
  const start = device.startLink({ qrText, deviceName: "Phone", passcode: PASSCODE, now: T0 + 10 });
  // Request.
  throwsCode(() => portal.openLinkRequest(tamper(start.request)), "MESSAGE_TAMPERED", "request");
  throwsCode(() => portal.openLinkRequest("not a message!"), "MALFORMED_MESSAGE");
  throwsCode(() => portal.openLinkRequest(start.request.slice(0, 20)), "MALFORMED_MESSAGE");
  throwsCode(() => portal.openLinkRequest(start.request + "A".repeat(1024)), "MALFORMED_MESSAGE", "too long");
  // QR text.
  throwsCode(() => device.scanLinkQr("hello", T0), "MALFORMED_MESSAGE");
  throwsCode(() => device.scanLinkQr(qrText.slice(0, -6), T0), "MALFORMED_MESSAGE");
  // Answer: a damaged or forged one is refused and does not spend the
  // pending link (junk cannot cancel a link); the genuine answer then works.
  const saved = start.pending.sealed();
  const acc = db(portal.openLinkRequest(start.request).accept(offer, "fresh", T0 + 11));
  throwsCode(() => start.pending.finish(tamper(acc.answer)), "MESSAGE_TAMPERED", "answer");
  throwsCode(() => start.pending.finish("!!"), "MALFORMED_MESSAGE");
  throwsCode(() => start.pending.finish("AwE"), "MALFORMED_MESSAGE"); // header only
  throwsCode(() => start.pending.finish("AwEA"), "MALFORMED_MESSAGE"); // status byte, nothing sealed
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

test("single use on the device: finish twice → ALREADY_CONSUMED; a refusal spends the pending link; accept may repeat", () => {
  const { portal, qrText, offer } = portalWithOffer();
  const r = request(portal, qrText, offer);
  const fin = r.start.pending.finish(r.accepted.answer);
  assert.match(fin.checkCode, /^\d{6}$/);
  throwsCode(() => r.start.pending.finish(r.accepted.answer), "ALREADY_CONSUMED");
  throwsCode(() => r.start.pending.sealed(), "ALREADY_CONSUMED");
  throwsCode(() => r.start.pending.request(), "ALREADY_CONSUMED");
  // accept is not single use: called again on the same rows (a retry after
  // a conflict) it decides the same, sealing the same answer bytes.
  const again = db(r.req.accept(offer, "fresh", T0 + 11));
  assert.equal(again.accepted, true);
  assert.equal(again.answer, r.accepted.answer);
  assert.deepEqual(again.writes.map((w) => [w.kind, w.version]), r.accepted.writes.map((w) => [w.kind, w.version]));
  // The getters still answer; refuse works any time.
  assert.equal(r.req.offerId, offer.offerId);
  const device = new TesseraDevice(newStorageKey());
  const start = device.startLink({ qrText, deviceName: "Phone", passcode: PASSCODE, now: T0 + 20 });
  const req = portal.openLinkRequest(start.request);
  const saved = start.pending.sealed();
  const refusal = req.refuse("TOKEN_ALREADY_USED");
  assert.equal(req.refuse("TOKEN_ALREADY_USED"), refusal, "one code, the same bytes");
  assert.equal(db(req.accept(offer, "fresh", T0 + 21)).accepted, true);
  assert.notEqual(req.refuse("TOKEN_EXPIRED"), refusal);
  throwsCode(() => start.pending.finish(refusal), "TOKEN_ALREADY_USED");
  throwsCode(() => req.refuse("NOT_A_CODE"), "INVALID_INPUT");
  throwsCode(() => req.refuse(3), "INVALID_INPUT");
  // The portal's refusal is final for that handle: a second finish is
  // ALREADY_CONSUMED (a pending link opened from its sealed copy is a new handle).
  throwsCode(() => start.pending.finish(refusal), "ALREADY_CONSUMED");
  const reopened = device.openPendingLink(saved);
  assert.equal(reopened.request(), start.request);
  throwsCode(() => reopened.finish(req.refuse("TOKEN_EXPIRED")), "TOKEN_EXPIRED");
  throwsCode(() => reopened.finish(refusal), "ALREADY_CONSUMED");
  throwsCode(() => reopened.sealed(), "ALREADY_CONSUMED");
});

test("unlink on the portal reaches the device: status \"active\", then DEVICE_REVOKED; status writes nothing", () => {
  const l = linked();
  const { portal, device, fin, store, srv, id } = l;
  // Still linked: the status request is answered from the device row.
  let st = device.statusRequest(fin.state, T0 + 50);
  assert.ok(st.probe instanceof StatusProbe);
  assert.deepEqual(portal.openStatusRequest(st.request), { deviceId: id });
  const commits = store.commits;
  const answer = srv.status(st.request, T0 + 50);
  assert.equal(typeof answer, "string");
  assert.equal(store.commits, commits, "read-only");
  assert.equal(device.readStatusAnswer(fin.state, st.probe, answer), "active");
  // A probe reads one answer.
  throwsCode(() => device.readStatusAnswer(fin.state, st.probe, answer), "ALREADY_CONSUMED");
  // The request's time window: 300 s either way.
  st = device.statusRequest(fin.state, T0 + 1000);
  const rows = { device: store.get("device", id) };
  assert.equal(typeof portal.answerStatus(st.request, rows, T0 + 1300), "string");
  assert.equal(typeof portal.answerStatus(st.request, rows, T0 + 700), "string");
  throwsCode(() => portal.answerStatus(st.request, rows, T0 + 1301), "INVALID_TIME");
  throwsCode(() => portal.answerStatus(st.request, rows, T0 + 699), "INVALID_TIME");

  // Lost phone: the portal unlinks it without the device.
  const un = srv.unlink(id, T0 + 70);
  assert.equal(only(un, "device").status, "unlinked");
  assert.deepEqual(un.events, [{ type: "deviceUnlinked", account: "anna@example.org", deviceId: id, at: T0 + 70 }]);
  throwsCode(() => portal.unlinkDevice(store.get("device", id), T0 + 71), "INVALID_STATE");
  throwsCode(() => portal.renameDevice(store.get("device", id), "Found it", T0 + 72), "INVALID_STATE");
  st = device.statusRequest(fin.state, T0 + 80);
  const revoked = srv.status(st.request, T0 + 80);
  throwsCode(() => device.readStatusAnswer(fin.state, st.probe, revoked), "DEVICE_REVOKED");
  // Its codes are refused too.
  const code = device.totp(fin.state, { passcode: PASSCODE }, T0 + 90);
  assert.equal(srv.verify(id, code, T0 + 90).errorCode, "DEVICE_REVOKED");

  // A forged answer, a forged request, another device's row, a row as records.
  st = device.statusRequest(fin.state, T0 + 100);
  const unRow = store.get("device", id);
  throwsCode(() => device.readStatusAnswer(fin.state, st.probe, tamper(revoked, 30)), "MESSAGE_TAMPERED");
  throwsCode(() => portal.answerStatus(tamper(st.request, 40), { device: unRow }, T0 + 100), "MESSAGE_TAMPERED");
  const sibling = linked({ portal, store });
  throwsCode(() => portal.answerStatus(st.request, { device: sibling.deviceRecord }, T0 + 100), "DEVICE_UNKNOWN");
  throwsCode(() => portal.answerStatus(st.request, {}, T0 + 100), "DEVICE_UNKNOWN");
  const stranger = linked();
  throwsCode(() => portal.answerStatus(st.request, { device: stranger.deviceRecord }, T0 + 100), "STATE_CORRUPT");
  throwsCode(() => portal.answerStatus(st.request, unRow, T0 + 100), "INVALID_INPUT", "a row instead of { device }");
  throwsCode(() => portal.answerStatus(st.request, null, T0 + 100), "INVALID_INPUT");
  throwsCode(() => device.readStatusAnswer(fin.state, {}, revoked), "INVALID_INPUT");
  throwsCode(() => device.readStatusAnswer(fin.state, null, revoked), "INVALID_INPUT");
});

test("an unlink racing a code check is never undone: the check retries and gets DEVICE_REVOKED", () => {
  const l = linked();
  const { portal, device, fin, store, id } = l;
  const code = device.totp(fin.state, { passcode: PASSCODE }, T0 + 100);
  const before = store.get("device", id);
  const check = db(portal.verifyDeviceTotp(before, code, T0 + 100)); // read before the unlink …
  assert.ok(store.apply(db(portal.unlinkDevice(before, T0 + 100)).writes)); // … which commits first
  assert.equal(check.accepted, true);
  assert.equal(store.apply(check.writes), false, "the stale write is refused");
  const retried = l.srv.verify(id, code, T0 + 100);
  assert.deepEqual([retried.accepted, retried.errorCode], [false, "DEVICE_REVOKED"]);
  assert.equal(store.get("device", id).status, "unlinked");
});

test("an orphaned phone (check code never typed) learns it: \"awaiting_confirmation\", then LINK_NOT_CONFIRMED", () => {
  const { portal, qrText, store } = portalWithOffer();
  const srv = server(portal, store);
  const device = new TesseraDevice(newStorageKey());
  const start = device.startLink({ qrText, deviceName: "Phone", passcode: PASSCODE, now: T0 + 10 });
  const fin = start.pending.finish(srv.accept(start.request, T0 + 11).answer);
  const id = fin.account.deviceId;
  const ask = (now) => {
    const st = device.statusRequest(fin.state, now);
    const commits = store.commits;
    const answer = srv.status(st.request, now);
    assert.equal(store.commits, commits, "read-only");
    return () => device.readStatusAnswer(fin.state, st.probe, answer);
  };
  assert.equal(ask(T0 + 60)(), "awaiting_confirmation");
  const confirmBy = store.get("pendingLink", id).confirmBy;
  assert.equal(confirmBy, fin.account.confirmBy);
  assert.equal(ask(confirmBy - 1)(), "awaiting_confirmation");
  // Never typed: after the deadline the portal says so and the app wipes
  // the link (the exact second, with the servers' clock skew, is the core's
  // to test).
  throwsCode(ask(confirmBy + 600), "LINK_NOT_CONFIRMED");
  assert.equal(store.get("pendingLink", id).version, 1, "nothing was written");
  // Locked out by wrong codes: the same.
  for (let i = 0; i < 5; i++) srv.confirm(id, fin.checkCode === "000000" ? "000001" : "000000", T0 + 70);
  assert.equal(store.get("pendingLink", id).closed, true);
  throwsCode(ask(T0 + 80), "LINK_NOT_CONFIRMED");
  // The phone may link again (a new QR code; its new key is fresh).
  const again = portalWithOffer({ portal, store });
  const start2 = device.startLink({ qrText: again.qrText, deviceName: "Phone", passcode: PASSCODE, now: T0 + 90 });
  assert.equal(srv.accept(start2.request, T0 + 91).accepted, true);
});

test("device TOTP: wrong passcode → OTP_MISMATCH; the fifth failure → LOCKED_OUT; one code sent twice at once is accepted once", () => {
  const l = linked();
  const { device, fin, srv, id } = l;
  for (let i = 0; i < 5; i++) {
    const t = T0 + 200 + 30 * i;
    const wrong = device.totp(fin.state, { passcode: "000111" }, t); // the device cannot tell
    assert.match(wrong, /^\d{6}$/);
    const res = srv.verify(id, wrong, t);
    // The fifth failure locks, and says so.
    assert.deepEqual([res.accepted, res.errorCode], [false, i < 4 ? "OTP_MISMATCH" : "LOCKED_OUT"], `attempt ${i + 1}`);
  }
  // Locked: even the right passcode's code is refused now.
  const t = T0 + 400;
  const good = device.totp(fin.state, { passcode: PASSCODE }, t);
  assert.deepEqual(Object.entries(srv.verify(id, good, t)).filter(([k]) => k !== "writes"),
    [["accepted", false], ["errorCode", "LOCKED_OUT"], ["events", []]]);
  // The unlock object: exactly one factor.
  for (const unlock of [{}, { passcode: PASSCODE, biometricSecret: new Uint8Array(32) }, { passcode: 493817 },
    { biometricSecret: new Uint8Array(31) }, "493817", null]) {
    throwsCode(() => device.totp(fin.state, unlock, t), "INVALID_INPUT", JSON.stringify(unlock));
  }

  // Another device: the same code sent to two servers at once. Both read
  // the same row; one write wins, the other retries and sees a replay.
  const m = linked();
  const code = m.device.totp(m.fin.state, { passcode: PASSCODE }, T0 + 100);
  const row = m.store.get("device", m.id);
  const outs = [m.portal, TesseraPortal.fromSecret(m.portal.secret(), m.portal.name)]
    .map((p) => db(p.verifyDeviceTotp(row, code, T0 + 100)));
  assert.deepEqual(outs.map((o) => o.accepted), [true, true]);
  assert.deepEqual(outs.map((o) => m.store.apply(o.writes)), [true, false]);
  const retried = m.srv.verify(m.id, code, T0 + 100);
  assert.deepEqual([retried.accepted, retried.errorCode], [false, "OTP_REPLAYED"]);
  assert.equal(m.store.get("device", m.id).lastUsedAt, T0 + 100);
});

test("stored rows survive JSON round trips; the sealed copy is the truth, bound to its key, account and version", () => {
  const { portal, qrText, offer } = portalWithOffer();
  // Every row crosses JSON twice and keeps working.
  const twice = (v) => db(db(v));
  const r = request(portal, qrText, twice(offer));
  const used = twice(only(r.accepted, "offer"));
  const fin = r.start.pending.finish(r.accepted.answer);
  const conf = twice(portal.confirmLink(twice(only(r.accepted, "pendingLink")), fin.checkCode, T0 + 20));
  assert.equal(conf.linked, true);
  const dev = only(conf, "device");
  // Edited query columns change nothing: a used offer marked unused is still
  // used, an unlinked device marked active is still unlinked.
  const r2 = request(portal, qrText, { ...used, usedAt: null, expiresAt: T0 + 9999 }, { name: "Phone B" });
  assert.equal(r2.accepted.errorCode, "TOKEN_ALREADY_USED");
  const un = only(twice(portal.unlinkDevice(dev, T0 + 30)), "device");
  const code = r.device.totp(fin.state, { passcode: PASSCODE }, T0 + 60);
  assert.equal(portal.verifyDeviceTotp({ ...un, status: "active", name: "x" }, code, T0 + 60).errorCode, "DEVICE_REVOKED");
  // Only the key column, account, version and sealed are read.
  const bare = { deviceId: un.deviceId, account: un.account, version: un.version, sealed: un.sealed };
  assert.equal(portal.verifyDeviceTotp(bare, code, T0 + 60).errorCode, "DEVICE_REVOKED");
  for (const k of ["deviceId", "account", "version", "sealed"]) {
    throwsCode(() => portal.verifyDeviceTotp({ ...bare, [k]: undefined }, code, T0 + 60), "INVALID_INPUT", `no ${k}`);
  }
  // A row moved to another account, key or version: STATE_CORRUPT.
  const pending = only(r.accepted, "pendingLink");
  const moved = [
    ["offer → account", () => r.req.accept({ ...offer, account: "mallory" }, "fresh", T0 + 12)],
    ["offer → version", () => r.req.accept({ ...offer, version: 2 }, "fresh", T0 + 12)],
    ["offer → key", () => r.req.accept({ ...offer, offerId: (offer.offerId[0] === "0" ? "1" : "0") +
      offer.offerId.slice(1) }, "fresh", T0 + 12)],
    ["pending → account", () => portal.confirmLink({ ...pending, account: "mallory" }, fin.checkCode, T0 + 20)],
    ["pending → version", () => portal.confirmLink({ ...pending, version: 7 }, fin.checkCode, T0 + 20)],
    ["pending → another device id", () => portal.confirmLink({ ...pending, deviceId: "0011223344556677" },
      fin.checkCode, T0 + 20)],
    ["device → account", () => portal.verifyDeviceTotp({ ...dev, account: "mallory" }, code, T0 + 60)],
    ["device → version", () => portal.unlinkDevice({ ...dev, version: 2 }, T0 + 60)],
    ["device → status request of another account", () => portal.answerStatus(
      r.device.statusRequest(fin.state, T0 + 60).request, { device: { ...dev, account: "mallory" } }, T0 + 60)],
  ];
  for (const [what, use] of moved) throwsCode(use, "STATE_CORRUPT", what);
});

test("a stored row whose sealed text was changed → STATE_CORRUPT; a missing key column → INVALID_INPUT", () => {
  const l = linked();
  const { portal, qrText } = l;
  const offer = db(portal.createOffer({ account: "anna@example.org", now: T0 }).offer);
  const pending = l.store.get("pendingLink", l.id);
  const req = () => portal.openLinkRequest(new TesseraDevice(newStorageKey())
    .startLink({ qrText, deviceName: "P", passcode: PASSCODE, now: T0 + 1 }).request);
  const cases = [
    ["offer", (s) => req().accept({ ...offer, sealed: s }, "fresh", T0 + 2), offer.sealed],
    ["pending", (s) => portal.confirmLink({ ...pending, sealed: s }, "000000", T0 + 2), pending.sealed],
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
  // A row of another kind with the same columns (a table mix-up): the seal
  // binds the record type.
  throwsCode(() => portal.verifyDeviceTotp(pending, "000000", T0 + 2), "STATE_CORRUPT", "pending as device");
  throwsCode(() => portal.confirmLink(l.deviceRecord, "000000", T0 + 2), "STATE_CORRUPT", "device as pending");
  throwsCode(() => req().accept({ ...l.deviceRecord, offerId: l.id }, "fresh", T0 + 2), "STATE_CORRUPT", "device as offer");
  // Without its key column it is not a row of that kind at all.
  throwsCode(() => req().accept(l.deviceRecord, "fresh", T0 + 2), "INVALID_INPUT", "device as offer");
  throwsCode(() => portal.confirmLink(offer, "000000", T0 + 2), "INVALID_INPUT", "offer as pending");
  throwsCode(() => req().accept({}, "fresh", T0), "INVALID_INPUT");
  throwsCode(() => req().accept("offer", "fresh", T0), "INVALID_INPUT");
  throwsCode(() => portal.renameDevice({ ...l.deviceRecord, version: "1" }, "x", T0), "INVALID_INPUT");
});

test("Date.now() passed as seconds (or any time outside 2000..3000) → INVALID_TIME at every step, nothing counted", () => {
  const l = linked();
  const { portal, device, fin, store, id } = l;
  const ms = Date.now();
  const { qrText, offer } = portal.createOffer({ account: "anna@example.org", now: T0 });
  throwsCode(() => portal.createOffer({ account: "anna@example.org", now: ms }), "INVALID_TIME", "createOffer");
  throwsCode(() => device.scanLinkQr(qrText, ms), "INVALID_TIME", "scanLinkQr");
  throwsCode(() => device.scanLinkQr(qrText, 59), "INVALID_TIME", "scanLinkQr in 1970");
  const other = new TesseraDevice(newStorageKey());
  throwsCode(() => other.startLink({ qrText, deviceName: "P", passcode: PASSCODE, now: ms }), "INVALID_TIME", "startLink");
  const start = other.startLink({ qrText, deviceName: "P", passcode: PASSCODE, now: T0 + 1 });
  const acc = db(portal.openLinkRequest(start.request).accept(offer, "fresh", ms));
  assert.deepEqual([acc.accepted, acc.errorCode, acc.writes], [false, "INVALID_TIME", []], "accept");
  // The portal's clock was at fault, not the request: the phone keeps its
  // pending link, and the same request later links.
  throwsCode(() => start.pending.finish(acc.answer), "INVALID_TIME", "finish");
  const later = db(portal.openLinkRequest(start.pending.request()).accept(offer, "fresh", T0 + 2));
  assert.equal(later.accepted, true);
  assert.match(start.pending.finish(later.answer).checkCode, /^\d{6}$/);
  // A pending link: the check code with a bad clock neither confirms, cancels nor counts.
  const p = portalWithOffer({ portal, store });
  const s2 = other.startLink({ qrText: p.qrText, deviceName: "P", passcode: PASSCODE, now: T0 + 1 });
  const fin2 = s2.pending.finish(l.srv.accept(s2.request, T0 + 2).answer);
  for (const t of [ms, 0]) {
    const c = db(portal.confirmLink(store.get("pendingLink", fin2.account.deviceId), fin2.checkCode, t));
    assert.deepEqual([c.linked, c.errorCode, c.writes], [false, "INVALID_TIME", []], `confirmLink at ${t}`);
  }
  // The device's codes and status.
  throwsCode(() => device.totp(fin.state, { passcode: PASSCODE }, ms), "INVALID_TIME", "totp");
  throwsCode(() => device.statusRequest(fin.state, ms), "INVALID_TIME", "statusRequest");
  const st = device.statusRequest(fin.state, T0 + 40);
  throwsCode(() => portal.answerStatus(st.request, { device: store.get("device", id) }, ms), "INVALID_TIME", "answerStatus");
  // The portal's checks of device codes count no failure.
  const row = store.get("device", id);
  for (const t of [ms, 0]) {
    const v = db(portal.verifyDeviceTotp(row, "123456", t));
    assert.deepEqual([v.accepted, v.errorCode, v.writes], [false, "INVALID_TIME", []], `verifyDeviceTotp at ${t}`);
  }
  throwsCode(() => portal.unlinkDevice(row, ms), "INVALID_TIME", "unlinkDevice");
  throwsCode(() => portal.renameDevice(row, "x", ms), "INVALID_TIME", "renameDevice");
  assert.equal(store.get("device", id).version, row.version);
  assert.equal(store.get("device", id).status, "active");
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
