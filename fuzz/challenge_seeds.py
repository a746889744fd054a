#!/usr/bin/env python3
"""Write the hand-made seeds of fuzz/corpus/challenge_messages.

They are built from docs/PROTOCOL.md with the independent implementation in
scripts/rederive_vectors.py (Python standard library only), for the fixture
of fuzz/harness.rs (`challenge_messages`): the device of vectors/link.json
and its payment challenge of vectors/challenge.json. Valid seeds are
accepted by exactly one decoder; `bad_*` ones by none, each for the reason
core/tests/fuzz_corpus.rs names. Most bad seeds are correctly sealed, so
they reach the checks behind the AEAD that random bytes never reach.

Usage: python3 fuzz/challenge_seeds.py   (rewrites the seeds in place)
"""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("rv", os.path.join(ROOT, "scripts", "rederive_vectors.py"))
rv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rv)

OUT = os.path.join(ROOT, "fuzz", "corpus", "challenge_messages")
READ_TIME = rv.NOW + 125  # fuzz/harness.rs CHALLENGE_READ_TIME


def qr_text(raw):
    return "TS:" + rv.base45_encode(raw)


def main():
    v, x = rv.derive()
    cv, cx = rv.derive_challenges(v, x)
    by_name = {c["name"]: c for c in cv["challenges"]}
    pay, login = by_name["transaction"], by_name["login"]
    p = cx["transaction"]
    ck, ak = x["channel_key"], x["answer_key"]
    seeds = {}

    # Valid: the device reads the QR codes; the portal accepts the payment's answers.
    seeds["qr"] = pay["qr_text"]
    seeds["qr_login"] = login["qr_text"]
    seeds["typed"] = pay["code"]
    seeds["typed_spaces"] = f" {pay['code']} \n"
    seeds["signed"] = cv["signed_answer"]["answer"]

    # Valid: the payment's record, sealed under k_p (record tag 4).
    account, cid = rv.ACCOUNT, pay["challenge_id"]
    rec = (rv.pc_str(cid) + rv.pc_str(account) + rv.pc_varint(1) + rv.pc_str(v["device_id"])
           + rv.pc_approval(rv.PAYMENT) + rv.u8(pay["digits"]) + rv.pc_varint(pay["created_at"])
           + rv.pc_varint(pay["expires_at"]) + b"\x00" + b"\x00" + rv.pc_varint(1)
           + p["nonce"])

    def sealed_record(tag, plain):
        aad = (b"\x13\x01" + rv.u8(tag) + rv.u64(1) + rv.u32(len(cid)) + cid.encode()
               + rv.u32(len(account)) + account.encode())
        nonce = b"\x24" * 24
        return b"\x13\x01" + nonce + rv.xaead_seal(x["k_p"], nonce, aad, b"\x13\x01" + plain)
    record = sealed_record(4, rec)
    seeds["record"] = record
    seeds["bad_record_flipped"] = record[:40] + bytes([record[40] ^ 1]) + record[41:]
    seeds["bad_record_device_tag"] = sealed_record(3, rec)
    seeds["bad_record_trailing"] = sealed_record(4, rec + b"\x00")

    # QR codes: envelope and layout.
    raw = rv.base45_decode(pay["qr_text"][3:])
    seeds["bad_qr_truncated"] = qr_text(raw[:-1])
    seeds["bad_qr_too_short"] = qr_text(raw[:19 + 20 + 18])
    seeds["bad_qr_header_only"] = qr_text(raw[:19])
    seeds["bad_qr_ciphertext_flipped"] = qr_text(raw[:-20] + bytes([raw[-20] ^ 0x80]) + raw[-19:])
    seeds["bad_qr_slot_flipped"] = qr_text(raw[:30] + bytes([raw[30] ^ 1]) + raw[31:])
    seeds["bad_qr_tag_flipped"] = qr_text(raw[:19] + bytes([raw[19] ^ 1]) + raw[20:])
    seeds["bad_qr_zero_slots"] = qr_text(raw[:18] + b"\x00" + raw[19:])
    seeds["bad_qr_five_slots"] = qr_text(raw[:18] + b"\x05" + raw[19:] + raw[19:39] * 4)
    seeds["bad_qr_version_2"] = qr_text(b"\x20\x02" + raw[2:])
    seeds["bad_qr_signed_kind"] = qr_text(b"\x21\x01" + raw[2:])
    seeds["bad_qr_link_offer"] = v["qr_text"]
    seeds["bad_qr_base64"] = rv.b64url(raw)

    # QR codes correctly sealed to this device whose body a device must refuse.
    def sealed(body, keys=(ck,)):
        return qr_text(rv.challenge_qr(list(keys), p["nonce"], p["k"], body))

    def body(approval, digits=8, expires_at=pay["expires_at"]):
        return rv.pc_varint(expires_at) + rv.u8(digits) + rv.pc_approval(approval)
    seeds["qr_resealed"] = sealed(body(rv.PAYMENT))  # the same bytes as "qr"
    assert seeds["qr_resealed"] == seeds["qr"]
    del seeds["qr_resealed"]
    seeds["bad_qr_other_device"] = sealed(body(rv.PAYMENT), keys=(b"\x77" * 32, b"\x78" * 32))
    seeds["bad_qr_undisplayable_payee"] = sealed(body(dict(rv.PAYMENT, payee="ACME \u202eLtd")))
    seeds["bad_qr_blank_text"] = sealed(body(dict(rv.PAYMENT, text=["   "])))
    seeds["bad_qr_control_text"] = sealed(body(dict(rv.PAYMENT, text=["Invoice\n2026"])))
    seeds["bad_qr_currency_lowercase"] = sealed(body(dict(rv.PAYMENT, currency="eur")))
    seeds["bad_qr_four_text_lines"] = sealed(body(dict(rv.PAYMENT, text=["a", "b", "c", "d"])))
    seeds["bad_qr_long_payee"] = sealed(body(dict(rv.PAYMENT, payee="P" * 71)))
    seeds["bad_qr_amount_4_decimals"] = sealed(
        rv.pc_varint(pay["expires_at"]) + b"\x08" + b"\x01" + rv.pc_varint(125500) + b"\x04"
        + rv.pc_approval(rv.PAYMENT)[4:])
    seeds["bad_qr_digits_5"] = sealed(body(rv.PAYMENT, digits=5))
    seeds["bad_qr_digits_11"] = sealed(body(rv.LOGIN, digits=11))
    seeds["bad_qr_unknown_approval"] = sealed(rv.pc_varint(pay["expires_at"]) + b"\x08\x03")
    seeds["bad_qr_trailing_body"] = sealed(body(rv.LOGIN) + b"\x00")
    seeds["bad_qr_bad_device_id"] = sealed(body({"kind": "link-device", "device_name": "iPad",
                                                 "device_id": "35A2C9AD4BEE586D"}))
    seeds["bad_qr_expired"] = sealed(body(rv.LOGIN, expires_at=READ_TIME - rv.CHALLENGE_SKEW))

    # Typed answers.
    seeds["bad_typed_wrong_passcode"] = pay["code_wrong_passcode"]
    seeds["bad_typed_login_code"] = login["code"]
    seeds["bad_typed_7_digits"] = pay["code"][:7]
    seeds["bad_typed_9_digits"] = pay["code"] + "0"
    seeds["bad_typed_arabic_digits"] = "".join(chr(0x0660 + int(ch)) for ch in pay["code"])

    # Signed answers.
    ans = rv.b64url_decode(cv["signed_answer"]["answer"])
    dev = bytes.fromhex(v["device_id"])

    def signed(nonce=p["nonce"], device=dev, counter=1, key=ak, h=p["hash"], sign_counter=None):
        sc = counter if sign_counter is None else sign_counter
        msg = rv.signed_message(h, device, sc, rv.challenge_response(key, h))
        return rv.b64url(b"\x21\x01" + nonce + device + rv.u64(counter) + rv.ecdsa_sign(x["d"], msg))
    assert signed() == cv["signed_answer"]["answer"]
    seeds["bad_signed_truncated"] = rv.b64url(ans[:-1])
    seeds["bad_signed_trailing"] = rv.b64url(ans + b"\x00")
    seeds["bad_signed_flipped"] = rv.b64url(ans[:50] + bytes([ans[50] ^ 1]) + ans[51:])
    r, s = ans[34:66], int.from_bytes(ans[66:], "big")
    seeds["bad_signed_high_s"] = rv.b64url(ans[:66] + (rv.P_N - s).to_bytes(32, "big"))
    seeds["bad_signed_wrong_passcode"] = signed(key=rv.answer_key_for(x, rv.WRONG_PASSCODE, v["device_id"]))
    seeds["bad_signed_other_challenge"] = signed(nonce=cx["login"]["nonce"], h=cx["login"]["hash"])
    seeds["bad_signed_counter_mismatch"] = signed(counter=2, sign_counter=1)
    seeds["bad_signed_unknown_device"] = signed(device=b"\x01" * 8)
    seeds["bad_signed_kind_qr"] = rv.b64url(b"\x20\x01" + ans[2:])
    seeds["bad_signed_too_long"] = cv["signed_answer"]["answer"] * 2

    os.makedirs(OUT, exist_ok=True)
    for name, data in sorted(seeds.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
    with open(os.path.join(OUT, "empty"), "wb"):
        pass
    print(f"{len(seeds) + 1} seeds in {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
