#!/usr/bin/env python3
"""Write the hand-made seeds of fuzz/corpus/activation_messages.

They are built from docs/PROTOCOL.md with the independent implementation in
scripts/rederive_vectors.py (Python standard library only), for the fixture
of fuzz/harness.rs (`activation_messages`): device TS00012345 activated by
the portal of vectors/link.json exactly as in vectors/activation.json. Valid
seeds are accepted by the decoders core/tests/fuzz_corpus.rs names for them;
`bad_*` ones by none, each refused for the reason it names there. Most bad
QR codes are correctly authenticated (MAC, AEAD) under keys agreed with the
device's public key (the portal's side of the ECDH, with a fixed portal key
e) or under its binding's channel key, so they reach the checks behind the
cryptography that random bytes never reach.

Usage: python3 fuzz/activation_seeds.py   (rewrites the seeds in place)
"""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("rv", os.path.join(ROOT, "scripts", "rederive_vectors.py"))
rv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rv)

OUT = os.path.join(ROOT, "fuzz", "corpus", "activation_messages")
OTHER_SECRET = 0x77 * (2**256 - 1) // 255  # another device's key d' = 77..77 (a counterfeit)
E_SEED = 0x31 * (2**256 - 1) // 255       # the portal key e of the hand-made QR codes
E_SEED_2 = 0x32 * (2**256 - 1) // 255


def qr_text(raw):
    return "TS:" + rv.base45_encode(raw)


def with_check(s125):
    """A state of 125 bytes with its check bytes recomputed (a checksum, not a MAC)."""
    assert len(s125) == 125
    return s125 + rv.token_state_check(s125)


def on_curve_x(xb):
    try:
        rv.sec1_decompress(b"\x02" + xb)
        return True
    except ValueError:
        return False


def main():
    v, x = rv.derive_activation()
    lv, lx = rv.derive()
    cv, _ = rv.derive_challenges(lv, lx)
    d, D, S, name, uid = x["d"], x["D"], x["S"], rv.PORTAL_NAME, v["user_id"]
    D_other = rv.sec1_compress(rv.ec_mul(OTHER_SECRET))
    g = v["binding"]["generation"]
    ck = x["channel_key"]
    seeds = {}

    # ---- Valid: the golden messages of vectors/activation.json.
    seeds["qr_possession"] = v["possession"]["qr_text"]
    seeds["qr_binding"] = v["binding"]["qr_text"]
    seeds["qr_test_challenge"] = v["test_challenge"]["qr_text"]
    seeds["qr_transaction"] = v["challenge"]["qr_text"]
    seeds["factory_file"] = f"{rv.FACTORY_HEADER}\n{v['factory_line']}\n"
    seeds["factory_file_crlf_comments"] = (
        f"  {rv.FACTORY_HEADER}  \r\n# batch 7, line 2\r\n\r\n  {v['factory_line']} \r\n"
        f"TS00067890 {D_other.hex()}\r\n# end\r\n")
    seeds["state_unbound"] = bytes.fromhex(v["token_state_unbound_hex"])
    seeds["state_bound"] = bytes.fromhex(v["token_state_bound_hex"])
    seeds["sealed_state"] = bytes.fromhex(v["token_sealed_hex"])
    dc = v["possession"]["device_code"]
    seeds["entry_device_code"] = dc
    seeds["entry_device_code_dash"] = f"{dc[:5]}-{dc[5:]}"
    seeds["entry_activation_code"] = v["activation_code"]
    seeds["entry_binding_code"] = v["binding"]["binding_code"]
    seeds["entry_serial"] = S
    seeds["entry_serial_typed"] = v["serial_typed"]
    seeds["entry_test_otp"] = v["test_challenge"]["code"]
    seeds["entry_initial_password"] = v["initial_password"]
    seeds["entry_initial_password_lowercase_spaces"] = v["initial_password"].lower().replace("-", " ")
    seeds["entry_new_password"] = v["new_password"]
    # PBKDF2 keys HMAC with the password: trailing zero bytes are not seen.
    seeds["entry_activation_code_trailing_nul"] = v["activation_code"] + "\0"

    # ---- Valid: bindings the device takes, or the bound one refuses.
    seeds["qr_binding_generation_2"] = qr_text(rv.binding_qr(E_SEED, D, S, 2, name, uid))
    seeds["qr_binding_generation_0"] = qr_text(rv.binding_qr(E_SEED, D, S, 0, name, uid))
    seeds["qr_binding_same_generation_other_key"] = qr_text(rv.binding_qr(E_SEED, D, S, g, name, uid))

    # ---- Valid for the bound device: challenges it reads.
    def challenge(body, keys=(ck,), nonce=b"\x31" * 16, k=b"\x32" * 16):
        return qr_text(rv.challenge_qr(list(keys), nonce, k, body))

    def body(approval, digits=8, expires_at=v["challenge"]["expires_at"]):
        return rv.pc_varint(expires_at) + rv.u8(digits) + rv.pc_approval(approval)
    # The device has no clock: the portal judges expiry.
    seeds["qr_challenge_expired"] = challenge(body(rv.LOGIN, expires_at=rv.NOW))
    seeds["qr_challenge_two_slots"] = challenge(body(rv.PAYMENT, digits=10), keys=(lx["channel_key"], ck))

    # ---- Possession QR codes the device refuses.
    qr1 = x["qr1"]  # 30 01 01 || hint (4) || E (33) || len || name || mac (16)
    seeds["bad_qr_possession_other_device"] = qr_text(rv.possession_qr(E_SEED, D_other, "TS00067890", name))
    # The device's hint, but keys agreed with another device key.
    seeds["bad_qr_possession_counterfeit"] = qr_text(rv.possession_qr(E_SEED, D_other, S, name,
                                                                      hint=rv.token_hint(D)))
    seeds["bad_qr_possession_mac_flipped"] = qr_text(qr1[:-1] + bytes([qr1[-1] ^ 1]))
    # Another point of the curve in place of E: another agreement, the MAC fails.
    flip = next(i for i in range(1, 256) if on_curve_x(qr1[8:39] + bytes([qr1[39] ^ i])))
    seeds["bad_qr_possession_key_flipped"] = qr_text(qr1[:39] + bytes([qr1[39] ^ flip]) + qr1[40:])
    off = next(i for i in range(1, 256) if not on_curve_x(qr1[8:39] + bytes([qr1[39] ^ i])))
    seeds["bad_qr_possession_key_not_on_curve"] = qr_text(qr1[:39] + bytes([qr1[39] ^ off]) + qr1[40:])
    seeds["bad_qr_possession_key_uncompressed_prefix"] = qr_text(qr1[:7] + b"\x04" + qr1[8:])
    seeds["bad_qr_possession_truncated"] = qr_text(qr1[:-1])
    seeds["bad_qr_possession_trailing"] = qr_text(qr1 + b"\x00")
    seeds["bad_qr_possession_control_name"] = qr_text(rv.possession_qr(E_SEED, D, S, "Example\nBank"))
    seeds["bad_qr_possession_long_name"] = qr_text(rv.possession_qr(E_SEED, D, S, "Example Bank Holding1"))
    seeds["bad_qr_possession_blank_name"] = qr_text(rv.possession_qr(E_SEED, D, S, "   "))
    seeds["bad_qr_possession_name_not_utf8"] = qr_text(rv.possession_qr(E_SEED, D, S, "",
                                                                        name_bytes=b"Example \xff Bank"))
    seeds["bad_qr_unknown_step"] = qr_text(qr1[:2] + b"\x03" + qr1[3:])
    seeds["bad_qr_version_2"] = qr_text(b"\x30\x02" + qr1[2:])
    seeds["bad_qr_unknown_kind"] = qr_text(b"\x31\x01" + qr1[2:])
    seeds["bad_qr_link_offer"] = lv["qr_text"]
    seeds["bad_qr_signed_answer_kind"] = qr_text(b"\x21\x01" + qr1[2:])
    seeds["bad_qr_base64"] = rv.b64url(qr1)
    seeds["bad_qr_no_prefix"] = rv.base45_encode(qr1)
    seeds["bad_qr_base45_overflow"] = "TS::::"
    seeds["bad_qr_too_long"] = "TS:" + "0" * 1101

    # ---- Binding QR codes the device refuses (both before and after binding).
    qr2 = x["qr2"]  # 30 01 02 || hint (4) || E (33) || g (4) || AEAD
    seeds["bad_qr_binding_other_device"] = qr_text(rv.binding_qr(E_SEED, D_other, "TS00067890", g, name, uid))
    seeds["bad_qr_binding_counterfeit"] = qr_text(rv.binding_qr(E_SEED, D_other, S, g, name, uid,
                                                                hint=rv.token_hint(D)))
    flip = next(i for i in range(1, 256) if on_curve_x(qr2[8:39] + bytes([qr2[39] ^ i])))
    seeds["bad_qr_binding_key_flipped"] = qr_text(qr2[:39] + bytes([qr2[39] ^ flip]) + qr2[40:])
    off = next(i for i in range(1, 256) if not on_curve_x(qr2[8:39] + bytes([qr2[39] ^ i])))
    seeds["bad_qr_binding_key_not_on_curve"] = qr_text(qr2[:39] + bytes([qr2[39] ^ off]) + qr2[40:])
    seeds["bad_qr_binding_generation_changed"] = qr_text(qr2[:43] + bytes([qr2[43] ^ 2]) + qr2[44:])
    seeds["bad_qr_binding_ciphertext_flipped"] = qr_text(qr2[:46] + bytes([qr2[46] ^ 1]) + qr2[47:])
    seeds["bad_qr_binding_tag_cut"] = qr_text(qr2[:-1])
    seeds["bad_qr_binding_short"] = qr_text(qr2[:44 + 19])

    def sealed_binding(plain):
        return qr_text(rv.binding_qr(E_SEED_2, D, S, g, name, uid, plain=plain))

    def plain(name_b=name.encode(), uid_b=uid.encode(), extra=b""):
        return rv.u8(len(name_b)) + name_b + rv.u8(len(uid_b)) + uid_b + extra
    seeds["bad_qr_binding_long_user_id"] = sealed_binding(plain(uid_b=b"97770246201234567"))
    seeds["bad_qr_binding_control_user_id"] = sealed_binding(plain(uid_b=b"97770\t4620"))
    seeds["bad_qr_binding_empty_user_id"] = sealed_binding(plain(uid_b=b""))
    seeds["bad_qr_binding_long_portal_name"] = sealed_binding(plain(name_b=b"Example Bank Holding1"))
    seeds["bad_qr_binding_invisible_portal_name"] = sealed_binding(plain(name_b="Example\u200bBank".encode()))
    seeds["bad_qr_binding_trailing_plaintext"] = sealed_binding(plain(extra=b"\x00"))
    seeds["bad_qr_binding_plaintext_truncated"] = sealed_binding(plain()[:-1])

    # ---- Challenges the bound device refuses (the unbound one: DEVICE_NOT_LINKED,
    # or the envelope error).
    seeds["bad_qr_challenge_other_binding"] = challenge(body(rv.LOGIN), keys=(b"\x78" * 32,))
    seeds["bad_qr_challenge_phone"] = next(c["qr_text"] for c in cv["challenges"] if c["name"] == "login")
    tq = x["qr3"]
    seeds["bad_qr_challenge_flipped"] = qr_text(tq[:-3] + bytes([tq[-3] ^ 1]) + tq[-2:])
    seeds["bad_qr_challenge_digits_5"] = challenge(body(rv.LOGIN, digits=5))
    seeds["bad_qr_challenge_undisplayable_payee"] = challenge(body(dict(rv.PAYMENT, payee="ACME \u202eLtd")))
    seeds["bad_qr_challenge_link_device_bad_id"] = challenge(body({"kind": "link-device", "device_name": "iPad",
                                                                   "device_id": "DF22B5D1667F3F84"}))
    seeds["bad_qr_challenge_trailing_body"] = challenge(body(rv.LOGIN) + b"\x00")
    seeds["bad_qr_challenge_zero_slots"] = qr_text(tq[:18] + b"\x00" + tq[19:])

    # ---- Factory files (all longer than 64 characters: no new password either).
    line = v["factory_line"]
    hdr = rv.FACTORY_HEADER
    key = D.hex()
    not_on_curve = next(b"\x02" + bytes([i]) + D[2:] for i in range(256) if not on_curve_x(bytes([i]) + D[2:]))
    seeds["bad_factory_v2"] = f"tessera-factory-records v2\n{line}\n"
    seeds["bad_factory_no_header"] = f"{line}\n"
    seeds["bad_factory_misspelt_header"] = f"tessera-factory-record v1\n{line}\n"
    seeds["bad_factory_duplicate"] = f"{hdr}\n{line}\n# again\n{line}\n"
    seeds["bad_factory_uppercase_hex"] = f"{hdr}\n{S} {key.upper()}\n"
    seeds["bad_factory_short_serial"] = f"{hdr}\nTS123 {key}\n"
    seeds["bad_factory_long_serial"] = f"{hdr}\nTS000123456789012 {key}\n"
    seeds["bad_factory_lowercase_serial"] = f"{hdr}\n{S.lower()} {key}\n"
    seeds["bad_factory_dash_serial"] = f"{hdr}\nTS-00012345 {key}\n"
    seeds["bad_factory_two_spaces"] = f"{hdr}\n{S}  {key}\n"
    seeds["bad_factory_tab"] = f"{hdr}\n{S}\t{key}\n"
    seeds["bad_factory_short_key"] = f"{hdr}\n{S} {key[:64]}\n"
    seeds["bad_factory_uncompressed_prefix"] = f"{hdr}\n{S} 04{key[2:]}\n"
    seeds["bad_factory_key_not_on_curve"] = f"{hdr}\n{S} {not_on_curve.hex()}\n"
    # A line of the first design (a 32-byte secret): refused.
    seeds["bad_factory_secret_not_key"] = f"{hdr}\n{S} {d.hex()}\n"
    seeds["bad_factory_third_field"] = f"{hdr}\n{line} batch7\n"
    seeds["bad_factory_good_then_bad"] = f"{hdr}\n{line}\nTS00067890 {D_other.hex()[:65]}x\n"

    # ---- Token states (133 bytes) and the sealed state (kind 0x15).
    st = bytes.fromhex(v["token_state_bound_hex"])
    seeds["bad_state_flipped"] = st[:60] + bytes([st[60] ^ 1]) + st[61:]
    seeds["bad_state_check_flipped"] = st[:-1] + bytes([st[-1] ^ 0x80])
    seeds["bad_state_truncated"] = st[:-1]
    seeds["bad_state_extended"] = st + b"\x00"
    s = st[:125]
    seeds["bad_state_version_2"] = with_check(b"\x02" + s[1:])
    seeds["bad_state_bound_flag_2"] = with_check(s[:50] + b"\x02" + s[51:])
    seeds["bad_state_serial_len_17"] = with_check(s[:1] + b"\x11" + s[2:])
    seeds["bad_state_serial_len_5"] = with_check(s[:1] + b"\x05" + s[2:])
    seeds["bad_state_lowercase_serial"] = with_check(s[:2] + b"ts" + s[4:])
    seeds["bad_state_secret_zero"] = with_check(s[:18] + b"\x00" * 32 + s[50:])
    seeds["bad_state_secret_above_order"] = with_check(s[:18] + b"\xff" * 32 + s[50:])
    seeds["bad_state_name_len_21"] = with_check(s[:87] + b"\x15" + s[88:])
    seeds["bad_state_user_id_len_17"] = with_check(s[:108] + b"\x11" + s[109:])
    seeds["bad_state_user_id_not_utf8"] = with_check(s[:109] + b"\xff" + s[110:])
    # Accepted today (reported): the check bytes are a checksum, and from_bytes
    # asks neither for zero padding nor for zero binding fields when unbound, so
    # these read back as states whose to_bytes differ from the input.
    seeds["state_noncanonical_padding"] = with_check(s[:120] + b"\x55" + s[121:])
    seeds["state_unbound_with_binding_bytes"] = with_check(s[:50] + b"\x00" + s[51:])

    blob = bytes.fromhex(v["token_sealed_hex"])
    seeds["bad_sealed_flipped"] = blob[:40] + bytes([blob[40] ^ 1]) + blob[41:]
    seeds["bad_sealed_truncated"] = blob[:-1]
    seeds["bad_sealed_version_2"] = b"\x15\x02" + blob[2:]
    seeds["bad_sealed_device_state_kind"] = b"\x10\x01" + blob[2:]

    def sealed_state(state, key=rv.STORAGE_KEY, nonce=b"\x51" * 24):
        return b"\x15\x01" + nonce + rv.xaead_seal(key, nonce, b"\x15\x01", state)
    seeds["bad_sealed_other_key"] = sealed_state(st, key=b"\x5b" * 32)
    seeds["bad_sealed_corrupt_state"] = sealed_state(seeds["bad_state_flipped"])
    seeds["bad_sealed_state_too_long"] = sealed_state(st + b"\x00")

    # ---- Entries the portal refuses at their step (all refused by every other
    # decoder: short enough, or against the policy, for the new-password step).
    seeds["bad_entry_device_code_wrong"] = dc[:-1] + str((int(dc[-1]) + 1) % 10)
    seeds["bad_entry_device_code_9_digits"] = dc[:9]
    seeds["bad_entry_device_code_arabic_digits"] = "".join(chr(0x0660 + int(ch)) for ch in dc)
    seeds["bad_entry_activation_code_wrong"] = "271829"
    seeds["bad_entry_activation_code_spaced"] = "271 828"
    bc = v["binding"]["binding_code"]
    seeds["bad_entry_binding_code_wrong"] = bc[:-1] + str((int(bc[-1]) + 1) % 10)
    seeds["bad_entry_serial_other"] = "TS00012346"
    seeds["bad_entry_serial_tab"] = "TS0001\t2345"
    seeds["bad_entry_serial_fullwidth"] = "\uff34\uff33" + S[2:]
    tc = v["test_challenge"]["code"]
    seeds["bad_entry_test_otp_wrong"] = tc[:-1] + str((int(tc[-1]) + 1) % 10)
    seeds["bad_entry_test_otp_7_digits"] = tc[:7]
    seeds["bad_entry_initial_password_truncated"] = rv.typed_normalized(v["initial_password"])[:11]
    seeds["bad_entry_new_password_short"] = "tessera-pw"
    seeds["bad_entry_new_password_common"] = "Password1234"
    seeds["bad_entry_new_password_sequence"] = "123456789012"
    seeds["bad_entry_new_password_repeated"] = "aaaaaaaaaaaaaaaa"
    seeds["bad_entry_new_password_user_id"] = f"my id {uid}!"
    seeds["bad_entry_new_password_serial"] = f"token {S.lower()} pw"
    seeds["bad_entry_new_password_account"] = f"{rv.ACCOUNT.upper()} rocks"
    seeds["bad_entry_new_password_too_long"] = "correct horse battery staple " * 3

    os.makedirs(OUT, exist_ok=True)
    for old in os.listdir(OUT):
        if not (len(old) == 40 and all(c in "0123456789abcdef" for c in old)):
            os.remove(os.path.join(OUT, old))  # hand-made seeds are rewritten; libFuzzer's kept
    for name_, data in sorted(seeds.items()):
        with open(os.path.join(OUT, name_), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
    with open(os.path.join(OUT, "empty"), "wb"):
        pass
    print(f"{len(seeds) + 1} seeds in {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
