// One TypeScript file for Node and the browser: type-checked (strict, no
// skipLibCheck) and run by packed/run.mjs in a Node project and in a Vite
// project, both with @tessera/sdk installed from the packed tarball.
import init, { Device, Portal, isTesseraError, newStorageKey, totp, type OtpAlgorithm, type TesseraErrorCode }
  from "@tessera/sdk";

/** The TOTP rows of vectors/otp.json (times in Unix seconds). */
export interface TotpVector {
  secret_hex: string;
  time: number;
  period: number;
  digits: number;
  algorithm: OtpAlgorithm;
  code: string;
}

export interface Report {
  totpChecked: number;
  checkCode: string;
  deviceName: string;
  badDigits: TesseraErrorCode | "no error";
  /** What a call on a Device after its `using` block threw (freed: no key left to use). */
  afterFree: string;
}

const hex = (h: string): Uint8Array => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));

export async function run(vectors: TotpVector[]): Promise<Report> {
  await init();
  await init(); // a second call does nothing

  for (const v of vectors) {
    // The API takes epoch milliseconds; the vectors are in seconds.
    const code = totp(hex(v.secret_hex), v.time * 1000, v.period, v.digits, v.algorithm);
    if (code !== v.code) throw new Error(`TOTP at ${v.time}: ${code}, expected ${v.code}`);
  }
  let badDigits: TesseraErrorCode | "no error" = "no error";
  try {
    totp(hex(vectors[0].secret_hex), Date.now(), 30, 11);
  } catch (e) {
    if (!isTesseraError(e)) throw e;
    badDigits = e.code;
  }

  // A link flow; `using` frees each object that holds keys at the end of the block.
  const now = Date.now();
  using portal = Portal.generate("Example Bank");
  using device = new Device(newStorageKey());
  const offer = portal.createOffer("anna@example.org", {}, now);
  using pending = device.startLink(offer.qrText, { deviceName: "Anna's laptop", passcode: "493817" }, null, now);
  using request = portal.openLinkRequest(pending.request());
  const offerWrite = offer.change.writes.find((w) => w.kind === "offer");
  if (offerWrite?.kind !== "offer") throw new Error("createOffer wrote no offer row");
  const answer = request.accept({ offer: offerWrite.row, deviceKeySeen: false }, now);
  if (answer.verdict.kind !== "accepted") throw new Error(`accept: ${JSON.stringify(answer.verdict)}`);
  const { checkCode } = pending.finish(answer.answer);
  const pendings = answer.change.writes.flatMap((w) => (w.kind === "pendingLink" ? [w.row] : []));
  const confirmed = portal.confirmLink(pendings, checkCode, now);
  if (confirmed.verdict.kind !== "accepted" || !confirmed.device) throw new Error("confirmLink refused the check code");

  let escaped: Device;
  {
    using scoped = new Device(newStorageKey());
    escaped = scoped;
  }
  let afterFree = "no error";
  try {
    escaped.account(new Uint8Array(0));
  } catch (e) {
    afterFree = isTesseraError(e) ? `TesseraError ${e.code}` : String(e);
  }
  return { totpChecked: vectors.length, checkCode, deviceName: confirmed.device.name, badDigits, afterFree };
}
