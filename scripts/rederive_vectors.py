#!/usr/bin/env python3
"""Re-derive every value of vectors/link.json, vectors/challenge.json and
vectors/activation.json from docs/PROTOCOL.md alone.

An independent implementation of Tessera protocol v1 (link flow,
challenge/response for the linked device, and the activation of an offline
authenticator with its challenges), written
from docs/PROTOCOL.md and the RFCs it names, without looking at the Rust
sources. It uses only the Python standard library: P-256, RFC 6979 ECDSA,
ChaCha20-Poly1305, XChaCha20-Poly1305, HKDF, Base45 and postcard are written
out below (slow but small; the whole run takes about a second); PBKDF2 is
hashlib's.

It also checks vectors/otp.json (HOTP, TOTP and OCRA rows) with hmac/hashlib.

Usage: rederive_vectors.py [link.json [otp.json [challenge.json [activation.json]]]]
Prints one line per checked value (ok / MISMATCH), then `N passed, M failed`;
exits 1 on any mismatch.
"""
import base64
import hashlib
import hmac
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# --------------------------------------------------------------------------
# Inputs, exactly as docs/PROTOCOL.md "Test vectors" states them.
# --------------------------------------------------------------------------
PORTAL_RNG_SEED = b"\x01" * 32
DEVICE_RNG_SEED = b"\x02" * 32
NOW = 1767225600
TTL = 300
POLICY = bytes([0x06, 0xC6])          # exactly 6 digits, biometrics allowed
PORTAL_NAME = "Example Bank"
SCAN_TIME = NOW + 10
DEVICE_NAME = "Anna's Pixel"
PASSCODE = "493817"
BIOMETRICS = True
ACCEPT_TIME = NOW + 12
ACCOUNT = "anna@example.org"
STORAGE_KEY = b"\x5a" * 32
TOTP_TIME = NOW + 100
CONFIRM_WINDOW = 600                  # "gives up at confirm_by (10 minutes)"
# The portal's default TOTP policy for the device (flow 5): SHA256 (index 1), 6 digits, 30 s.
TOTP_POLICY = (1, 6, 30)

# Challenge/response vectors (PROTOCOL.md, "Test vectors", vectors/challenge.json).
CHALLENGE_RNG_SEED = b"\x03" * 32    # the portal's challenges: nonce (16) then k (16), each
CONFIRM_TIME = NOW + 20
WRONG_PASSCODE = "493818"
LOGIN = {"kind": "login"}
PAYMENT = {"kind": "transaction", "amount": "125.50", "currency": "EUR",
           "payee": "ACME Energy Ltd", "text": ["Invoice 2026-118"]}
CHALLENGES = [  # name, created_at, digits, ttl, approval
    ("login", NOW + 60, 8, 300, LOGIN),
    ("transaction", NOW + 120, 8, 300, PAYMENT),
    ("login_6_digits", NOW + 180, 6, 120, LOGIN),
    ("transaction_10_digits", NOW + 240, 10, 900, PAYMENT),
]
READ_DELAY, VERIFY_DELAY = 5, 30      # the device reads at created_at + 5, the portal verifies at + 30
SIGNED_FOR, SIGNED_COUNTER = "transaction", 1
CHALLENGE_SKEW = 300

# --------------------------------------------------------------------------
# Hashes, HMAC, HKDF (RFC 5869)
# --------------------------------------------------------------------------


def H(data):
    return hashlib.sha256(data).digest()


def HMAC(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def HKDF(salt, ikm, info, length=32):
    prk = HMAC(salt, ikm)
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = HMAC(prk, block + info + bytes([i]))
        out += block
        i += 1
    return out[:length]


def u8(x):
    return bytes([x])


def u32(x):
    return struct.pack(">I", x)


def u64(x):
    return struct.pack(">Q", x)


# --------------------------------------------------------------------------
# P-256 (affine arithmetic, enough for a handful of operations)
# --------------------------------------------------------------------------
P_FIELD = 2**256 - 2**224 + 2**192 + 2**96 - 1
P_A = P_FIELD - 3
P_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
P_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P_G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
       0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


def ec_add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        if (y1 + y2) % P_FIELD == 0:
            return None
        lam = (3 * x1 * x1 + P_A) * pow(2 * y1, -1, P_FIELD) % P_FIELD
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P_FIELD) % P_FIELD
    x3 = (lam * lam - x1 - x2) % P_FIELD
    return x3, (lam * (x1 - x3) - y1) % P_FIELD


def ec_mul(k, point=P_G):
    result = None
    for bit in bin(k)[2:]:
        result = ec_add(result, result)
        if bit == "1":
            result = ec_add(result, point)
    return result


def on_curve(pt):
    x, y = pt
    return (y * y - (x * x * x + P_A * x + P_B)) % P_FIELD == 0


def sec1_compress(pt):
    x, y = pt
    return bytes([2 + (y & 1)]) + x.to_bytes(32, "big")


def sec1_decompress(data):
    if len(data) != 33 or data[0] not in (2, 3):
        raise ValueError("not a compressed SEC1 point")
    x = int.from_bytes(data[1:], "big")
    y = pow((x * x * x + P_A * x + P_B) % P_FIELD, (P_FIELD + 1) // 4, P_FIELD)
    if (y * y - (x * x * x + P_A * x + P_B)) % P_FIELD:
        raise ValueError("x not on the curve")
    if (y & 1) != (data[0] & 1):
        y = P_FIELD - y
    return x, y


def ecdh(scalar, point_bytes):
    """ECDH output: the 32-byte x-coordinate (PROTOCOL.md, Conventions)."""
    return ec_mul(scalar, sec1_decompress(point_bytes))[0].to_bytes(32, "big")


def rfc6979_k(x, h1):
    """RFC 6979 section 3.2 with HMAC-SHA256; qlen = hlen = 256."""
    xo = x.to_bytes(32, "big")
    ho = (int.from_bytes(h1, "big") % P_N).to_bytes(32, "big")
    v, k = b"\x01" * 32, b"\x00" * 32
    k = hmac.new(k, v + b"\x00" + xo + ho, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    k = hmac.new(k, v + b"\x01" + xo + ho, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    while True:
        v = hmac.new(k, v, hashlib.sha256).digest()
        cand = int.from_bytes(v, "big")
        if 0 < cand < P_N:
            yield cand
        k = hmac.new(k, v + b"\x00", hashlib.sha256).digest()
        v = hmac.new(k, v, hashlib.sha256).digest()


def ecdsa_sign(x, msg, low_s=True):
    """ECDSA-P256-SHA256, RFC 6979 nonce, low-s; returns r || s (64 bytes)."""
    h1 = H(msg)
    e = int.from_bytes(h1, "big")
    for k in rfc6979_k(x, h1):
        r = ec_mul(k)[0] % P_N
        if r == 0:
            continue
        s = pow(k, -1, P_N) * (e + r * x) % P_N
        if s == 0:
            continue
        if low_s and s > P_N // 2:
            s = P_N - s
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def ecdsa_verify(pub_bytes, msg, sig):
    if len(sig) != 64:
        return False
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    if not (0 < r < P_N and 0 < s < P_N):
        return False
    e = int.from_bytes(H(msg), "big")
    w = pow(s, -1, P_N)
    pt = ec_add(ec_mul(e * w % P_N), ec_mul(r * w % P_N, sec1_decompress(pub_bytes)))
    return pt is not None and pt[0] % P_N == r


# --------------------------------------------------------------------------
# ChaCha20-Poly1305 (RFC 8439) and XChaCha20-Poly1305 (HChaCha20)
# --------------------------------------------------------------------------
M32 = 0xFFFFFFFF


def _rotl(v, c):
    return ((v << c) & M32) | (v >> (32 - c))


def _chacha_rounds(s):
    def qr(a, b, c, d):
        s[a] = (s[a] + s[b]) & M32; s[d] = _rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & M32; s[b] = _rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & M32; s[d] = _rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & M32; s[b] = _rotl(s[b] ^ s[c], 7)
    for _ in range(10):
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)


_SIGMA = list(struct.unpack("<4I", b"expand 32-byte k"))


def chacha20_block(key, counter, nonce):
    init = _SIGMA + list(struct.unpack("<8I", key)) + [counter] + list(struct.unpack("<3I", nonce))
    s = init[:]
    _chacha_rounds(s)
    return struct.pack("<16I", *[(a + b) & M32 for a, b in zip(s, init)])


def chacha20_xor(key, counter, nonce, data):
    out = bytearray()
    for i in range(0, len(data), 64):
        ks = chacha20_block(key, counter + i // 64, nonce)
        out += bytes(a ^ b for a, b in zip(data[i:i + 64], ks))
    return bytes(out)


def poly1305(key, msg):
    r = int.from_bytes(key[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s = int.from_bytes(key[16:], "little")
    p, acc = (1 << 130) - 5, 0
    for i in range(0, len(msg), 16):
        block = msg[i:i + 16] + b"\x01"
        acc = (acc + int.from_bytes(block, "little")) * r % p
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")


def _pad16(b):
    return b"\x00" * (-len(b) % 16)


def _aead_tag(key, nonce, aad, ct):
    otk = chacha20_block(key, 0, nonce)[:32]
    mac_data = aad + _pad16(aad) + ct + _pad16(ct) + struct.pack("<QQ", len(aad), len(ct))
    return poly1305(otk, mac_data)


def aead_seal(key, nonce, aad, pt):
    ct = chacha20_xor(key, 1, nonce, pt)
    return ct + _aead_tag(key, nonce, aad, ct)


def aead_open(key, nonce, aad, sealed):
    if len(sealed) < 16:
        raise ValueError("too short")
    ct, tag = sealed[:-16], sealed[-16:]
    if not hmac.compare_digest(_aead_tag(key, nonce, aad, ct), tag):
        raise ValueError("authentication failed")
    return chacha20_xor(key, 1, nonce, ct)


def hchacha20(key, nonce16):
    s = _SIGMA + list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))
    _chacha_rounds(s)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xaead_seal(key, nonce24, aad, pt):
    return aead_seal(hchacha20(key, nonce24[:16]), b"\x00" * 4 + nonce24[16:], aad, pt)


def xaead_open(key, nonce24, aad, sealed):
    return aead_open(hchacha20(key, nonce24[:16]), b"\x00" * 4 + nonce24[16:], aad, sealed)


# --------------------------------------------------------------------------
# Text encodings: Base45 (RFC 9285), base64url without padding
# --------------------------------------------------------------------------
B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def base45_encode(data):
    out = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        out += [B45[n % 45], B45[n // 45 % 45], B45[n // 2025]]
    if len(data) % 2:
        out += [B45[data[-1] % 45], B45[data[-1] // 45]]
    return "".join(out)


def base45_decode(text):
    vals = [B45.index(ch) for ch in text]
    if len(vals) % 3 == 1:
        raise ValueError("bad base45 length")
    out = bytearray()
    for i in range(0, len(vals), 3):
        chunk = vals[i:i + 3]
        n = sum(v * 45**j for j, v in enumerate(chunk))
        if len(chunk) == 3:
            if n > 0xFFFF:
                raise ValueError("base45 overflow")
            out += n.to_bytes(2, "big")
        else:
            if n > 0xFF:
                raise ValueError("base45 overflow")
            out.append(n)
    return bytes(out)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --------------------------------------------------------------------------
# postcard (PROTOCOL.md, "Stored blobs"): [u8;N] raw, bytes/string =
# varint length + bytes, u64 varint, u8 one byte, bool one byte.
# --------------------------------------------------------------------------


def pc_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pc_bytes(b):
    return pc_varint(len(b)) + b


def pc_str(s):
    return pc_bytes(s.encode())


def pc_bool(v):
    return b"\x01" if v else b"\x00"


class PcReader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def raw(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def varint(self):
        n = shift = 0
        while True:
            b = self.raw(1)[0]
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    def bytes(self):
        return self.raw(self.varint())

    def str(self):
        return self.bytes().decode()

    def bool(self):
        b = self.raw(1)[0]
        if b > 1:
            raise ValueError("bad bool")
        return b == 1

    def u8(self):
        return self.raw(1)[0]

    def end(self):
        if self.pos != len(self.data):
            raise ValueError("trailing bytes")


# --------------------------------------------------------------------------
# Test randomness (PROTOCOL.md, "Test vectors")
# --------------------------------------------------------------------------
class SeededRandom:
    """block i = HMAC-SHA256(key=seed, "tessera/test-rng" || u64 i); a byte stream."""

    def __init__(self, seed):
        self.seed, self.i, self.buf = seed, 0, b""

    def bytes(self, n):
        while len(self.buf) < n:
            self.buf += HMAC(self.seed, b"tessera/test-rng" + u64(self.i))
            self.i += 1
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def scalar(self):
        """32 bytes big-endian, retried until 0 < k < q."""
        while True:
            k = int.from_bytes(self.bytes(32), "big")
            if 0 < k < P_N:
                return k


# --------------------------------------------------------------------------
# The protocol
# --------------------------------------------------------------------------
L = "tessera/v1/"


def lbl(name):
    return (L + name).encode()


def portal_scalar(seed):
    for i in range(256):
        k = int.from_bytes(HKDF(lbl("link"), seed, lbl("portal-key") + u8(i)), "big")
        if 0 < k < P_N:
            return k
    raise ValueError("no valid portal scalar")


def totp(key, t, digest=hashlib.sha256, period=30, digits=6, t0=0):
    return hotp(key, (t - t0) // period, digest, digits)


def hotp(key, counter, digest=hashlib.sha1, digits=6):
    mac = hmac.new(key, u64(counter), digest).digest()
    off = mac[-1] & 0x0F
    code = (int.from_bytes(mac[off:off + 4], "big") & 0x7FFFFFFF) % 10**digits
    return str(code).zfill(digits)


def siv_seal(keys, aad, m):
    nonce = HMAC(keys[32:64], u64(len(aad)) + aad + m)[:12]
    return nonce + aead_seal(keys[:32], nonce, aad, m)


def siv_open(keys, aad, sealed):
    nonce, body = sealed[:12], sealed[12:]
    m = aead_open(keys[:32], nonce, aad, body)
    if HMAC(keys[32:64], u64(len(aad)) + aad + m)[:12] != nonce:
        raise ValueError("synthetic nonce does not match the plaintext")
    return m


def derive():
    """Runs the whole link flow of the test vectors; returns (values, internals)."""
    v, x = {}, {}
    prng, drng = SeededRandom(PORTAL_RNG_SEED), SeededRandom(DEVICE_RNG_SEED)

    # Portal identity.
    seed = prng.bytes(32)
    p = portal_scalar(seed)
    P = sec1_compress(ec_mul(p))
    k_p = HKDF(lbl("link"), seed, lbl("portal-storage"))
    v["portal_secret_hex"] = seed.hex()
    v["portal_public_key_hex"] = P.hex()
    v["portal_fingerprint"] = H(lbl("fingerprint") + P)[:8].hex()

    # Offer (QR).
    n = prng.bytes(32)
    c = H(lbl("offer-commit") + n)[:16]
    expires_at = NOW + TTL
    name = PORTAL_NAME.encode()
    offer = b"\x01\x01" + c + P + u32(expires_at) + POLICY + u8(len(name)) + name
    v["offer_id"] = H(lbl("offer-id") + c)[:16].hex()
    v["expires_at"] = expires_at
    v["qr_text"] = "TS:" + base45_encode(offer)

    # Device: request.
    e = drng.scalar()
    E = sec1_compress(ec_mul(e))
    d = drng.scalar()
    D = sec1_compress(ec_mul(d))
    otp_root = drng.bytes(32)
    device_id = H(lbl("device-id") + D)[:8].hex()
    dn = DEVICE_NAME.encode()
    th = H(lbl("link-transcript") + P + E + D + c + u8(int(BIOMETRICS)) + POLICY + u8(len(dn)) + dn)
    pop = ecdsa_sign(d, lbl("link-pop") + th)
    shared_e = ecdh(e, P)
    k_req = HKDF(lbl("link"), shared_e, lbl("link-request") + P + E)
    user_factor = HMAC(otp_root, lbl("user-factor") + PASSCODE.encode())
    answer_key = HKDF(otp_root, user_factor, lbl("answer-key") + device_id.encode())
    body = (c + pc_bytes(D) + pc_str(DEVICE_NAME) + answer_key + pc_bool(BIOMETRICS)
            + POLICY + pc_bytes(pop))
    request = b"\x02\x01" + E + aead_seal(k_req, b"\x00" * 12, b"\x02\x01" + E + P, body)
    v["device_id"] = device_id
    v["request"] = b64url(request)
    v["biometric_secret_hex"] = user_factor.hex()

    # Device: sealed pending link.
    code_key = HKDF(c, shared_e, lbl("check-code-key") + th)
    answer_keys = (HKDF(c, shared_e, lbl("link-answer") + th, 64)
                   + HKDF(c, shared_e, lbl("link-refusal") + th, 64))
    pending = (pc_bytes(P) + pc_str(PORTAL_NAME) + c + pc_str(v["request"]) + th
               + pc_bytes(answer_keys) + pc_bytes(code_key) + pc_bytes(d.to_bytes(32, "big"))
               + pc_bytes(otp_root) + pc_str(DEVICE_NAME) + pc_bool(BIOMETRICS)
               + bytes([POLICY[0], POLICY[1] & 0x3F]) + pc_bool(POLICY[1] & 0x40)
               + pc_bool(POLICY[1] & 0x80) + pc_varint(expires_at))
    pnonce = drng.bytes(24)
    sealed = b"\x11\x01" + pnonce + xaead_seal(STORAGE_KEY, pnonce, b"\x11\x01", pending)
    v["pending_sealed_hex"] = sealed.hex()

    # Portal: answer (status 0, accepted).
    confirm_by = ACCEPT_TIME + CONFIRM_WINDOW
    alg, digits, period = TOTP_POLICY
    accepted = (n + pc_str(ACCOUNT) + pc_str(device_id) + pc_varint(ACCEPT_TIME)
                + pc_varint(confirm_by) + pc_varint(alg) + u8(digits) + pc_varint(period))
    keys = HKDF(c, ecdh(p, E), lbl("link-answer") + th, 64)
    aad = b"\x03\x01\x00" + th
    v["answer"] = b64url(b"\x03\x01\x00" + siv_seal(keys, aad, accepted))
    v["confirm_by"] = confirm_by
    code = int.from_bytes(HKDF(n, code_key, lbl("check-code") + th)[:8], "big") % 10**6
    v["check_code"] = str(code).zfill(6)

    # Device TOTP.
    v["totp"] = totp(answer_key, TOTP_TIME)

    x.update(seed=seed, p=p, P=P, k_p=k_p, n=n, c=c, offer=offer, e=e, E=E, d=d, D=D,
             otp_root=otp_root, th=th, pop=pop, shared_e=shared_e, k_req=k_req,
             user_factor=user_factor, answer_key=answer_key, keys=keys,
             refusal_keys=HKDF(c, shared_e, lbl("link-refusal") + th, 64),
             channel_key=HKDF(th, ecdh(d, P), lbl("channel-key")))
    return v, x


# --------------------------------------------------------------------------
# Flow 4: challenge/response (PROTOCOL.md, "Flow 4")
# --------------------------------------------------------------------------


def xor(a, b):
    return bytes(i ^ j for i, j in zip(a, b))


def amount_parts(text):
    """`125.50` -> (12550, 2): minor units and digits after the point, as typed."""
    whole, _, frac = text.partition(".")
    return int(whole + frac), len(frac)


def amount_text(minor, decimals):
    if decimals == 0:
        return str(minor)
    p = 10**decimals
    return f"{minor // p}.{str(minor % p).zfill(decimals)}"


def pc_approval(a):
    """postcard(Approval): variant index (varint), then the variant's fields."""
    if a["kind"] == "login":
        return pc_varint(0)
    if a["kind"] == "transaction":
        minor, decimals = amount_parts(a["amount"])
        return (pc_varint(1) + pc_varint(minor) + u8(decimals) + pc_str(a["currency"])
                + pc_str(a["payee"]) + pc_varint(len(a["text"]))
                + b"".join(pc_str(line) for line in a["text"]))
    if a["kind"] == "link-device":
        return pc_varint(2) + pc_str(a["device_name"]) + pc_str(a["device_id"])
    raise ValueError(a)


def read_approval(r):
    kind = r.varint()
    if kind == 0:
        return {"kind": "login"}
    if kind == 1:
        minor, decimals = r.varint(), r.u8()
        currency, payee = r.str(), r.str()
        text = [r.str() for _ in range(r.varint())]
        return {"kind": "transaction", "amount": amount_text(minor, decimals),
                "currency": currency, "payee": payee, "text": text}
    if kind == 2:
        return {"kind": "link-device", "device_name": r.str(), "device_id": r.str()}
    raise ValueError(f"unknown approval {kind}")


def slot_keys(channel_key, nonce):
    return (HKDF(nonce, channel_key, lbl("challenge-tag"), 4),
            HKDF(nonce, channel_key, lbl("challenge-wrap"), 16))


def challenge_qr(channel_keys, nonce, k, body):
    """20 01 || nonce || n || n slots (tag || k XOR pad) || AEAD(k_body, 0, aad = all before, body)."""
    prefix = b"\x20\x01" + nonce + u8(len(channel_keys))
    for ck in channel_keys:
        tag, pad = slot_keys(ck, nonce)
        prefix += tag + xor(k, pad)
    k_body = HKDF(nonce, k, lbl("challenge-body"))
    return prefix + aead_seal(k_body, b"\x00" * 12, prefix, body)


def challenge_hash(nonce, body):
    return H(lbl("challenge") + b"\x20\x01" + nonce + body)


def challenge_response(answer_key, h):
    return HMAC(answer_key, lbl("challenge-response") + h)


def typed_code(answer_key, h, digits):
    r = challenge_response(answer_key, h)
    return str(int.from_bytes(r[:8], "big") % 10**digits).zfill(digits)


def signed_message(h, device_id_raw, counter, response):
    return lbl("challenge-signature") + h + device_id_raw + u64(counter) + response


def answer_key_for(x, passcode, device_id):
    uf = HMAC(x["otp_root"], lbl("user-factor") + passcode.encode())
    return HKDF(x["otp_root"], uf, lbl("answer-key") + device_id.encode())


def derive_challenges(v, x):
    """The linked device of derive() answers the portal's challenges."""
    cv, cx = {}, {}
    crng = SeededRandom(CHALLENGE_RNG_SEED)
    device_id = v["device_id"]
    cv.update(device_id=device_id, confirm_time=CONFIRM_TIME, check_code=v["check_code"],
              passcode=PASSCODE, wrong_passcode=WRONG_PASSCODE, link_vectors="link.json")
    wrong_key = answer_key_for(x, WRONG_PASSCODE, device_id)
    out = []
    for name, created_at, digits, ttl, approval in CHALLENGES:
        nonce, k = crng.bytes(16), crng.bytes(16)
        expires_at = created_at + ttl
        body = pc_varint(expires_at) + u8(digits) + pc_approval(approval)
        qr = challenge_qr([x["channel_key"]], nonce, k, body)
        h = challenge_hash(nonce, body)
        out.append({
            "name": name, "created_at": created_at, "digits": digits, "ttl": ttl,
            "expires_at": expires_at, "approval": approval, "body_hex": body.hex(),
            "qr_text": "TS:" + base45_encode(qr),
            "challenge_id": H(lbl("challenge-id") + nonce)[:16].hex(),
            "challenge_hash_hex": h.hex(),
            "read_time": created_at + READ_DELAY, "verify_time": created_at + VERIFY_DELAY,
            "code": typed_code(x["answer_key"], h, digits),
            "code_wrong_passcode": typed_code(wrong_key, h, digits),
        })
        cx[name] = dict(nonce=nonce, k=k, body=body, hash=h, qr=qr)
        if name == SIGNED_FOR:
            raw_id = bytes.fromhex(device_id)
            msg = signed_message(h, raw_id, SIGNED_COUNTER, challenge_response(x["answer_key"], h))
            sig = ecdsa_sign(x["d"], msg)
            answer = b"\x21\x01" + nonce + raw_id + u64(SIGNED_COUNTER) + sig
            cv["signed_answer"] = {"challenge": name, "counter": SIGNED_COUNTER,
                                   "answer": b64url(answer)}
    cv["challenges"] = out
    return cv, cx


def challenge_consistency(rep, x, got):
    """Opens the file's challenge messages as the device and the portal would."""
    ck, ak = x["channel_key"], x["answer_key"]

    def device_reads(c):
        def run():
            qr = base45_decode(c["qr_text"][3:])
            assert c["qr_text"].startswith("TS:") and qr[:2] == b"\x20\x01"
            nonce, n = qr[2:18], qr[18]
            assert 1 <= n <= 4 and len(qr) >= 19 + 20 * n + 16 + 3
            slots = [qr[19 + 20 * i:39 + 20 * i] for i in range(n)]
            tag, pad = slot_keys(ck, nonce)
            slot = next(sl for sl in slots if sl[:4] == tag)
            k = xor(slot[4:], pad)
            prefix = qr[:19 + 20 * n]
            body = aead_open(HKDF(nonce, k, lbl("challenge-body")), b"\x00" * 12, prefix,
                             qr[19 + 20 * n:])
            r = PcReader(body)
            expires_at, digits, approval = r.varint(), r.u8(), read_approval(r)
            r.end()
            assert (expires_at, digits, approval) == (c["expires_at"], c["digits"], c["approval"])
            assert 6 <= digits <= 10 and c["read_time"] < expires_at + CHALLENGE_SKEW
            assert H(lbl("challenge-id") + nonce)[:16].hex() == c["challenge_id"]
            h = challenge_hash(nonce, body)
            assert h.hex() == c["challenge_hash_hex"] and body.hex() == c["body_hex"]
            assert typed_code(ak, h, digits) == c["code"], "typed code"
            uf = bytes.fromhex(got["biometric_secret_hex"])
            bio_key = HKDF(x["otp_root"], uf, lbl("answer-key") + got["device_id"].encode())
            assert typed_code(bio_key, h, digits) == c["code"], "biometric code"
            assert c["code"] != c["code_wrong_passcode"]
            # Another device (another channel key) finds no slot: NOT_FOR_THIS_DEVICE.
            other_tag, _ = slot_keys(b"\x77" * 32, nonce)
            assert all(sl[:4] != other_tag for sl in slots)
            # A changed byte of the ciphertext or of the slot area fails the AEAD.
            for i in (len(qr) - 1, 19 + 4):
                bad = bytearray(qr)
                bad[i] ^= 1
                try:
                    aead_open(HKDF(nonce, xor(bytes(bad[19 + 4:19 + 20]), pad), lbl("challenge-body")),
                              b"\x00" * 12, bytes(bad[:19 + 20 * n]), bytes(bad[19 + 20 * n:]))
                except ValueError:
                    continue
                raise AssertionError(f"changed byte {i} still opens")
        return run

    for c in got["challenges"]:
        rep.attempt(f"check: challenge {c['name']}: the device finds its slot, opens the body "
                    f"(approval, digits, expiry), id, hash, code (passcode = biometric secret)",
                    device_reads(c))

    def pay_once_more():
        # A changed amount, payee or text line changes the code.
        c = next(c for c in got["challenges"] if c["name"] == "transaction")
        nonce = base45_decode(c["qr_text"][3:])[2:18]
        codes = set()
        for change in ({}, {"amount": "125.5"}, {"amount": "9125.50"}, {"payee": "ACME Energy Ltd."},
                       {"currency": "USD"}, {"text": []}, {"text": ["Invoice 2026-119"]}):
            body = pc_varint(c["expires_at"]) + u8(c["digits"]) + pc_approval(dict(PAYMENT, **change))
            codes.add(typed_code(ak, challenge_hash(nonce, body), c["digits"]))
        return len(codes) == 7
    rep.attempt("check: a changed amount, currency, payee or text line changes the typed code",
                pay_once_more)

    def signed_verifies():
        s = got["signed_answer"]
        c = next(c for c in got["challenges"] if c["name"] == s["challenge"])
        raw = b64url_decode(s["answer"])
        assert len(raw) == 2 + 16 + 8 + 8 + 64 and raw[:2] == b"\x21\x01"
        nonce, dev, counter, sig = raw[2:18], raw[18:26], raw[26:34], raw[34:]
        assert H(lbl("challenge-id") + nonce)[:16].hex() == c["challenge_id"]
        assert dev.hex() == got["device_id"] and int.from_bytes(counter, "big") == s["counter"]
        h = bytes.fromhex(c["challenge_hash_hex"])
        # The portal computes the response from its copy of answer_key.
        msg = signed_message(h, dev, s["counter"], challenge_response(ak, h))
        assert ecdsa_verify(x["D"], msg, sig), "signature does not verify under D"
        assert int.from_bytes(sig[32:], "big") <= P_N // 2, "signature s is not low"
        wrong = answer_key_for(x, WRONG_PASSCODE, got["device_id"])
        assert not ecdsa_verify(x["D"], signed_message(h, dev, s["counter"],
                                                       challenge_response(wrong, h)), sig)
        assert not ecdsa_verify(x["D"], signed_message(h, dev, s["counter"] + 1,
                                                       challenge_response(ak, h)), sig)
    rep.attempt("check: signed answer: layout, challenge id from its nonce, signature verifies "
                "under D (low-s) over hash, id, counter and response; not with a wrong passcode "
                "or another counter", signed_verifies)


# --------------------------------------------------------------------------
# Flow 3: activating an offline authenticator (PROTOCOL.md, "Flow 3")
# --------------------------------------------------------------------------
# Inputs, exactly as docs/PROTOCOL.md "Test vectors" states them (vectors/activation.json).
ACT_SERIAL = "TS00012345"
# The device's P-256 secret d: SHA-256("test").
ACT_DEVICE_SECRET = bytes.fromhex("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
ACT_RNG_SEED = b"\x05" * 32           # the portal: order, start, steps
ACT_SEAL_SEED = b"\x06" * 32          # the nonce of the sealed token state
ACT_CHALLENGE_SEED = b"\x07" * 32     # the payment challenge once usable: nonce, then k
ACT_CODE = "271828"                   # the activation code chosen when ordering
ACT_ITERATIONS = 10000                # the portal's slow-hash setting (the minimum)
ACT_NEW_PASSWORD = "correct horse battery staple"
ACT_SERIAL_TYPED = "ts-0001 2345"
ACT_IMPORT, ACT_ORDER, ACT_START = NOW, NOW + 60, NOW + 120
ACT_ENTRY_GAP = 10                    # entry i (1 = device code ... 7 = new password) at start + 10 i
ACT_TTL = 1800                        # an activation's time (default 30 minutes)
ACT_USABLE_AFTER = 4 * 3600           # default delay before use
ACT_TEST_DIGITS = 8                   # the portal's digits (default 8)
ACT_CHALLENGE_DELAY, ACT_CHALLENGE_TTL, ACT_CHALLENGE_DIGITS = 60, 300, 8
PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
FACTORY_HEADER = "tessera-factory-records v1"
TOKEN_STATE_LEN = 133
DEVICE_CODE_DIGITS, BINDING_CODE_DIGITS = 10, 8


def token_hint(D):
    return H(lbl("token-key-hint") + D)[:4]


def token_shared(e, D):
    """Z = ECDH(e, D), the x-coordinate (the device computes ECDH(d, E))."""
    return ecdh(e, D)


def token_qr_key(Z, E, serial):
    return HKDF(E, Z, lbl("activation-qr-key") + serial.encode())


def token_wrap_key(Z, E, serial):
    return HKDF(E, Z, lbl("activation-bind-wrap") + serial.encode())


def token_root(Z, E, serial, g):
    return HKDF(E, Z, lbl("token-binding") + serial.encode() + u32(g))


def token_keys(R):
    """(channel_key, answer_key) of a binding root."""
    return HKDF(b"", R, lbl("token-channel-key")), HKDF(b"", R, lbl("token-answer-key"))


def token_device_id(serial, g):
    return H(lbl("token-device-id") + serial.encode() + u32(g))[:8].hex()


def digit_code(key, label, m, n):
    """First 8 bytes of HMAC(key, label || m), big-endian, mod 10^n, leading zeros."""
    return str(int.from_bytes(HMAC(key, label + m)[:8], "big") % 10**n).zfill(n)


def possession_qr(e, D, serial, name, hint=None, name_bytes=None):
    """30 01 01 || hint || E || u8 len || name || HMAC(K_qr, all before)[..16]."""
    E = sec1_compress(ec_mul(e))
    nb = name.encode() if name_bytes is None else name_bytes
    b = b"\x30\x01\x01" + (hint or token_hint(D)) + E + u8(len(nb)) + nb
    return b + HMAC(token_qr_key(token_shared(e, D), E, serial), b)[:16]


def binding_qr(e, D, serial, g, name, user_id, plain=None, hint=None):
    """30 01 02 || hint || E || u32be g || AEAD(K_wrap, 0, aad = all before, len || name || len || user ID)."""
    E = sec1_compress(ec_mul(e))
    head = b"\x30\x01\x02" + (hint or token_hint(D)) + E + u32(g)
    if plain is None:
        plain = u8(len(name.encode())) + name.encode() + u8(len(user_id.encode())) + user_id.encode()
    return head + aead_seal(token_wrap_key(token_shared(e, D), E, serial), b"\x00" * 12, head, plain)


def device_code(Z, E, serial, qr):
    return digit_code(token_qr_key(Z, E, serial), lbl("activation-device-code"), qr, DEVICE_CODE_DIGITS)


def binding_code(R, qr):
    return digit_code(R, lbl("activation-binding-code"), qr, BINDING_CODE_DIGITS)


def token_state(serial, d, binding=None):
    """The 133 bytes; `binding` = (g, R, portal name, user ID). Texts are padded
    with zero bytes to their field; an unbound state has zeros in the binding fields."""
    def text(s, n):
        b = s.encode()
        return u8(len(b)) + b + b"\x00" * (n - len(b))
    g, R, name, uid = binding if binding else (0, b"\x00" * 32, "", "")
    s = b"\x01" + text(serial, 16) + d + u8(1 if binding else 0) + u32(g) + R + text(name, 20) + text(uid, 16)
    assert len(s) == 125
    return s + token_state_check(s)


def token_state_check(s125):
    return H(lbl("token-state") + s125)[:8]


def pbkdf2(secret, salt, iterations):
    return hashlib.pbkdf2_hmac("sha256", secret, salt, iterations, 32)


def typed_normalized(text):
    """An initial password or serial number as typed: without spaces and dashes, upper case."""
    return "".join(ch for ch in text if ch not in " -").upper()


def derive_activation():
    """The whole activation of the test vectors; returns (values, internals)."""
    v, x = {}, {}
    d, S, name = ACT_DEVICE_SECRET, ACT_SERIAL, PORTAL_NAME
    D = sec1_compress(ec_mul(int.from_bytes(d, "big")))
    rng = SeededRandom(ACT_RNG_SEED)
    v.update(link_vectors="link.json", portal_name=name, serial=S, device_secret_hex=d.hex(),
             device_public_key_hex=D.hex(), account=ACCOUNT, activation_code=ACT_CODE,
             hash_iterations=ACT_ITERATIONS, import_time=ACT_IMPORT, order_time=ACT_ORDER,
             start_time=ACT_START, entry_gap=ACT_ENTRY_GAP, serial_typed=ACT_SERIAL_TYPED,
             new_password=ACT_NEW_PASSWORD, storage_key_hex=STORAGE_KEY.hex())
    v["factory_line"] = f"{S} {D.hex()}"

    # The order: user ID, initial password, the two salts.
    user_id = str(int.from_bytes(rng.bytes(8), "big") % 10**10).zfill(10)
    chars = "".join(PASSWORD_ALPHABET[b % 32] for b in rng.bytes(12))
    initial = "-".join(chars[i:i + 4] for i in range(0, 12, 4))
    code_salt, password_salt = rng.bytes(16), rng.bytes(16)
    v["user_id"], v["initial_password"] = user_id, initial
    v["activation_code_hash"] = {"salt_hex": code_salt.hex(), "iterations": ACT_ITERATIONS,
                                 "hash_hex": pbkdf2(ACT_CODE.encode(), code_salt, ACT_ITERATIONS).hex()}
    v["initial_password_hash"] = {
        "salt_hex": password_salt.hex(), "iterations": ACT_ITERATIONS,
        "hash_hex": pbkdf2(typed_normalized(initial).encode(), password_salt, ACT_ITERATIONS).hex()}

    # Start: the activation id, the possession QR under a fresh portal key.
    v["activation_id"] = rng.bytes(16).hex()
    expires_at = ACT_START + ACT_TTL
    v["activation_expires_at"] = expires_at
    e1 = rng.scalar()
    E1, Z1 = sec1_compress(ec_mul(e1)), token_shared(e1, D)
    qr1 = possession_qr(e1, D, S, name)
    v["possession"] = {"portal_key_hex": E1.hex(), "qr_text": "TS:" + base45_encode(qr1),
                       "device_code": device_code(Z1, E1, S, qr1)}
    v["token_state_unbound_hex"] = token_state(S, d).hex()

    # The activation code: generation 1 (the device record's 0 + 1), another portal key, the binding QR.
    g = 1
    e2 = rng.scalar()
    E2, Z2 = sec1_compress(ec_mul(e2)), token_shared(e2, D)
    qr2 = binding_qr(e2, D, S, g, name, user_id)
    R = token_root(Z2, E2, S, g)
    v["binding"] = {"generation": g, "portal_key_hex": E2.hex(), "root_hex": R.hex(),
                    "qr_text": "TS:" + base45_encode(qr2), "binding_code": binding_code(R, qr2)}
    state = token_state(S, d, (g, R, name, user_id))
    v["token_state_bound_hex"] = state.hex()
    snonce = SeededRandom(ACT_SEAL_SEED).bytes(24)
    v["token_sealed_hex"] = (b"\x15\x01" + snonce + xaead_seal(STORAGE_KEY, snonce, b"\x15\x01", state)).hex()
    v["device_id"] = token_device_id(S, g)
    v["device_name"] = f"Authenticator {S}"

    # The serial number: the test challenge (a login for the binding's channel key).
    channel_key, answer_key = token_keys(R)
    k, nonce = rng.bytes(16), rng.bytes(16)
    body = pc_varint(expires_at) + u8(ACT_TEST_DIGITS) + pc_approval(LOGIN)
    qr3 = challenge_qr([channel_key], nonce, k, body)
    h = challenge_hash(nonce, body)
    v["test_challenge"] = {
        "expires_at": expires_at, "digits": ACT_TEST_DIGITS, "body_hex": body.hex(),
        "qr_text": "TS:" + base45_encode(qr3), "challenge_id": H(lbl("challenge-id") + nonce)[:16].hex(),
        "challenge_hash_hex": h.hex(), "code": typed_code(answer_key, h, ACT_TEST_DIGITS)}

    # Done at the 7th entry; usable after the delay; then a payment like any device's.
    done = ACT_START + 7 * ACT_ENTRY_GAP
    v["done_time"], v["usable_from"] = done, done + ACT_USABLE_AFTER
    crng = SeededRandom(ACT_CHALLENGE_SEED)
    cnonce, ck = crng.bytes(16), crng.bytes(16)
    created = v["usable_from"] + ACT_CHALLENGE_DELAY
    cbody = pc_varint(created + ACT_CHALLENGE_TTL) + u8(ACT_CHALLENGE_DIGITS) + pc_approval(PAYMENT)
    ch = challenge_hash(cnonce, cbody)
    v["challenge"] = {
        "created_at": created, "digits": ACT_CHALLENGE_DIGITS, "ttl": ACT_CHALLENGE_TTL,
        "expires_at": created + ACT_CHALLENGE_TTL, "approval": PAYMENT, "body_hex": cbody.hex(),
        "qr_text": "TS:" + base45_encode(challenge_qr([channel_key], cnonce, ck, cbody)),
        "challenge_id": H(lbl("challenge-id") + cnonce)[:16].hex(), "challenge_hash_hex": ch.hex(),
        "verify_time": created + 30, "code": typed_code(answer_key, ch, ACT_CHALLENGE_DIGITS)}

    x.update(d=d, D=D, S=S, e1=e1, e2=e2, qr1=qr1, qr2=qr2, qr3=qr3, R=R, channel_key=channel_key,
             answer_key=answer_key, state=state, test_nonce=nonce, test_k=k, test_body=body,
             test_hash=h, code_salt=code_salt, password_salt=password_salt, snonce=snonce,
             pay_nonce=cnonce, pay_k=ck, pay_body=cbody)
    return v, x


def parse_factory_file(text):
    """(serial, D) records of a factory file; ValueError(code, line) on the first bad line."""
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0].strip() != FACTORY_HEADER:
        if lines and lines[0].strip().startswith("tessera-factory-records "):
            raise ValueError("UNSUPPORTED_VERSION", 1)
        raise ValueError("INVALID_INPUT", 1)
    out, seen = [], set()
    for i, line in enumerate(lines[1:], start=2):
        ln = line.strip()
        if not ln or ln.startswith("#"):
            continue
        parts = ln.split(" ")
        ok = (len(parts) == 2 and 6 <= len(parts[0]) <= 16
              and all(c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" for c in parts[0])
              and len(parts[1]) == 66 and all(c in "0123456789abcdef" for c in parts[1])
              and parts[1][:2] in ("02", "03"))
        if ok:
            try:
                sec1_decompress(bytes.fromhex(parts[1]))
            except ValueError:
                ok = False
        if not ok:
            raise ValueError("INVALID_INPUT", i)
        if parts[0] in seen:
            raise ValueError("DUPLICATE_RECORD", i)
        seen.add(parts[0])
        out.append((parts[0], bytes.fromhex(parts[1])))
    return out


def activation_consistency(rep, x, got, link_x):
    """Reads the file's activation messages as the device and the portal would."""
    S = x["S"]
    d = int.from_bytes(bytes.fromhex(got["device_secret_hex"]), "big")
    D = bytes.fromhex(got["device_public_key_hex"])

    def factory_line_parses():
        [(serial, key)] = parse_factory_file(f"{FACTORY_HEADER}\n# a comment\n\n{got['factory_line']}\r\n")
        assert (serial, key) == (got["serial"], D) and sec1_compress(ec_mul(d)) == D
    rep.attempt("check: activation: the factory line parses (serial rules, compressed P-256 key d·G)",
                factory_line_parses)

    def possession_reads():
        qr = base45_decode(got["possession"]["qr_text"][3:])
        assert qr[:3] == b"\x30\x01\x01" and qr[3:7] == token_hint(D)
        E = qr[7:40]
        assert E.hex() == got["possession"]["portal_key_hex"]
        nlen = qr[40]
        assert qr[41:41 + nlen].decode() == got["portal_name"] and len(qr) == 41 + nlen + 16
        Z = ecdh(d, E)  # the device's side of the agreement
        assert hmac.compare_digest(HMAC(token_qr_key(Z, E, S), qr[:-16])[:16], qr[-16:]), "mac"
        assert HMAC(token_qr_key(ecdh(0x77, E), E, S), qr[:-16])[:16] != qr[-16:]  # another device key
        assert HMAC(token_qr_key(Z, E, "TS00012346"), qr[:-16])[:16] != qr[-16:]  # another serial
        assert device_code(Z, E, S, qr) == got["possession"]["device_code"]
    rep.attempt("check: activation: possession QR (hint of D, E, name, MAC under K_qr from ECDH(d, E), "
                "not under another key or serial), device code", possession_reads)

    def binding_reads():
        qr = base45_decode(got["binding"]["qr_text"][3:])
        assert qr[:3] == b"\x30\x01\x02" and qr[3:7] == token_hint(D)
        E, g = qr[7:40], int.from_bytes(qr[40:44], "big")
        assert E.hex() == got["binding"]["portal_key_hex"] and g == got["binding"]["generation"]
        Z = ecdh(d, E)
        r = PcReader(aead_open(token_wrap_key(Z, E, S), b"\x00" * 12, qr[:44], qr[44:]))
        name, uid = r.raw(r.u8()).decode(), r.raw(r.u8()).decode()
        r.end()
        assert name == got["portal_name"] and uid == got["user_id"] and len(uid) <= 16
        R = token_root(Z, E, S, g)
        assert R.hex() == got["binding"]["root_hex"]
        assert binding_code(R, qr) == got["binding"]["binding_code"]
        for i in (5, 20, 43, len(qr) - 1):  # hint, E, generation, tag: the AEAD refuses
            bad = bytearray(qr)
            bad[i] ^= 1
            try:
                aead_open(token_wrap_key(Z, E, S), b"\x00" * 12, bytes(bad[:44]), bytes(bad[44:]))
            except ValueError:
                continue
            raise AssertionError(f"changed byte {i} still opens")
    rep.attempt("check: activation: binding QR opens under K_wrap from ECDH(d, E) (name, user ID), "
                "changed bytes do not; R and the binding code", binding_reads)

    def states_read():
        for key in ("token_state_unbound_hex", "token_state_bound_hex"):
            s = bytes.fromhex(got[key])
            assert len(s) == TOKEN_STATE_LEN and s[0] == 1 and token_state_check(s[:125]) == s[125:]
            assert s[2:2 + s[1]].decode() == got["serial"] and s[18:50].hex() == got["device_secret_hex"]
        s = bytes.fromhex(got["token_state_bound_hex"])
        assert s[50] == 1 and int.from_bytes(s[51:55], "big") == got["binding"]["generation"]
        assert s[55:87].hex() == got["binding"]["root_hex"]
        assert s[88:88 + s[87]].decode() == got["portal_name"]
        assert s[109:109 + s[108]].decode() == got["user_id"]
        blob = bytes.fromhex(got["token_sealed_hex"])
        assert blob[:2] == b"\x15\x01"
        assert xaead_open(bytes.fromhex(got["storage_key_hex"]), blob[2:26], b"\x15\x01", blob[26:]) == s
    rep.attempt("check: activation: both token states (layout, check bytes), the sealed state "
                "opens to the bound one", states_read)

    def challenges_read():
        ck, ak = token_keys(bytes.fromhex(got["binding"]["root_hex"]))
        for c in (got["test_challenge"], got["challenge"]):
            qr = base45_decode(c["qr_text"][3:])
            nonce, n = qr[2:18], qr[18]
            assert qr[:2] == b"\x20\x01" and n == 1
            tag, pad = slot_keys(ck, nonce)
            assert qr[19:23] == tag
            assert slot_keys(link_x["channel_key"], nonce)[0] != tag  # the phone of link.json: not for it
            body = aead_open(HKDF(nonce, xor(qr[23:39], pad), lbl("challenge-body")), b"\x00" * 12,
                             qr[:39], qr[39:])
            assert body.hex() == c["body_hex"]
            h = challenge_hash(nonce, body)
            assert h.hex() == c["challenge_hash_hex"] and typed_code(ak, h, c["digits"]) == c["code"]
        assert got["test_challenge"]["body_hex"] == (pc_varint(got["activation_expires_at"])
                                                     + u8(got["test_challenge"]["digits"])
                                                     + pc_approval(LOGIN)).hex()
    rep.attempt("check: activation: the device finds its slot in both challenges (channel key of R), "
                "opens the bodies, codes under the answer key", challenges_read)

    def typed_entries():
        assert typed_normalized(got["serial_typed"]) == got["serial"]
        h = got["initial_password_hash"]
        for typed in (got["initial_password"], got["initial_password"].lower().replace("-", " ")):
            assert pbkdf2(typed_normalized(typed).encode(), bytes.fromhex(h["salt_hex"]),
                          h["iterations"]).hex() == h["hash_hex"]
        a = got["activation_code_hash"]
        assert pbkdf2(got["activation_code"].encode(), bytes.fromhex(a["salt_hex"]),
                      a["iterations"]).hex() == a["hash_hex"]
        assert len(got["user_id"]) == 10 and got["user_id"].isdigit()
        assert got["device_id"] != token_device_id(S, got["binding"]["generation"] + 1)
    rep.attempt("check: activation: typed serial and initial password (any case, dashes, spaces), "
                "activation code hash", typed_entries)


def compare(rep, prefix, expected, got):
    """Every key of both sides, recursively through objects and lists of named objects."""
    for key in sorted(set(got) | set(expected)):
        name = f"{prefix}{key}"
        if key == "description":
            continue
        if key not in expected:
            rep.check(name, False, "in the file but not re-derived by this script")
        elif key not in got:
            rep.check(name, False, "missing from the file")
        elif isinstance(expected[key], dict) and isinstance(got[key], dict) and key != "approval":
            compare(rep, f"{name}.", expected[key], got[key])
        elif (isinstance(expected[key], list) and isinstance(got[key], list) and expected[key]
              and isinstance(expected[key][0], dict)):
            if len(expected[key]) != len(got[key]):
                rep.check(name, False, f"{len(expected[key])} derived, {len(got[key])} in the file")
            for e, g in zip(expected[key], got[key]):
                compare(rep, f"{name}[{e.get('name', '?')}].", e, g)
        else:
            rep.equal(name, expected[key], got[key])


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------
class Report:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok       {name}")
        else:
            self.failed += 1
            print(f"MISMATCH {name}" + (f": {detail}" if detail else ""))

    def equal(self, name, got, want):
        self.check(name, got == want, f"derived {got!r}, file has {want!r}")

    def attempt(self, name, fn):
        """Runs a consistency check; an exception is a failure, not a crash."""
        try:
            ok = fn()
        except Exception as exc:  # noqa: BLE001 - any failure is a mismatch
            self.check(name, False, f"{type(exc).__name__}: {exc}")
            return
        self.check(name, ok is not False)


def self_tests(rep):
    """Known-answer tests of the primitives, from their RFCs."""
    # RFC 9285 section 4.
    rep.check("selftest base45 (RFC 9285)",
              base45_encode(b"AB") == "BB8" and base45_encode(b"Hello!!") == "%69 VD92EX0"
              and base45_encode(b"base-45") == "UJCLQE7W581"
              and base45_decode("QED8WEX0") == b"ietf!")
    # RFC 8439 section 2.8.2.
    key = bytes(range(0x80, 0xA0))
    nonce = bytes.fromhex("070000004041424344454647")
    aad = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
    pt = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip "
          b"for the future, sunscreen would be it.")
    sealed = aead_seal(key, nonce, aad, pt)
    rep.check("selftest chacha20-poly1305 (RFC 8439 2.8.2)",
              sealed[:16].hex() == "d31a8d34648e60db7b86afbc53ef7ec2"
              and sealed[-16:].hex() == "1ae10b594f09e26a7e902ecbd0600691"
              and aead_open(key, nonce, aad, sealed) == pt)
    # draft-irtf-cfrg-xchacha-03 section 2.2.1.
    rep.check("selftest hchacha20 (draft-irtf-cfrg-xchacha 2.2.1)",
              hchacha20(bytes(range(32)), bytes.fromhex("000000090000004a0000000031415927")).hex()
              == "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc")
    # RFC 6979 A.2.5, P-256, SHA-256, message "sample".
    x = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721
    sig = ecdsa_sign(x, b"sample", low_s=False)
    pub = sec1_compress(ec_mul(x))
    rep.check("selftest ecdsa p-256 (RFC 6979 A.2.5)",
              sig.hex() == "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
                           "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8"
              and ecdsa_verify(pub, b"sample", sig)
              and ecdsa_verify(pub, b"sample", ecdsa_sign(x, b"sample"))
              and not ecdsa_verify(pub, b"samplf", sig))
    # RFC 5869 A.1.
    rep.check("selftest hkdf-sha256 (RFC 5869 A.1)",
              HKDF(bytes(range(13)), b"\x0b" * 22, bytes(range(0xF0, 0xFA)), 42).hex()
              == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                 "34007208d5b887185865")


def consistency(rep, v, x, got):
    """Opens what the file holds with the keys derived here."""
    def offer_parses():
        raw = base45_decode(got["qr_text"][3:]) if got["qr_text"].startswith("TS:") else None
        r = PcReader(raw)
        assert r.raw(2) == b"\x01\x01"
        assert r.raw(16) == x["c"] and r.raw(33) == x["P"]
        assert int.from_bytes(r.raw(4), "big") == got["expires_at"]
        assert r.raw(2) == POLICY
        assert r.str() == got["portal_name"]
        r.end()
        assert len(got["qr_text"]) <= 122 and len(raw) <= 79
    rep.attempt("check: qr_text decodes to the offer (commitment, key, expiry, policy, name)",
                offer_parses)

    rep.attempt("check: portal public key is on P-256 and equals HKDF scalar * G",
                lambda: on_curve(sec1_decompress(bytes.fromhex(got["portal_public_key_hex"])))
                and sec1_compress(ec_mul(portal_scalar(bytes.fromhex(got["portal_secret_hex"]))))
                == bytes.fromhex(got["portal_public_key_hex"]))

    rep.attempt("check: ECDH(e, P) == ECDH(p, E)",
                lambda: ecdh(x["e"], x["P"]) == ecdh(x["p"], x["E"]))

    def request_opens():
        req = b64url_decode(got["request"])
        assert req[:2] == b"\x02\x01"
        E = req[2:35]
        # Portal side: its own scalar and the request's ephemeral key.
        k_req = HKDF(lbl("link"), ecdh(x["p"], E), lbl("link-request") + x["P"] + E)
        r = PcReader(aead_open(k_req, b"\x00" * 12, b"\x02\x01" + E + x["P"], req[35:]))
        c, D, name, ak, bio = r.raw(16), r.bytes(), r.str(), r.raw(32), r.bool()
        policy, pop = r.raw(2), r.bytes()
        r.end()
        assert c == x["c"] and D == x["D"] and name == got["device_name"]
        assert ak == x["answer_key"] and bio == got["biometrics"] and len(pop) == 64
        assert D not in (E, x["P"]) and ak != b"\x00" * 32
        dn = name.encode()
        th = H(lbl("link-transcript") + x["P"] + E + D + c + u8(int(bio)) + policy + u8(len(dn)) + dn)
        assert policy == POLICY
        assert ecdsa_verify(D, lbl("link-pop") + th, pop), "pop does not verify under D"
        assert int.from_bytes(pop[32:], "big") <= P_N // 2, "pop s is not low"
        assert H(lbl("device-id") + D)[:8].hex() == got["device_id"]
    rep.attempt("check: request opens with the portal's k_req; body, pop (verifies, low-s), "
                "device id", request_opens)

    def answer_opens():
        ans = b64url_decode(got["answer"])
        assert ans[:3] == b"\x03\x01\x00"
        r = PcReader(siv_open(x["keys"], ans[:3] + x["th"], ans[3:]))
        n, account, device_id = r.raw(32), r.str(), r.str()
        linked_at, confirm_by = r.varint(), r.varint()
        alg, digits, period = r.varint(), r.u8(), r.varint()
        r.end()
        assert (alg, digits, period) == TOTP_POLICY, "totp policy"
        assert alg in (0, 1, 2) and 6 <= digits <= 8 and 15 <= period <= 120
        assert H(lbl("offer-commit") + n)[:16] == x["c"], "portal nonce does not hash to c"
        assert account == got["account"] and device_id == got["device_id"], "account/device id"
        assert linked_at == got["accept_time"] and confirm_by == got["confirm_by"], "times"
        code_key = HKDF(x["c"], x["shared_e"], lbl("check-code-key") + x["th"])
        code = int.from_bytes(HKDF(n, code_key, lbl("check-code") + x["th"])[:8], "big")
        assert str(code % 10**6).zfill(6) == got["check_code"], "check code differs"
    rep.attempt("check: answer opens with the device's answer keys (SIV nonce matches), "
                "nonce hashes to c, totp policy, check code", answer_opens)

    def refusal_keys_differ():
        ans = b64url_decode(got["answer"])
        try:
            siv_open(x["refusal_keys"], ans[:3] + x["th"], ans[3:])
        except ValueError:
            return True
        return False
    rep.attempt("check: answer does not open with the refusal keys", refusal_keys_differ)

    def pending_opens():
        blob = bytes.fromhex(got["pending_sealed_hex"])
        assert blob[:2] == b"\x11\x01"
        r = PcReader(xaead_open(bytes.fromhex(got["storage_key_hex"]), blob[2:26], b"\x11\x01",
                                blob[26:]))
        assert r.bytes() == x["P"] and r.str() == got["portal_name"] and r.raw(16) == x["c"]
        assert r.str() == got["request"] and r.raw(32) == x["th"]
        assert r.bytes() == x["keys"] + x["refusal_keys"], "answer keys"
        assert r.bytes() == HKDF(x["c"], x["shared_e"], lbl("check-code-key") + x["th"])
        assert r.bytes() == x["d"].to_bytes(32, "big"), "device key"
        assert r.bytes() == x["otp_root"] and r.str() == got["device_name"]
        assert r.bool() == got["biometrics"]
        assert (r.u8(), r.u8(), r.bool(), r.bool()) == (6, 6, True, True)
        assert r.varint() == got["expires_at"]
        r.end()
    rep.attempt("check: pending link opens with the storage key and holds the request and keys",
                pending_opens)

    def biometric_equals_passcode():
        ak = HKDF(x["otp_root"], bytes.fromhex(got["biometric_secret_hex"]),
                  lbl("answer-key") + got["device_id"].encode())
        return ak == x["answer_key"] and totp(ak, got["totp_time"]) == got["totp"]
    rep.attempt("check: biometric secret yields the same answer key and TOTP as the passcode",
                biometric_equals_passcode)

    def wrong_passcode_differs():
        uf = HMAC(x["otp_root"], lbl("user-factor") + b"493818")
        ak = HKDF(x["otp_root"], uf, lbl("answer-key") + got["device_id"].encode())
        return ak != x["answer_key"]
    rep.attempt("check: another passcode gives another answer key", wrong_passcode_differs)

    def status_roundtrip():
        dev = bytes.fromhex(got["device_id"])
        nonce, t = b"\x33" * 16, got["accept_time"]
        head = b"\x04\x01" + dev + nonce + u64(t)
        req = head + HMAC(x["channel_key"], lbl("status-request") + head)
        assert len(req) == 2 + 8 + 16 + 8 + 32
        ans = b"\x05\x01" + nonce + b"\x03"
        ans += HMAC(x["channel_key"], lbl("status-answer") + b"\x05\x01" + dev + nonce + b"\x03")
        return len(ans) == 2 + 16 + 1 + 32
    rep.attempt("check: status request/answer layouts build from channel_key", status_roundtrip)


def check_otp(rep, path):
    data = json.load(open(path))
    digests = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
    bad = [r for r in data["hotp"]
           if hotp(bytes.fromhex(r["secret_hex"]), r["counter"], digests[r["algorithm"]],
                   r["digits"]) != r["code"]]
    rep.check(f"otp.json hotp ({len(data['hotp'])} rows, RFC 4226)", not bad, f"{bad}")
    bad = [r for r in data["totp"]
           if totp(bytes.fromhex(r["secret_hex"]), r["time"], digests[r["algorithm"]],
                   r["period"], r["digits"]) != r["code"]]
    rep.check(f"otp.json totp ({len(data['totp'])} rows, RFC 6238)", not bad, f"{bad}")
    bad = []
    for r in data["ocra"]:
        try:
            ok = ocra(r["suite"], bytes.fromhex(r["key_hex"]), r["question"], r.get("counter"),
                      r.get("password"), r.get("time")) == r["code"]
        except Exception as exc:  # noqa: BLE001
            ok = False
            r = dict(r, error=str(exc))
        if not ok:
            bad.append(r)
    rep.check(f"otp.json ocra ({len(data['ocra'])} rows, RFC 6287)", not bad, f"{bad}")


def ocra(suite, key, question, counter=None, password=None, t=None):
    """RFC 6287 for the suites of App. C (C, Q[AN]nn, P<hash>, T<n><S|M|H>)."""
    _, crypto, data_input = suite.split(":")
    _, alg, digits = crypto.split("-")
    digest = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}[alg]
    msg = suite.encode() + b"\x00"
    for part in data_input.split("-"):
        if part == "C":
            msg += u64(counter)
        elif part[0] == "Q":
            if part[1] == "N":
                q = format(int(question), "x")
            elif part[1] == "A":
                q = question.encode().hex()
            else:
                q = question
            msg += bytes.fromhex(q.ljust(256, "0"))
        elif part[0] == "P":
            msg += getattr(hashlib, part[1:].lower())(password.encode()).digest()
        elif part[0] == "T":
            step = int(part[1:-1]) * {"S": 1, "M": 60, "H": 3600}[part[-1]]
            msg += u64(t // step)
        else:
            raise ValueError(f"unsupported OCRA data input {part}")
    mac = hmac.new(key, msg, digest).digest()
    off = mac[-1] & 0x0F
    code = (int.from_bytes(mac[off:off + 4], "big") & 0x7FFFFFFF) % 10**int(digits)
    return str(code).zfill(int(digits))


def main(argv):
    link_path = argv[1] if len(argv) > 1 else os.path.join(ROOT, "vectors", "link.json")
    otp_path = argv[2] if len(argv) > 2 else os.path.join(ROOT, "vectors", "otp.json")
    challenge_path = argv[3] if len(argv) > 3 else os.path.join(ROOT, "vectors", "challenge.json")
    activation_path = argv[4] if len(argv) > 4 else os.path.join(ROOT, "vectors", "activation.json")
    rep = Report()
    self_tests(rep)

    got = json.load(open(link_path))
    v, x = derive()
    inputs = {"now": NOW, "ttl": TTL, "scan_time": SCAN_TIME, "accept_time": ACCEPT_TIME,
              "totp_time": TOTP_TIME, "portal_name": PORTAL_NAME, "device_name": DEVICE_NAME,
              "passcode": PASSCODE, "biometrics": BIOMETRICS, "account": ACCOUNT,
              "storage_key_hex": STORAGE_KEY.hex()}
    expected = dict(inputs, **v)
    compare(rep, "", expected, got)
    # Consistency checks read the file's values (with the inputs as fallback).
    consistency(rep, v, x, dict(expected, **got))
    check_otp(rep, otp_path)

    cgot = json.load(open(challenge_path))
    cv, _ = derive_challenges(v, x)
    compare(rep, "challenge.json ", cv, cgot)
    challenge_consistency(rep, x, dict(cgot, biometric_secret_hex=v["biometric_secret_hex"]))

    agot = json.load(open(activation_path))
    av, ax = derive_activation()
    compare(rep, "activation.json ", av, agot)
    activation_consistency(rep, ax, dict(av, **agot), x)

    print(f"{rep.passed} passed, {rep.failed} failed")
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
