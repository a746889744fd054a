// The demo page of `tessera serve` (a test page: no password). Everything
// goes through the service's JSON API (docs/openapi.yaml).
"use strict";

const $ = (id) => document.getElementById(id);
let account = null;
let challengeId = null;

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const j = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = new Error(j.error ? `${j.error.code}: ${j.error.message}` : `HTTP ${r.status}`);
    e.code = j.error ? j.error.code : null;
    throw e;
  }
  return j;
}

function say(state, text) {
  const m = $("message");
  m.dataset.state = state;
  m.textContent = text;
}

/** The server draws the QR code (SVG); the text is POSTed, never in a URL. */
async function showQr(el, text) {
  const r = await fetch("/v1/qr.svg", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text }),
  });
  if (!r.ok) throw new Error(`QR code: HTTP ${r.status}`);
  const img = document.createElement("img");
  img.alt = "QR code";
  img.src = URL.createObjectURL(await r.blob());
  el.replaceChildren(img);
}

const accountPath = () => `/v1/accounts/${encodeURIComponent(account)}`;

async function refreshDevices() {
  const list = (await api("GET", `${accountPath()}/devices`)).filter((d) => d.status !== "unlinked");
  const rows = list.map((d) => {
    const tr = document.createElement("tr");
    tr.dataset.deviceId = d.id;
    for (const v of [d.name, d.id, d.locked ? `${d.status} (locked)` : d.status]) {
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(td);
    }
    const button = document.createElement("button");
    button.textContent = "Unlink";
    button.className = "unlink";
    button.addEventListener("click", action(async () => {
      await api("DELETE", `${accountPath()}/devices/${encodeURIComponent(d.id)}`);
      say("ok", `unlinked "${d.name}"`);
      await refreshDevices();
    }));
    const td = document.createElement("td");
    td.append(button);
    tr.append(td);
    return tr;
  });
  $("devices").replaceChildren(...rows);
  $("no-devices").hidden = rows.length > 0;
}

/** A click handler whose failure is shown, not thrown. */
function action(f) {
  return async () => {
    try {
      await f();
    } catch (e) {
      say("error", e.message);
    }
  };
}

$("login").addEventListener("click", action(async () => {
  const a = $("account").value.trim();
  if (!a) throw new Error("type an account name");
  account = a;
  $("who").textContent = a;
  $("login-section").hidden = true;
  $("portal").hidden = false;
  say("", "");
  await refreshDevices();
}));

$("logout").addEventListener("click", () => location.reload());

$("link").addEventListener("click", action(async () => {
  const offer = await api("POST", `${accountPath()}/link-offers`, {});
  $("offer-text").textContent = offer.qr_text;
  await showQr($("offer-qr"), offer.qr_text);
  $("check-code").value = "";
  $("offer").hidden = false;
  say("", "waiting for the phone: type the check code it shows");
}));

$("confirm").addEventListener("click", action(async () => {
  const r = await api("POST", `${accountPath()}/links/confirm`, { code: $("check-code").value.trim() });
  $("offer").hidden = true;
  say("ok", `linked "${r.device.name}"`);
  await refreshDevices();
}));

$("approve").addEventListener("click", action(async () => {
  const c = await api("POST", `${accountPath()}/challenges`, {});
  challengeId = c.challenge_id;
  $("challenge-text").textContent = c.qr;
  $("challenge-id").textContent = c.challenge_id;
  await showQr($("challenge-qr"), c.qr);
  $("answer-code").value = "";
  $("challenge").hidden = false;
  say("", "waiting for the code from the phone");
}));

$("verify").addEventListener("click", action(async () => {
  await api("POST", `/v1/challenges/${encodeURIComponent(challengeId)}/answer`, {
    answer: $("answer-code").value.trim(),
  });
  $("challenge").hidden = true;
  say("ok", "login approved");
  await refreshDevices();
}));
