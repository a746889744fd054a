// The JavaScript runner of the language-neutral scenario files
// (vectors/scenarios/*.json, format in vectors/scenarios/README.md), with
// the semantics of the Rust runner (host/tests/scenarios.rs): one portal and
// its in-memory store applying every change as compare-and-sets, phones by
// name, QR texts in vars, OTP verifiers by name, offline authenticators
// (flow 3) as tokens by name with their orders, activations and credentials
// rows. An unknown op or key, a failed compare-and-set or a wrong outcome
// fails the file, naming the file and the step.
//
// One module, two hosts:
//   * Node: `node --test bindings-wasm/test/` runs this file; it reads every
//     vectors/scenarios/*.json and runs each as a node:test test through the
//     package (`@tessera/sdk`, its Node entry). Fewer than MIN_FILES fail.
//   * The browser: test/browser/scenarios.html imports `runFiles` and runs
//     the files the test server lists, with the browser entry (pkg/index.js), then
//     reports its counts to the Playwright driver (test/browser/run.mjs).
//
// Times: `at` is Unix seconds in the files; the API takes epoch milliseconds.

/** The scenario itself is broken, or its outcome is not the expected one. */
export class ScenarioError extends Error {
  constructor(message) {
    super(message);
    this.name = "ScenarioError";
  }
}

const fail = (message) => {
  throw new ScenarioError(message);
};

/** Fewer files than this means the directory was not found or emptied (as every runner). */
export const MIN_FILES = 10;

/** Common keys of every step (`skip`: the reason a step is not run). */
const COMMON = ["do", "at", "expect", "events", "skip"];

/** Inputs of each op (besides COMMON) and the op-specific keys of its `expect` object. */
export const OPS = {
  portal: [["name"], []],
  offer: [["account", "ttl", "rules", "deviceCodes", "save"], []],
  offerNewDevice: [["account", "save"], []],
  challenge: [["account", "phone", "approval", "digits", "ttl", "save"], []],
  linkChallenge: [["phone", "digits", "ttl", "save"], []],
  readChallenge: [["phone", "qr", "edit"], ["portalName", "account", "approval", "digits"]],
  answer: [["phone", "qr", "passcode", "biometric", "signed", "edit"], []],
  verify: [["challenge", "answer", "edit"], ["device"]],
  vouch: [["phone", "challenge", "answer", "edit"], []],
  unlockDevice: [["phone"], []],
  clone: [["phone", "from"], []],
  scan: [["phone", "qr", "pinned", "edit"], ["portalName", "expiresAt"]],
  startLink: [["phone", "qr", "name", "passcode", "biometrics", "pinned", "edit"], []],
  accept: [["phone", "edit", "offer", "deviceKeySeen"], []],
  finish: [["phone", "edit", "answer"], []],
  confirm: [["account", "code"], []],
  devices: [["account"], ["devices"]],
  rename: [["phone", "name"], []],
  unlink: [["phone", "token"], []],
  activationSettings: [["settings"], []],
  token: [["token", "serial"], []],
  importDevices: [["tokens", "lines", "header"], ["serials"]],
  order: [["account", "activationCode", "token", "save"], []],
  activationStart: [["order", "save"], ["step", "qr"]],
  activationNext: [["activation", "input"], ["step", "qr", "recoveryCodes"]],
  tokenScan: [["token", "qr", "edit"], ["kind", "digits", "portalName", "userId", "approval", "replaced"]],
  verifyPassword: [["account", "password"], []],
  redeemRecoveryCode: [["account", "code"], ["left"]],
  status: [["phone", "edit", "again"], ["status"]],
  deviceCode: [["phone", "passcode", "biometric", "replay"], []],
  wipe: [["phone"], []],
  hotp: [["secret", "counter", "digits", "algorithm"], ["code"]],
  totp: [["secret", "period", "digits", "algorithm"], ["code"]],
  verifyHotp: [["verifier", "config", "state", "code"], ["matched", "drift"]],
  verifyTotp: [["verifier", "config", "state", "code"], ["matched", "drift"]],
  resyncHotp: [["verifier", "config", "state", "code1", "code2", "window"], ["matched", "drift"]],
  unlock: [["verifier"], []],
};

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const show = (v) => JSON.stringify(v);

function onlyKeys(m, keys, where) {
  for (const k of Object.keys(m)) if (!keys.includes(k)) fail(`unknown key \`${k}\` in ${where}`);
}

/** Typed access to a step's (or a nested object's) inputs. */
class Args {
  constructor(m) {
    this.m = m;
  }
  has(k) {
    return Object.hasOwn(this.m, k);
  }
  get(k) {
    return this.has(k) ? this.m[k] : undefined;
  }
  optStr(k) {
    const v = this.get(k);
    if (v !== undefined && typeof v !== "string") fail(`\`${k}\` must be a string, not ${show(v)}`);
    return v;
  }
  str(k) {
    return this.optStr(k) ?? fail(`missing input \`${k}\``);
  }
  optBool(k) {
    const v = this.get(k);
    if (v !== undefined && typeof v !== "boolean") fail(`\`${k}\` must be a boolean, not ${show(v)}`);
    return v;
  }
  optInt(k) {
    const v = this.get(k);
    if (v !== undefined && !Number.isSafeInteger(v)) fail(`\`${k}\` must be an integer, not ${show(v)}`);
    return v;
  }
  int(k) {
    return this.optInt(k) ?? fail(`missing input \`${k}\``);
  }
  /** The step's clock: Unix seconds in the file, epoch milliseconds for the API. */
  at() {
    if (!this.has("at")) fail("missing `at`");
    const s = this.m.at;
    if (!Number.isSafeInteger(s) || s < 0) fail(`\`at\` must be Unix seconds, not ${show(s)}`);
    return s * 1000;
  }
}

export function hex(s) {
  if (typeof s !== "string" || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) fail(`bad hex ${show(s)}`);
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** `"tamper"` replaces the middle character (`A`, or `B` if it was `A`); `"truncate"` drops the last 10. */
export function edit(text, how) {
  const chars = [...text];
  switch (how) {
    case undefined:
      return text;
    case "tamper": {
      const mid = Math.floor(chars.length / 2);
      chars[mid] = chars[mid] === "A" ? "B" : "A";
      return chars.join("");
    }
    case "truncate":
      return chars.slice(0, Math.max(0, chars.length - 10)).join("");
    default:
      return fail(`unknown edit ${show(how)}`);
  }
}

const ALGORITHMS = ["sha1", "sha256", "sha512"];
function algorithm(v) {
  if (v === undefined) return "sha1";
  if (!ALGORITHMS.includes(v)) fail(`unknown algorithm ${show(v)}`);
  return v;
}

const wrongCode = (code) => code.replace(/[0-9]/g, (d) => String((Number(d) + 1) % 10));

/** `config` of a verify step, keys as the API (`secret` in hex). */
function verifierConfig(v) {
  if (!isObject(v)) fail("`config` must be an object");
  onlyKeys(v, ["secret", "algorithm", "digits", "periodSeconds", "window", "maxFailures", "lockSeconds"], "config");
  const a = new Args(v);
  const config = { secret: hex(a.str("secret")) };
  if (a.has("algorithm")) config.algorithm = algorithm(v.algorithm);
  for (const k of ["digits", "periodSeconds", "window", "maxFailures", "lockSeconds"]) {
    if (a.has(k)) config[k] = a.optInt(k);
  }
  return config;
}

/** `state` of a verify step, keys as the API; `lockedUntil` in Unix seconds. */
function verifierState(v) {
  if (!isObject(v)) fail("`state` must be an object");
  onlyKeys(v, ["lastAccepted", "nextCounter", "consecutiveFailures", "locked", "lockedUntil"], "state");
  const a = new Args(v);
  const state = {
    nextCounter: a.optInt("nextCounter") ?? 0,
    consecutiveFailures: a.optInt("consecutiveFailures") ?? 0,
    locked: a.optBool("locked") ?? false,
  };
  if (a.has("lastAccepted")) state.lastAccepted = a.optInt("lastAccepted");
  if (a.has("lockedUntil")) state.lockedUntil = a.optInt("lockedUntil") * 1000;
  return state;
}

/** `deviceCodes` of an offer: the API's `DeviceCodeRules`, unknown keys refused. */
function deviceCodeRules(v) {
  if (!isObject(v)) fail("`deviceCodes` must be an object");
  onlyKeys(v, ["algorithm", "digits", "periodSeconds"], "deviceCodes");
  const a = new Args(v);
  const rules = {};
  if (a.has("algorithm")) rules.algorithm = algorithm(v.algorithm);
  for (const k of ["digits", "periodSeconds"]) if (a.has(k)) rules[k] = a.optInt(k);
  return rules;
}

/** `approval` of a challenge: the API's JSON (`kind` and that kind's keys), unknown keys refused. */
function approvalOf(v) {
  if (!isObject(v)) fail("`approval` must be an object");
  const kinds = { login: [[], []], transaction: [["amount", "currency", "payee"], ["text"]], linkDevice: [["deviceName", "deviceId"], []] };
  const spec = Object.hasOwn(kinds, v.kind) ? kinds[v.kind] : fail(`unknown approval kind ${show(v.kind)}`);
  onlyKeys(v, ["kind", ...spec[0], ...spec[1]], "approval");
  const a = new Args(v);
  const approval = { kind: v.kind };
  for (const k of spec[0]) approval[k] = a.str(k);
  if (a.has("text")) {
    if (!Array.isArray(v.text) || !v.text.every((t) => typeof t === "string")) fail("`text` must be an array of strings");
    approval.text = [...v.text];
  }
  return approval;
}

/** `digits` and `ttl` of a challenge step as the API's `ChallengeSettings`. */
function challengeSettings(a) {
  const settings = {};
  if (a.has("digits")) settings.digits = a.optInt("digits");
  if (a.has("ttl")) settings.ttlSeconds = a.optInt("ttl");
  return settings;
}

/** `settings` of `activationSettings`: the API's `ActivationSettings`, unknown keys and wrong types refused. */
function activationSettings(v) {
  if (!isObject(v)) fail("`settings` must be an object");
  const wide = ["hashIterations", "usableAfterSeconds", "activationTtlSeconds", "orderTtlSeconds"]; // i64 in the API
  const narrow = ["challengeDigits", "passwordMinLength", "passwordMaxLength"]; // i32 in the API
  onlyKeys(v, [...wide, ...narrow, "blocklist"], "settings");
  const a = new Args(v);
  const settings = {};
  for (const k of [...wide, ...narrow]) {
    if (!a.has(k)) continue;
    settings[k] = a.optInt(k);
    if (narrow.includes(k) && (settings[k] < -(2 ** 31) || settings[k] >= 2 ** 31)) fail(`\`${k}\` out of range`);
  }
  if (a.has("blocklist")) settings.blocklist = [...strings(v.blocklist, "blocklist")];
  return settings;
}

/** A list of names or strings of a step (`what` names the key). */
function strings(v, what) {
  if (!Array.isArray(v) || !v.every((t) => typeof t === "string")) fail(`\`${what}\` must be a list of strings`);
  return v;
}

const byDeviceId = (x, y) => (x.deviceId < y.deviceId ? -1 : x.deviceId > y.deviceId ? 1 : 0);

/** A new verifier's state (the API's default; a stored state carries every lock field). */
const freshVerifierState = () => ({ nextCounter: 0, consecutiveFailures: 0, locked: false });

/** A stored row as a database gives it back (no aliasing with what the SDK returned). */
const copy = (row) => (row === undefined ? undefined : structuredClone(row));

/** Outcome of a step: it threw, or it returned (maybe with a verdict) and some op-specific facts. */
const done = (facts = {}, events = [], verdict = undefined) => ({ threw: null, verdict, facts, events });

class World {
  constructor(sdk) {
    this.sdk = sdk;
    this.portal = null;
    this.otherPortalKey = null;
    this.offers = new Map();
    this.pendings = new Map();
    this.devices = new Map();
    this.challenges = new Map();
    this.challengeIds = new Map(); // challenge ids by the var their QR text was saved under
    this.events = [];
    this.phones = []; // in creation order ("wrong" uses the first phone with a check code)
    this.vars = new Map();
    this.verifiers = new Map();
    // Flow 3: offline authenticators by name, orders by var, the rows, the settings.
    this.tokens = []; // { name, app, state, serial, factoryRecord, lastCode, deviceId }
    this.ordersByVar = new Map(); // var -> { userId, initialPassword }
    this.activationSettings = {};
    this.authenticators = new Map(); // by serial
    this.orders = new Map(); // by userId
    this.activations = new Map(); // by activationId
    this.credentials = new Map(); // by account
    this.activationIds = new Map(); // activation ids by var (the var holds the step's QR text)
    this.recoveryCodes = new Map(); // recovery codes shown by the activation saved under a var
  }

  thePortal() {
    return this.portal ?? fail("no portal: a `portal` step comes first");
  }

  phone(a) {
    return this.phoneNamed(a.str("phone"));
  }

  phoneNamed(name) {
    let p = this.phones.find((x) => x.name === name);
    if (!p) {
      const key = this.sdk.newStorageKey();
      p = { name, key, device: new this.sdk.Device(key), pending: null, request: null, answer: null, checkCode: null,
        state: null, deviceId: null, biometric: null, lastCode: null, lastStatus: null, lastAnswer: null };
      this.phones.push(p);
    }
    return p;
  }

  /** The account's device rows, by device id. */
  accountDevices(account) {
    return [...this.devices.values()].filter((d) => d.account === account).sort(byDeviceId).map(copy);
  }

  pendingRow(p) {
    return copy(p.deviceId === null ? undefined : this.pendings.get(p.deviceId))
      ?? fail(`phone ${p.name} has no pending link row`);
  }

  /** A phone's last answer, or else a token's last code. */
  lastAnswerOf(name) {
    const p = this.phones.find((x) => x.name === name);
    const answer = p !== undefined ? p.lastAnswer : this.tokens.find((t) => t.name === name)?.lastCode;
    return answer ?? fail(`phone or token ${name} has no answer`);
  }

  token(a) {
    const name = a.str("token");
    return this.tokens.find((t) => t.name === name) ?? fail(`no token ${name}`);
  }

  tokenNamed(name) {
    return this.tokens.find((t) => t.name === name) ?? fail(`no token ${name}`);
  }

  orderVar(name) {
    return this.ordersByVar.get(name) ?? fail(`no order \`${name}\``);
  }

  /** Store an activation update; the var keeps the step's QR text. */
  activationUpdate(name, u) {
    const events = this.store(u.change);
    this.activationIds.set(name, u.activationId);
    const hasQr = u.qrText !== undefined && u.qrText !== null;
    if (hasQr) this.vars.set(name, u.qrText);
    const codes = u.recoveryCodes ?? [];
    if (codes.length > 0) this.recoveryCodes.set(name, [...codes]);
    return done({ step: u.step, qr: hasQr, recoveryCodes: codes.length }, events, u.verdict);
  }

  stateOf(p) {
    return p.state ?? fail(`phone ${p.name} holds no state`);
  }

  deviceRow(p) {
    if (p.deviceId === null) fail(`phone ${p.name} was never linked`);
    return copy(this.devices.get(p.deviceId)) ?? fail(`no device row for phone ${p.name}`);
  }

  qr(a) {
    const name = a.str("qr");
    if (!this.vars.has(name)) fail(`no var \`${name}\``);
    return edit(this.vars.get(name), a.optStr("edit"));
  }

  /** `pinned`: absent/false: none; true: the portal's key; "other": another portal's key. */
  pinned(a) {
    const v = a.get("pinned");
    if (v === undefined || v === false) return undefined;
    if (v === true) return this.thePortal().publicKey();
    if (v === "other") {
      this.otherPortalKey ??= this.sdk.Portal.generate("Other Portal").publicKey();
      return this.otherPortalKey;
    }
    return fail(`\`pinned\` must be true, false or "other", not ${show(v)}`);
  }

  /** Apply a change as one transaction of compare-and-sets; the kinds of its events. */
  store(change) {
    const tables = {
      offer: [this.offers, "offerId"],
      pendingLink: [this.pendings, "deviceId"],
      device: [this.devices, "deviceId"],
      challenge: [this.challenges, "challengeId"],
      authenticator: [this.authenticators, "serial"],
      order: [this.orders, "userId"],
      activation: [this.activations, "activationId"],
      credentials: [this.credentials, "account"],
    };
    const keyOf = (w) => w.row[tables[w.kind][1]];
    for (const w of change.writes) {
      const rows = Object.hasOwn(tables, w.kind) ? tables[w.kind][0] : fail(`unknown write kind ${show(w.kind)}`);
      const key = keyOf(w);
      const stored = rows.get(key);
      const expected = w.expectedVersion ?? null;
      if (stored === undefined && expected !== null) fail(`update of a missing row ${key} (expected version ${expected})`);
      if (stored !== undefined && expected === null) fail(`insert of an existing row ${key}`);
      if (stored !== undefined && stored.version !== expected) {
        fail(`row ${key} has version ${stored.version}, the write expected ${expected}`);
      }
    }
    for (const w of change.writes) tables[w.kind][0].set(keyOf(w), copy(w.row));
    this.events.push(...change.events);
    return change.events.map((e) => e.kind);
  }

  /** Run one op; throws what the SDK throws (the step's outcome) or a ScenarioError. */
  run(op, a) {
    const sdk = this.sdk;
    switch (op) {
      case "portal": {
        if (this.portal) fail("a scenario has one portal");
        this.portal = sdk.Portal.generate(a.str("name"));
        return done();
      }
      case "offer": {
        const portal = this.thePortal();
        const settings = {};
        if (a.has("ttl")) settings.ttlSeconds = a.optInt("ttl");
        if (a.has("rules")) {
          const r = a.get("rules");
          if (!isObject(r)) fail("`rules` must be an object");
          onlyKeys(r, ["minLen", "maxLen", "digitsOnly", "biometricsAllowed"], "rules");
          const ra = new Args(r);
          settings.rules = {
            minLen: ra.optInt("minLen") ?? 6,
            maxLen: ra.optInt("maxLen") ?? 6,
            digitsOnly: ra.optBool("digitsOnly") ?? true,
            biometricsAllowed: ra.optBool("biometricsAllowed") ?? true,
          };
        }
        if (a.has("deviceCodes")) settings.deviceCodes = deviceCodeRules(a.get("deviceCodes"));
        const save = a.str("save");
        const o = portal.createOffer(a.str("account"), settings, a.at());
        const events = this.store(o.change);
        this.vars.set(save, o.qrText);
        return done({}, events);
      }
      case "scan": {
        const p = this.phone(a);
        const info = p.device.scanLinkQr(this.qr(a), a.at(), this.pinned(a));
        return done({ portalName: info.portalName, expiresAt: info.expiresAt / 1000 });
      }
      case "startLink": {
        const p = this.phone(a);
        const qr = this.qr(a);
        const pinned = this.pinned(a);
        const choices = { deviceName: a.str("name"), passcode: a.str("passcode"), biometrics: a.optBool("biometrics") ?? false };
        const pending = p.device.startLink(qr, choices, p.state, a.at(), pinned);
        p.request = pending.request();
        p.biometric = pending.biometricSecret() ?? null;
        p.answer = null;
        p.pending = pending;
        return done();
      }
      case "accept": {
        const portal = this.thePortal();
        const p = this.phone(a);
        const request = edit(p.request ?? fail("the phone has sent no request"), a.optStr("edit"));
        const opened = portal.openLinkRequest(request);
        const deviceId = opened.deviceId;
        const which = a.optStr("offer");
        let offer;
        if (which === undefined) offer = copy(this.offers.get(opened.offerId));
        else if (which !== "missing") fail(`bad offer ${show(which)}`);
        const seen = this.pendings.has(deviceId) || this.devices.has(deviceId);
        const lookup = { offer, deviceKeySeen: a.optBool("deviceKeySeen") ?? seen };
        const answer = opened.accept(lookup, a.at());
        const events = this.store(answer.change);
        p.answer = answer;
        return done({}, events, answer.verdict);
      }
      case "finish": {
        const p = this.phone(a);
        const pending = p.pending ?? fail("the phone has no pending link");
        const answer = p.answer ?? fail("the phone has no answer");
        const which = a.optStr("answer");
        let text;
        if (which === undefined) text = answer.answer;
        else if (which === "ifNotStored") text = answer.ifNotStored;
        else fail(`unknown answer ${show(which)}`);
        const f = pending.finish(edit(text, a.optStr("edit")));
        p.state = f.state;
        p.checkCode = f.checkCode;
        p.deviceId = f.account.deviceId;
        return done();
      }
      case "confirm": {
        const portal = this.thePortal();
        const account = a.str("account");
        const who = a.str("code");
        let code;
        if (who.startsWith("wrong")) {
          const rest = who.slice("wrong".length);
          let p;
          if (rest === "") p = this.phones.find((x) => x.checkCode !== null);
          else if (rest.startsWith(":")) p = this.phones.find((x) => x.name === rest.slice(1));
          else fail(`bad code ${show(who)}`);
          code = wrongCode(p?.checkCode ?? fail(`no check code for ${show(who)}`));
        } else {
          const colon = who.indexOf(":");
          const form = colon < 0 ? "" : who.slice(0, colon);
          const name = colon < 0 ? who : who.slice(colon + 1);
          const p = this.phones.find((x) => x.name === name) ?? fail(`no phone ${show(name)}`);
          const c = p.checkCode ?? fail(`phone ${name} has no check code`);
          if (form === "") code = c;
          else if (form === "prefix") code = c.slice(0, -1);
          else if (form === "extra") code = `${c}0`;
          else if (form === "spaced") code = ` ${c} `;
          else fail(`bad code ${show(who)}`);
        }
        const open = [...this.pendings.values()]
          .filter((r) => r.account === account && r.status === "open")
          .sort((x, y) => (x.deviceId < y.deviceId ? -1 : x.deviceId > y.deviceId ? 1 : 0))
          .map(copy);
        const c = portal.confirmLink(open, code, a.at());
        const events = this.store(c.change);
        return done({}, events, c.verdict);
      }
      case "devices": {
        const account = a.str("account");
        const list = [...this.devices.values()]
          .filter((d) => d.account === account)
          .sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
          .map((d) => ({ name: d.name, status: d.status }));
        return done({ devices: list });
      }
      case "rename":
      case "unlink": {
        const portal = this.thePortal();
        if (op === "unlink" && a.has("token")) {
          const t = this.token(a);
          if (t.deviceId === null) fail("the token was never bound");
          const row = copy(this.devices.get(t.deviceId)) ?? fail("no device row for the token");
          return done({}, this.store(portal.unlinkDevice(row, a.at())));
        }
        const p = this.phone(a);
        const row = this.deviceRow(p);
        const change = op === "rename" ? portal.renameDevice(row, a.str("name"), a.at()) : portal.unlinkDevice(row, a.at());
        return done({}, this.store(change));
      }
      case "status": {
        const portal = this.thePortal();
        const p = this.phone(a);
        if (a.optBool("again")) {
          // The phone's last probe reads the portal's genuine last answer again.
          const [probe, genuine] = p.lastStatus ?? fail("no status request was sent");
          return done({ status: probe.read(edit(genuine, a.optStr("edit"))) });
        }
        const state = this.stateOf(p);
        const at = a.at();
        const probe = p.device.statusRequest(state, at);
        const request = probe.request();
        const id = portal.statusRequestDevice(request);
        const device = copy(this.devices.get(id));
        const pending = device === undefined ? copy(this.pendings.get(id)) : undefined;
        const genuine = portal.answerStatus(request, { device, pending }, at);
        p.lastStatus = [probe, genuine];
        return done({ status: probe.read(edit(genuine, a.optStr("edit"))) });
      }
      case "deviceCode": {
        const portal = this.thePortal();
        const p = this.phone(a);
        const at = a.at();
        const passcode = a.optStr("passcode");
        const bio = a.optBool("biometric") ?? false;
        const replay = a.optBool("replay") ?? false;
        if ((passcode !== undefined) + bio + replay !== 1) {
          fail("deviceCode takes exactly one of passcode, biometric: true, replay: true");
        }
        let code;
        if (replay) {
          code = p.lastCode ?? fail("no previous code to replay");
        } else {
          const unlock = passcode !== undefined
            ? { kind: "passcode", passcode }
            : { kind: "biometric", secret: p.biometric ?? fail("the phone has no biometric secret") };
          code = p.device.code(this.stateOf(p), unlock, at);
          p.lastCode = code;
        }
        const check = portal.verifyDeviceCode(this.deviceRow(p), code, at);
        return done({}, this.store(check.change), check.verdict);
      }
      case "wipe": {
        const p = this.phone(a);
        p.device.unlinkLocally(this.stateOf(p));
        p.state = null;
        p.biometric = null;
        p.checkCode = null;
        p.lastCode = null;
        return done();
      }
      case "offerNewDevice": {
        const portal = this.thePortal();
        const account = a.str("account");
        const save = a.str("save");
        const o = portal.createOfferForNewDevice(account, this.accountDevices(account), {}, a.at());
        const events = this.store(o.change);
        this.vars.set(save, o.qrText);
        return done({}, events);
      }
      case "challenge":
      case "linkChallenge": {
        const portal = this.thePortal();
        const save = a.str("save");
        const settings = challengeSettings(a);
        let issued;
        if (op === "challenge") {
          const account = a.str("account");
          const one = a.optStr("phone");
          const rows = one === undefined ? this.accountDevices(account) : [this.deviceRow(this.phoneNamed(one))];
          const approval = approvalOf(a.get("approval") ?? fail("missing input `approval`"));
          issued = portal.createChallenge(rows, approval, settings, a.at());
        } else {
          const pending = this.pendingRow(this.phone(a));
          issued = portal.createLinkChallenge(pending, this.accountDevices(pending.account), settings, a.at());
        }
        const events = this.store(issued.change);
        this.vars.set(save, issued.qrText);
        this.challengeIds.set(save, issued.challengeId);
        return done({}, events);
      }
      case "readChallenge": {
        const p = this.phone(a);
        const qr = this.qr(a);
        const view = p.device.readChallenge(this.stateOf(p), qr, a.at());
        const approval = structuredClone(view.approval);
        // A linkDevice approval names a phone: its device id reads as the phone's name.
        if (typeof approval.deviceId === "string") {
          const named = this.phones.find((x) => x.deviceId === approval.deviceId);
          if (named) approval.deviceId = named.name;
        }
        return done({ portalName: view.portalName, account: view.account, approval, digits: view.digits });
      }
      case "answer": {
        const p = this.phone(a);
        const qr = this.qr(a);
        const state = this.stateOf(p);
        const passcode = a.optStr("passcode");
        const bio = a.optBool("biometric") ?? false;
        if ((passcode !== undefined) === bio) fail("answer takes exactly one of passcode, biometric: true");
        const unlock = passcode !== undefined
          ? { kind: "passcode", passcode }
          : { kind: "biometric", secret: p.biometric ?? fail("the phone has no biometric secret") };
        const at = a.at();
        if (a.optBool("signed") ?? false) {
          const signed = p.device.signChallenge(state, qr, unlock, at);
          p.state = signed.state;
          p.lastAnswer = signed.answer;
        } else {
          p.lastAnswer = p.device.answerChallenge(state, qr, unlock, at);
        }
        return done();
      }
      case "verify":
      case "vouch": {
        const portal = this.thePortal();
        const name = a.str("challenge");
        const id = this.challengeIds.get(name) ?? fail(`no challenge \`${name}\``);
        const row = copy(this.challenges.get(id)) ?? fail(`no challenge row for \`${name}\``);
        const who = a.str("answer");
        const answer = edit(who.startsWith("wrong:") ? wrongCode(this.lastAnswerOf(who.slice("wrong:".length)))
          : this.lastAnswerOf(who), a.optStr("edit"));
        const rows = row.deviceIds.filter((d) => this.devices.has(d)).map((d) => copy(this.devices.get(d)));
        const at = a.at();
        if (op === "verify") {
          const check = portal.verifyAnswer(row, rows, answer, at);
          const events = this.store(check.change);
          const by = check.deviceId === undefined || check.deviceId === null ? undefined
            : this.phones.find((x) => x.deviceId === check.deviceId)?.name
              ?? this.tokens.find((t) => t.deviceId === check.deviceId)?.name;
          return done(by === undefined ? {} : { device: by }, events, check.verdict);
        }
        const pending = this.pendingRow(this.phone(a));
        const c = portal.confirmWithAuthenticator(pending, row, rows, answer, at);
        return done({}, this.store(c.change), c.verdict);
      }
      case "unlockDevice": {
        const portal = this.thePortal();
        const p = this.phone(a);
        return done({}, this.store(portal.unlockDevice(this.deviceRow(p), a.at())));
      }
      case "clone": {
        // A thief's copy of `from`'s storage: its key, state, device id and biometric secret.
        const src = this.phoneNamed(a.str("from"));
        const p = this.phone(a);
        p.key = Uint8Array.from(src.key);
        p.device = new sdk.Device(p.key);
        p.state = src.state === null ? null : Uint8Array.from(src.state);
        p.deviceId = src.deviceId;
        p.biometric = src.biometric === null ? null : Uint8Array.from(src.biometric);
        return done();
      }
      case "activationSettings": {
        this.activationSettings = activationSettings(a.get("settings") ?? fail("missing `settings`"));
        return done();
      }
      case "token": {
        const name = a.str("token");
        if (this.tokens.some((t) => t.name === name)) fail(`token ${name} exists`);
        const app = new sdk.OfflineAuthenticator(sdk.newStorageKey());
        const made = app.create(a.str("serial"));
        const serial = app.info(made.state).serial;
        this.tokens.push({ name, app, state: made.state, serial, factoryRecord: made.factoryRecord, lastCode: null,
          deviceId: null });
        return done();
      }
      case "importDevices": {
        const portal = this.thePortal();
        const names = strings(a.get("tokens") ?? fail("`tokens` must be a list"), "tokens");
        const lines = [a.optStr("header") ?? "tessera-factory-records v1"];
        for (const n of names) lines.push(this.tokenNamed(n).factoryRecord);
        if (a.has("lines")) lines.push(...strings(a.get("lines"), "lines"));
        const file = `${lines.join("\n")}\n`;
        const known = sdk.factoryFileSerials(file).filter((s) => this.authenticators.has(s));
        const imported = portal.importDevices(file, known, a.at());
        const events = this.store(imported.change);
        return done({ serials: imported.serials }, events);
      }
      case "order": {
        const portal = this.thePortal();
        const serial = this.tokenNamed(a.str("token")).serial;
        const row = copy(this.authenticators.get(serial)) ?? fail("the token was not imported");
        const o = portal.orderDevice(a.str("account"), a.str("activationCode"), row, this.activationSettings, a.at());
        const events = this.store(o.change);
        this.ordersByVar.set(a.str("save"), { userId: o.userId, initialPassword: o.initialPassword });
        return done({}, events);
      }
      case "activationStart": {
        const portal = this.thePortal();
        const userId = this.orderVar(a.str("order")).userId;
        const order = copy(this.orders.get(userId)) ?? fail("no order row");
        const auth = copy(this.authenticators.get(order.serial)) ?? fail("no authenticator row");
        const u = portal.startActivation(order, auth, this.activationSettings, a.at());
        return this.activationUpdate(a.str("save"), u);
      }
      case "activationNext": {
        const portal = this.thePortal();
        const name = a.str("activation");
        const id = this.activationIds.get(name) ?? fail(`no activation \`${name}\``);
        const row = copy(this.activations.get(id)) ?? fail("no activation row");
        const order = copy(this.orders.get(row.userId)) ?? fail("no order row");
        const auth = copy(this.authenticators.get(row.serial)) ?? fail("no authenticator row");
        const creds = copy(this.credentials.get(row.account));
        const v = a.get("input");
        let input;
        if (typeof v === "string") {
          input = v;
        } else if (isObject(v) && Object.keys(v).length === 1) {
          const [[k, ref]] = Object.entries(v);
          if (typeof ref !== "string") fail("an input reference is a name");
          if (k === "shown") input = this.lastAnswerOf(ref);
          else if (k === "wrong") input = wrongCode(this.lastAnswerOf(ref));
          else if (k === "serial") input = this.tokenNamed(ref).serial;
          else if (k === "initialPassword") input = this.orderVar(ref).initialPassword;
          else fail(`unknown input reference \`${k}\``);
        } else {
          fail(`bad \`input\` ${show(v)}`);
        }
        const u = portal.activationNext(row, order, auth, creds, input, this.activationSettings, a.at());
        return this.activationUpdate(name, u);
      }
      case "tokenScan": {
        const t = this.token(a);
        const qr = this.qr(a);
        const screen = t.app.scan(t.state, qr);
        const info = t.app.info(screen.state);
        const has = (x) => x !== undefined && x !== null;
        // The user ID reads as the order var whose user ID it is.
        const user = has(screen.userId) ? [...this.ordersByVar].find(([, o]) => o.userId === screen.userId)?.[0] : undefined;
        t.state = screen.state;
        t.lastCode = screen.code;
        t.deviceId = has(info.deviceId) ? info.deviceId : null;
        return done({ kind: screen.kind, digits: screen.code.length, portalName: screen.portalName, userId: user ?? null,
          approval: has(screen.approval) ? screen.approval : null, replaced: screen.replaced });
      }
      case "verifyPassword":
      case "redeemRecoveryCode": {
        const portal = this.thePortal();
        const account = a.str("account");
        const row = copy(this.credentials.get(account)) ?? fail("the account has no credentials row");
        let check;
        if (op === "verifyPassword") {
          check = portal.verifyPassword(row, a.str("password"), a.at());
        } else {
          const v = a.get("code");
          let code;
          if (typeof v === "string") {
            code = v;
          } else if (isObject(v)) {
            onlyKeys(v, ["recovery"], "code");
            const r = v.recovery;
            if (!Array.isArray(r) || r.length !== 2) fail("`code.recovery` is [var, i]");
            if (typeof r[0] !== "string") fail("`code.recovery[0]` is a var");
            if (!Number.isSafeInteger(r[1]) || r[1] < 0) fail("`code.recovery[1]` is an index");
            code = this.recoveryCodes.get(r[0])?.[r[1]] ?? fail("no such recovery code");
          } else {
            fail("missing `code`");
          }
          check = portal.redeemRecoveryCode(row, code, a.at());
        }
        const events = this.store(check.change);
        return done({ left: check.recoveryCodesLeft }, events, check.verdict);
      }
      case "hotp": {
        const code = sdk.hotp(hex(a.str("secret")), a.int("counter"), a.optInt("digits") ?? 6, algorithm(a.get("algorithm")));
        return done({ code });
      }
      case "totp": {
        const code = sdk.totp(hex(a.str("secret")), a.at(), a.optInt("period") ?? 30, a.optInt("digits") ?? 6,
          algorithm(a.get("algorithm")));
        return done({ code });
      }
      case "verifyHotp":
      case "verifyTotp":
      case "resyncHotp": {
        const name = a.str("verifier");
        const config = verifierConfig(a.get("config") ?? fail("missing input `config`"));
        const state = a.has("state") ? verifierState(a.get("state")) : this.verifiers.get(name) ?? freshVerifierState();
        const at = a.at();
        const check = op === "resyncHotp"
          ? sdk.resyncHotp(config, state, a.str("code1"), a.str("code2"), a.int("window"), at)
          : (op === "verifyHotp" ? sdk.verifyHotp : sdk.verifyTotp)(config, state, a.str("code"), at);
        this.verifiers.set(name, check.state);
        const facts = { drift: check.drift };
        if (check.matched !== undefined && check.matched !== null) facts.matched = check.matched;
        return done(facts, [], check.verdict);
      }
      case "unlock": {
        const name = a.str("verifier");
        this.verifiers.set(name, sdk.unlockVerifier(this.verifiers.get(name) ?? freshVerifierState()));
        return done();
      }
      default:
        return fail(`unknown op ${show(op)}`);
    }
  }
}

// ---------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------

function describe(got) {
  if (got.threw) return `threw ${got.threw.code} (${got.threw.message})`;
  const v = got.verdict;
  if (v?.kind === "refused") return `refused ${v.code} (${v.detail})`;
  return `${v ? v.kind : "ok"} ${show(got.facts)}`;
}

function codeOf(sdk, v) {
  if (typeof v !== "string") fail(`an error code must be a string, not ${show(v)}`);
  if (!sdk.errorCodes().includes(v)) fail(`unknown error code ${show(v)}`);
  return v;
}

/** Deep equality of JSON values. */
function same(a, b) {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => same(a[k], b[k]));
  }
  return a === b;
}

function check(sdk, expect, events, expectKeys, got) {
  const wrong = (want) => fail(`expected ${want}, got ${describe(got)}`);
  const kind = got.threw ? "threw" : got.verdict?.kind ?? "none";
  const succeeded = kind === "none" || kind === "accepted";
  if (expect === undefined || expect === "ok") {
    if (!succeeded) wrong("ok");
  } else if (expect === "accepted" || expect === "repeated") {
    if (kind !== expect) wrong(expect);
  } else if (typeof expect === "string") {
    fail(`unknown expectation ${show(expect)}`);
  } else if (isObject(expect) && (Object.hasOwn(expect, "refused") || Object.hasOwn(expect, "error"))) {
    if (Object.keys(expect).length !== 1) fail(`\`refused\`/\`error\` stands alone in an expectation: ${show(expect)}`);
    if (Object.hasOwn(expect, "refused")) {
      const want = codeOf(sdk, expect.refused);
      if (!(kind === "refused" && got.verdict.code === want)) wrong(`refused ${want}`);
    } else {
      const want = codeOf(sdk, expect.error);
      if (!(got.threw && got.threw.code === want)) wrong(`error ${want}`);
    }
  } else if (isObject(expect)) {
    for (const k of Object.keys(expect)) if (!expectKeys.includes(k)) fail(`unknown expectation key \`${k}\` for this op`);
    if (!succeeded) wrong(show(expect));
    for (const [k, want] of Object.entries(expect)) {
      const have = got.facts[k] ?? null;
      if (!same(have, want)) fail(`expected ${k} = ${show(want)}, got ${show(have)}`);
    }
  } else {
    fail(`unknown expectation ${show(expect)}`);
  }
  if (events !== undefined) {
    const have = got.threw ? [] : got.events;
    if (!same(have, events)) fail(`expected events ${show(events)}, got ${show(have)}`);
  }
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

/**
 * Run one scenario with the SDK module `sdk`; returns `{ steps, skipped }`.
 * Throws a ScenarioError naming the file and the failing step.
 */
export function runScenario(sdk, file, doc) {
  if (!isObject(doc)) fail(`${file}: not a JSON object`);
  for (const k of Object.keys(doc)) if (!["name", "about", "steps"].includes(k)) fail(`${file}: unknown key \`${k}\``);
  for (const k of ["name", "about"]) if (typeof doc[k] !== "string") fail(`${file}: \`${k}\` must be a string`);
  if (!Array.isArray(doc.steps)) fail(`${file}: no \`steps\` array`);
  if (doc.steps.length === 0) fail(`${file}: no steps`);
  const world = new World(sdk);
  const report = { steps: 0, skipped: [] };
  doc.steps.forEach((step, i) => {
    const op = isObject(step) && typeof step.do === "string" ? step.do : "?";
    const where = `${file}: step ${i} (${op})`;
    try {
      if (!isObject(step)) fail("a step is an object");
      const spec = Object.hasOwn(OPS, op) ? OPS[op] : fail(`unknown op ${show(op)}`);
      for (const k of Object.keys(step)) {
        if (!COMMON.includes(k) && !spec[0].includes(k)) fail(`unknown key \`${k}\``);
      }
      if (Object.hasOwn(step, "skip")) {
        if (typeof step.skip !== "string") fail("`skip` is the reason, a string");
        report.skipped.push(`${where}: ${step.skip}`);
        return;
      }
      let got;
      try {
        got = world.run(op, new Args(step));
      } catch (e) {
        if (e instanceof ScenarioError) throw e;
        // Anything else thrown must be a Tessera error: never a TypeError or a wasm trap.
        if (!sdk.isTesseraError(e)) fail(`threw a non-Tessera error: ${e && e.stack ? e.stack : e}`);
        got = { threw: e, verdict: undefined, facts: {}, events: [] };
      }
      check(sdk, step.expect, step.events, spec[1], got);
      report.steps++;
    } catch (e) {
      throw new ScenarioError(`${where}: ${e instanceof ScenarioError ? e.message : e && e.stack ? e.stack : e}`);
    }
  });
  return report;
}

/**
 * Run every file (`[{ name, text }]`, text as read) and never throw:
 * `{ files, passed, failed, steps, skipped, failures }`. Zero files is a failure.
 */
export function runFiles(sdk, files) {
  const result = { files: files.length, passed: 0, failed: 0, steps: 0, skipped: [], failures: [] };
  if (files.length < MIN_FILES) result.failures.push(`only ${files.length} scenario files (at least ${MIN_FILES} expected)`);
  for (const { name, text } of files) {
    try {
      let doc;
      try {
        doc = JSON.parse(text);
      } catch (e) {
        fail(`${name}: not JSON: ${e.message}`);
      }
      const r = runScenario(sdk, name, doc);
      result.steps += r.steps;
      result.skipped.push(...r.skipped);
      result.passed++;
    } catch (e) {
      result.failed++;
      result.failures.push(e.message);
    }
  }
  return result;
}

// ---------------------------------------------------------------------------
// Node: one node:test test per file, plus negative controls
// ---------------------------------------------------------------------------

const inNode = typeof process !== "undefined" && Boolean(process.versions?.node) && typeof window === "undefined";
if (inNode) await nodeTests();

async function nodeTests() {
  const { test } = await import("node:test");
  const assert = (await import("node:assert/strict")).default;
  const { readdirSync, readFileSync } = await import("node:fs");
  const sdk = await import("@tessera/sdk");
  await sdk.init();
  const dir = new URL("../../vectors/scenarios/", import.meta.url);
  const names = readdirSync(dir).filter((n) => n.endsWith(".json")).sort();
  const load = (n) => ({ name: n, text: readFileSync(new URL(n, dir), "utf8") });

  test("vectors/scenarios holds scenario files", () => {
    assert.ok(names.length >= MIN_FILES, `only ${names.length} scenario files in ${dir.pathname} (at least ${MIN_FILES} expected)`);
  });

  let steps = 0;
  for (const name of names) {
    test(`scenario ${name}`, (t) => {
      const r = runScenario(sdk, name, JSON.parse(load(name).text));
      steps += r.steps;
      t.diagnostic(`${r.steps} steps${r.skipped.length ? `; skipped: ${r.skipped.join("; ")}` : ""}`);
    });
  }
  test("scenario totals", (t) => {
    t.diagnostic(`${names.length} scenario files, ${steps} steps run in Node`);
  });

  // The runner cannot pass vacuously: changed files fail at the changed step.
  const mustFail = (doc, i, change, pattern) => {
    const d = structuredClone(doc);
    change(d.steps[i]);
    assert.throws(() => runScenario(sdk, "x.json", d), (e) => {
      assert.ok(e instanceof ScenarioError, String(e));
      assert.ok(e.message.startsWith(`x.json: step ${i} `), e.message);
      if (pattern) assert.match(e.message, pattern);
      return true;
    });
  };
  const base = {
    name: "control", about: "negative controls of the runner",
    steps: [
      { do: "hotp", secret: "3132333435363738393031323334353637383930", counter: 0, expect: { code: "755224" } },
      { do: "portal", name: "Example Bank" },
      { do: "offer", account: "anna", save: "qr", at: 1767225600, events: [] },
      { do: "startLink", phone: "p1", qr: "qr", name: "Pixel", passcode: "493817", at: 1767225600 },
      { do: "accept", phone: "p1", at: 1767225601, expect: "accepted", events: ["linkRequested"] },
      { do: "finish", phone: "p1" },
      { do: "confirm", account: "anna", code: "wrong", at: 1767225602, expect: { refused: "CHECK_CODE_MISMATCH" } },
      { do: "confirm", account: "anna", code: "p1", at: 1767225603, expect: "accepted", events: ["deviceLinked"] },
      { do: "status", phone: "p1", at: 1767225604, expect: { status: "active" } },
    ],
  };
  test("runner negative controls: flipped expectations, unknown ops and keys (linking, challenges, activation)", () => {
    assert.equal(runScenario(sdk, "x.json", base).steps, base.steps.length);
    mustFail(base, 0, (s) => { s.expect = { code: "755225" }; }, /expected code/);
    mustFail(base, 0, (s) => { s.do = "hotpp"; }, /unknown op/);
    mustFail(base, 0, (s) => { s.countr = 1; }, /unknown key/);
    mustFail(base, 0, (s) => { s.expect = { cod: "755224" }; }, /unknown expectation key/);
    mustFail(base, 4, (s) => { s.expect = "repeated"; }, /expected repeated, got accepted/);
    mustFail(base, 4, (s) => { s.events = ["deviceUnlinked"]; }, /expected events/);
    mustFail(base, 6, (s) => { s.expect = { refused: "LOCKED_OUT" }; }, /CHECK_CODE_MISMATCH/);
    mustFail(base, 6, (s) => { delete s.expect; }, /expected ok, got refused/);
    mustFail(base, 7, (s) => { s.expect = { error: "TOKEN_UNKNOWN" }; }, /expected error TOKEN_UNKNOWN, got accepted/);
    mustFail(base, 8, (s) => { s.expect = { status: "awaitingConfirmation" }; }, /status/);
    mustFail(base, 5, (s) => { s.edit = "tamper"; }, /expected ok, got threw/);
    mustFail(base, 3, (s) => { delete s.at; }, /missing `at`/);
    assert.throws(() => runScenario(sdk, "x.json", { ...base, extra: 1 }), /unknown key `extra`/);
    // The challenge ops, their inputs and their facts.
    const tx = { kind: "transaction", amount: "125.50", currency: "EUR", payee: "ACME Energy Ltd", text: ["Invoice 2026-118"] };
    const ch = { ...base, steps: [...base.steps.slice(1, 8),
      { do: "challenge", account: "anna", approval: tx, at: 1767225700, save: "c1" },
      { do: "readChallenge", phone: "p1", qr: "c1", at: 1767225701, expect: { approval: tx, digits: 8 } },
      { do: "answer", phone: "p1", qr: "c1", passcode: "493817", at: 1767225702 },
      { do: "verify", challenge: "c1", answer: "p1", at: 1767225703, expect: { device: "p1" }, events: ["challengeAnswered"] },
    ] };
    assert.equal(runScenario(sdk, "x.json", ch).steps, ch.steps.length);
    mustFail(ch, 8, (s) => { s.expect.approval = { ...tx, amount: "9125.50" }; }, /expected approval/);
    mustFail(ch, 8, (s) => { s.expect.approval = { ...tx, text: undefined }; }, /expected approval/);
    mustFail(ch, 10, (s) => { s.expect = { device: "p2" }; }, /expected device/);
    mustFail(ch, 10, (s) => { s.events = []; }, /expected events/);
    mustFail(ch, 10, (s) => { s.answer = "wrong:p1"; }, /got refused INVALID_ANSWER/);
    mustFail(ch, 10, (s) => { s.challenge = "c2"; }, /no challenge `c2`/);
    mustFail(ch, 7, (s) => { s.approval = { ...tx, iban: "DE89" }; }, /unknown key `iban` in approval/);
    mustFail(ch, 7, (s) => { s.approval = { ...tx, kind: "payment" }; }, /unknown approval kind/);
    mustFail(ch, 1, (s) => { s.deviceCodes = { digit: 8 }; }, /unknown key `digit` in deviceCodes/);
    mustFail(ch, 9, (s) => { s.passcode = undefined; s.biometric = true; }, /no biometric secret/);
    // The activation ops (flow 3), on the genuine whole-flow file.
    const act = JSON.parse(load("activation-success.json").text);
    assert.equal(runScenario(sdk, "x.json", act).steps, act.steps.length);
    const step = (pred) => {
      const i = act.steps.findIndex(pred);
      assert.ok(i >= 0, "activation-success.json lacks a step the controls change");
      return i;
    };
    const scan = step((s) => s.do === "tokenScan" && s.expect?.kind === "bindingCode");
    const shown = step((s) => s.do === "activationNext" && s.input?.shown === "t1");
    const done = step((s) => s.do === "activationNext" && s.expect?.step === "done");
    const recovery = step((s) => s.do === "redeemRecoveryCode" && s.expect?.left !== undefined);
    const verify = step((s) => s.do === "verify" && s.answer === "t1");
    mustFail(act, step((s) => s.do === "activationSettings"), (s) => { s.settings = { hashIteration: 10_000 }; },
      /unknown key `hashIteration` in settings/);
    mustFail(act, step((s) => s.do === "importDevices"), (s) => { s.expect = { serials: [] }; }, /expected serials/);
    mustFail(act, step((s) => s.do === "importDevices"), (s) => { s.lines = "TS1 00"; }, /`lines` must be a list/);
    mustFail(act, step((s) => s.do === "order"), (s) => { s.token = "t9"; }, /no token t9/);
    mustFail(act, step((s) => s.do === "activationStart"), (s) => { s.expect.step = "serial"; }, /expected step/);
    mustFail(act, scan, (s) => { s.expect.digits = 10; }, /expected digits/);
    mustFail(act, scan, (s) => { s.expect.userId = "o2"; }, /expected userId/);
    mustFail(act, scan, (s) => { s.expect.replaced = true; }, /expected replaced/);
    mustFail(act, shown, (s) => { s.input = { wrong: "t1" }; }, /got refused DEVICE_CODE_MISMATCH/);
    mustFail(act, shown, (s) => { s.input = { shwon: "t1" }; }, /unknown input reference `shwon`/);
    mustFail(act, shown, (s) => { s.input = { shown: "t1", serial: "t1" }; }, /bad `input`/);
    mustFail(act, shown, (s) => { s.pin = "1"; }, /unknown key `pin`/);
    mustFail(act, done, (s) => { s.expect.recoveryCodes = 9; }, /expected recoveryCodes/);
    mustFail(act, done, (s) => { s.input = "password"; }, /got refused PASSWORD_POLICY/);
    mustFail(act, verify, (s) => { s.expect = { device: "p1" }; }, /expected device/);
    mustFail(act, recovery, (s) => { s.expect = { left: 10 }; }, /expected left/);
    mustFail(act, recovery, (s) => { s.code.index = 0; }, /unknown key `index` in code/);
    mustFail(act, recovery, (s) => { s.code = { recovery: ["a1", 10] }; }, /no such recovery code/);
    mustFail(act, step((s) => s.do === "verifyPassword"), (s) => { s.password += "!"; }, /got refused PASSWORD_MISMATCH/);
    for (const n of [0, MIN_FILES - 1]) {
      const files = Array.from({ length: n }, (_, i) => ({ name: `f${i}.json`, text: JSON.stringify(base) }));
      const r = runFiles(sdk, files);
      assert.equal(r.failures.length, 1, `${n} files is a failure`);
      assert.match(r.failures[0], /scenario files \(at least/);
    }
  });
}
