#!/usr/bin/env python3
"""Writes the flow-3 scenario files (vectors/scenarios/activation-*.json).

The JSON files are what the runners read and what reviewers read; this
script only spares writing the long, repeated activation prefix by hand.
Run it after changing a scenario here: python3 scripts/gen_activation_scenarios.py
"""
import json
import os

T = 1800000000
ACCOUNT = "anna@example.org"
CODE = "271828"
NEW_PASSWORD = "correct horse battery staple"
SETTINGS = {"hashIterations": 10000}
DELAY = 4 * 3600
OUT = os.path.join(os.path.dirname(__file__), "..", "vectors", "scenarios")


def step(op, expect=None, events=None, **kw):
    s = {"do": op}
    s.update(kw)
    if expect is not None:
        s["expect"] = expect
    if events is not None:
        s["events"] = events
    return s


def setup(tokens=("t1",), serials=("TS00012345",)):
    steps = [step("portal", name="Example Bank"), step("activationSettings", settings=SETTINGS)]
    for t, s in zip(tokens, serials):
        steps.append(step("token", token=t, serial=s))
    steps.append(step("importDevices", {"serials": list(serials)}, tokens=list(tokens), at=T))
    steps.append(step("order", account=ACCOUNT, activationCode=CODE, token=tokens[0], save="o1", at=T + 10))
    return steps


def to_binding(a="a1", at=T + 60, token="t1"):
    """Start, first QR code, device code, activation code: the second QR code is shown."""
    return [
        step("activationStart", {"step": "deviceCode", "qr": True}, order="o1", save=a, at=at),
        step("tokenScan", {"kind": "deviceCode", "digits": 10, "portalName": "Example Bank"}, token=token, qr=a),
        step("activationNext", {"step": "activationCode", "qr": False}, activation=a, input={"shown": token}, at=at + 5),
        step("activationNext", {"step": "bindingCode", "qr": True}, activation=a, input=CODE, at=at + 10),
    ]


def to_initial_password(a="a1", at=T + 60, token="t1"):
    return to_binding(a, at, token) + [
        step("tokenScan", {"kind": "bindingCode", "digits": 8, "userId": "o1", "replaced": False}, token=token, qr=a),
        step("activationNext", {"step": "serial", "qr": False}, activation=a, input={"shown": token}, at=at + 15),
        step("activationNext", {"step": "testOtp", "qr": True}, activation=a, input={"serial": token}, at=at + 20),
        step("tokenScan", {"kind": "challenge", "digits": 8, "approval": {"kind": "login"}}, token=token, qr=a),
        step("activationNext", {"step": "initialPassword"}, activation=a, input={"shown": token}, at=at + 25),
    ]


def activated(a="a1", at=T + 60, token="t1"):
    """The whole flow; done at `at + 35`, usable from `at + 35 + DELAY`."""
    return to_initial_password(a, at, token) + [
        step("activationNext", {"step": "newPassword"}, activation=a, input={"initialPassword": "o1"}, at=at + 30),
        step("activationNext", {"step": "done", "qr": False, "recoveryCodes": 10}, ["deviceActivated"],
             activation=a, input=NEW_PASSWORD, at=at + 35),
    ]


LOGIN = {"kind": "login"}
TX = {"kind": "transaction", "amount": "125.50", "currency": "EUR", "payee": "ACME Energy Ltd",
      "text": ["Invoice 2026-118"]}
USABLE = T + 60 + 35 + DELAY

FILES = {
    "activation-success": (
        "The whole of flow 3: import, order, both QR codes and their codes, serial, test challenge, initial and new "
        "password, recovery codes; refused before the delay, then a login and a transaction like a linked phone.",
        setup() + activated() + [
            step("devices", {"devices": [{"name": "Authenticator TS00012345", "status": "active"}]}, account=ACCOUNT),
            step("challenge", {"error": "DEVICE_NOT_YET_USABLE"}, account=ACCOUNT, approval=LOGIN, save="c0",
                 at=USABLE - 1),
            step("challenge", account=ACCOUNT, approval=LOGIN, save="c1", at=USABLE),
            step("tokenScan", {"kind": "challenge", "digits": 8, "userId": "o1", "approval": LOGIN}, token="t1",
                 qr="c1"),
            step("verify", {"device": "t1"}, ["challengeAnswered"], challenge="c1", answer="t1", at=USABLE + 5),
            step("challenge", account=ACCOUNT, approval=TX, save="c2", at=USABLE + 60),
            step("tokenScan", {"kind": "challenge", "approval": TX}, token="t1", qr="c2"),
            step("verify", {"refused": "INVALID_ANSWER"}, challenge="c2", answer="wrong:t1", at=USABLE + 65),
            step("verify", {"device": "t1"}, challenge="c2", answer="t1", at=USABLE + 66),
            step("verifyPassword", "accepted", account=ACCOUNT, password=NEW_PASSWORD, at=USABLE + 70),
            step("redeemRecoveryCode", {"left": 9}, account=ACCOUNT, code={"recovery": ["a1", 0]}, at=USABLE + 80),
            step("redeemRecoveryCode", {"refused": "RECOVERY_CODE_MISMATCH"}, account=ACCOUNT,
                 code={"recovery": ["a1", 0]}, at=USABLE + 81),
            step("redeemRecoveryCode", {"left": 8}, account=ACCOUNT, code={"recovery": ["a1", 9]}, at=USABLE + 82),
        ],
    ),
    "activation-wrong-entries": (
        "A wrong entry at every step is refused with that step's own code and leaves the step where it was; the "
        "right entry then moves on (4 wrong codes stay under the limit of 5).",
        setup() + [
            step("activationStart", order="o1", save="a1", at=T + 60),
            step("tokenScan", token="t1", qr="a1"),
            step("activationNext", {"refused": "DEVICE_CODE_MISMATCH"}, [], activation="a1", input={"wrong": "t1"},
                 at=T + 61),
            step("activationNext", {"step": "activationCode"}, activation="a1", input={"shown": "t1"}, at=T + 62),
            step("activationNext", {"refused": "ACTIVATION_CODE_MISMATCH"}, activation="a1", input="314159",
                 at=T + 63),
            step("activationNext", {"step": "bindingCode", "qr": True}, activation="a1", input=CODE, at=T + 64),
            step("tokenScan", token="t1", qr="a1"),
            step("activationNext", {"refused": "BINDING_CODE_MISMATCH"}, activation="a1", input={"wrong": "t1"},
                 at=T + 65),
            step("activationNext", {"step": "serial"}, activation="a1", input={"shown": "t1"}, at=T + 66),
            step("activationNext", {"refused": "SERIAL_MISMATCH"}, activation="a1", input="TS99999999", at=T + 67),
            step("activationNext", {"step": "testOtp", "qr": True}, activation="a1", input="ts0001-2345", at=T + 68),
            step("tokenScan", token="t1", qr="a1"),
            step("activationNext", {"refused": "INVALID_ANSWER"}, activation="a1", input={"wrong": "t1"}, at=T + 69),
            step("activationNext", {"step": "initialPassword"}, activation="a1", input={"shown": "t1"}, at=T + 70),
            step("activationNext", {"refused": "PASSWORD_MISMATCH"}, activation="a1", input="AAAA-BBBB-CCCC",
                 at=T + 71),
            step("activationNext", {"step": "newPassword"}, activation="a1", input={"initialPassword": "o1"},
                 at=T + 72),
            step("activationNext", {"refused": "PASSWORD_POLICY"}, [], activation="a1", input="abcdefghijklmnop",
                 at=T + 73),
            step("activationNext", {"refused": "PASSWORD_POLICY"}, [], activation="a1", input="short pass",
                 at=T + 74),
            step("activationNext", {"step": "done", "recoveryCodes": 10}, ["deviceActivated"], activation="a1",
                 input=NEW_PASSWORD, at=T + 75),
            step("activationNext", {"refused": "INVALID_STATE"}, activation="a1", input=NEW_PASSWORD, at=T + 76),
        ],
    ),
    "activation-lockout": (
        "Five wrong device codes end the activation (LOCKED_OUT, even for the right code); a new activation of the "
        "same order starts over with a new first QR code.",
        setup() + [
            step("activationStart", order="o1", save="a1", at=T + 60),
            step("tokenScan", token="t1", qr="a1"),
        ] + [
            step("activationNext", {"refused": "DEVICE_CODE_MISMATCH"}, activation="a1", input={"wrong": "t1"},
                 at=T + 61 + i) for i in range(4)
        ] + [
            step("activationNext", {"refused": "LOCKED_OUT"}, activation="a1", input={"wrong": "t1"}, at=T + 70),
            step("activationNext", {"refused": "LOCKED_OUT"}, activation="a1", input={"shown": "t1"}, at=T + 71),
            step("activationStart", {"step": "deviceCode", "qr": True}, order="o1", save="a2", at=T + 80),
            step("tokenScan", token="t1", qr="a2"),
            step("activationNext", {"step": "activationCode"}, activation="a2", input={"shown": "t1"}, at=T + 81),
        ],
    ),
    "activation-order-lock": (
        "Wrong activation codes count on the order across restarts: the fifth locks it (event orderLocked) and no "
        "activation can start again.",
        setup() + to_binding("a1")[:3] + [
            step("activationNext", {"refused": "ACTIVATION_CODE_MISMATCH"}, activation="a1", input=str(100000 + i),
                 at=T + 70 + i) for i in range(4)
        ] + to_binding("a2", T + 100)[:3] + [
            step("activationNext", {"refused": "LOCKED_OUT"}, ["orderLocked"], activation="a2", input="999999",
                 at=T + 120),
            step("activationNext", {"refused": "LOCKED_OUT"}, activation="a2", input=CODE, at=T + 121),
            step("activationStart", {"error": "LOCKED_OUT"}, order="o1", save="a3", at=T + 130),
        ],
    ),
    "activation-qr-attacks": (
        "Activation QR codes are for one device: another device cannot read them, a truncated one is refused with a "
        "typed error, and a link QR code is another kind.",
        setup(("t1", "t2"), ("TS00012345", "TS00067890")) + [
            step("activationStart", order="o1", save="a1", at=T + 60),
            step("tokenScan", {"error": "NOT_FOR_THIS_DEVICE"}, token="t2", qr="a1"),
            step("tokenScan", {"error": "MALFORMED_MESSAGE"}, token="t1", qr="a1", edit="truncate"),
            step("tokenScan", {"kind": "deviceCode"}, token="t1", qr="a1"),
            step("activationNext", {"step": "activationCode"}, activation="a1", input={"shown": "t1"}, at=T + 61),
            step("activationNext", {"step": "bindingCode"}, activation="a1", input=CODE, at=T + 62),
            step("tokenScan", {"error": "NOT_FOR_THIS_DEVICE"}, token="t2", qr="a1"),
            step("tokenScan", {"kind": "bindingCode", "replaced": False}, token="t1", qr="a1"),
            step("tokenScan", {"kind": "bindingCode", "replaced": False}, token="t1", qr="a1"),
            step("activationNext", {"step": "serial"}, activation="a1", input={"shown": "t1"}, at=T + 63),
            step("offer", account=ACCOUNT, save="link", at=T + 64),
            step("tokenScan", {"error": "WRONG_MESSAGE_KIND"}, token="t1", qr="link"),
        ],
    ),
    "activation-superseded": (
        "A restart supersedes the running activation once its device code is typed (INVALID_STATE for the old one; "
        "the same code again is a repeat, nothing counted); the device takes the newer binding and refuses the older "
        "binding QR code (TOKEN_ALREADY_USED); the new activation finishes.",
        setup() + to_binding("a1") + [
            step("tokenScan", {"kind": "bindingCode", "replaced": False}, token="t1", qr="a1"),
            step("activationStart", order="o1", save="a2", at=T + 200),
            step("tokenScan", {"kind": "deviceCode"}, token="t1", qr="a2"),
            step("activationNext", {"step": "activationCode"}, activation="a2", input={"shown": "t1"}, at=T + 202),
            step("activationNext", "repeated", [], activation="a2", input={"shown": "t1"}, at=T + 202),
            step("activationNext", {"refused": "INVALID_STATE"}, activation="a1", input="00000000", at=T + 202),
            step("activationNext", {"step": "bindingCode"}, activation="a2", input=CODE, at=T + 203),
            step("tokenScan", {"kind": "bindingCode", "replaced": True}, token="t1", qr="a2"),
            step("tokenScan", {"error": "TOKEN_ALREADY_USED"}, token="t1", qr="a1"),
            step("tokenScan", {"kind": "bindingCode", "replaced": False}, token="t1", qr="a2"),
            step("activationNext", {"step": "serial"}, activation="a2", input={"shown": "t1"}, at=T + 204),
            step("activationNext", {"step": "testOtp"}, activation="a2", input={"serial": "t1"}, at=T + 205),
            step("tokenScan", {"kind": "challenge"}, token="t1", qr="a2"),
            step("activationNext", {"step": "initialPassword"}, activation="a2", input={"shown": "t1"}, at=T + 206),
            step("activationNext", {"step": "newPassword"}, activation="a2", input={"initialPassword": "o1"},
                 at=T + 207),
            step("activationNext", {"step": "done"}, ["deviceActivated"], activation="a2", input=NEW_PASSWORD,
                 at=T + 208),
        ],
    ),
    "activation-expiry": (
        "An abandoned activation expires (30 minutes by default): the first late entry writes it expired; a new "
        "activation of the order starts over.",
        setup() + [
            step("activationStart", order="o1", save="a1", at=T + 60),
            step("tokenScan", token="t1", qr="a1"),
            step("activationNext", {"refused": "TOKEN_EXPIRED"}, activation="a1", input={"shown": "t1"},
                 at=T + 60 + 1800),
            step("activationNext", {"refused": "TOKEN_EXPIRED"}, activation="a1", input={"shown": "t1"},
                 at=T + 60 + 1801),
            step("activationStart", {"step": "deviceCode"}, order="o1", save="a2", at=T + 2000),
            step("tokenScan", token="t1", qr="a2"),
            step("activationNext", {"step": "activationCode"}, activation="a2", input={"shown": "t1"}, at=T + 2001),
        ],
    ),
    "activation-import": (
        "The maker's file is imported whole or not at all: a device imported before, a repeated line, a malformed "
        "line or another version refuse the file; a device already sent cannot be ordered again.",
        [
            step("portal", name="Example Bank"),
            step("activationSettings", settings=SETTINGS),
            step("token", token="t1", serial="TS00000001"),
            step("token", token="t2", serial="TS00000002"),
            step("token", token="t3", serial="TS00000003"),
            step("importDevices", {"serials": ["TS00000001", "TS00000002"]}, tokens=["t1", "t2"], at=T),
            step("importDevices", {"error": "DUPLICATE_RECORD"}, [], tokens=["t3", "t1"], at=T + 1),
            step("importDevices", {"error": "DUPLICATE_RECORD"}, tokens=["t3", "t3"], at=T + 2),
            step("importDevices", {"error": "INVALID_INPUT"}, tokens=["t3"], lines=["TS00000004 not-hex"], at=T + 3),
            step("importDevices", {"error": "INVALID_INPUT"}, tokens=["t3"], header="serial secret", at=T + 4),
            step("importDevices", {"error": "UNSUPPORTED_VERSION"}, tokens=["t3"],
                 header="tessera-factory-records v2", at=T + 5),
            step("importDevices", {"serials": ["TS00000003"]}, tokens=["t3"], lines=["# end of batch"], at=T + 6),
            step("order", account=ACCOUNT, activationCode=CODE, token="t1", save="o1", at=T + 10),
            step("order", {"error": "INVALID_STATE"}, account="bob@example.org", activationCode=CODE, token="t1",
                 save="o2", at=T + 11),
            step("order", {"error": "INVALID_INPUT"}, account="bob@example.org", activationCode="12345", token="t2",
                 save="o2", at=T + 12),
        ],
    ),
    "activation-initial-password": (
        "The initial password from the letter is single use: once accepted, an activation abandoned later cannot be "
        "restarted with the same letter; weak new passwords are refused without being counted.",
        setup() + to_initial_password() + [
            step("activationNext", {"step": "newPassword"}, activation="a1", input={"initialPassword": "o1"},
                 at=T + 100),
            step("activationNext", {"refused": "PASSWORD_POLICY"}, [], activation="a1", input="password1234",
                 at=T + 101),
            step("activationNext", {"refused": "PASSWORD_POLICY"}, [], activation="a1", input={"initialPassword": "o1"},
                 at=T + 102),
            step("activationStart", {"error": "INVALID_STATE"}, order="o1", save="a2", at=T + 200),
        ],
    ),
    "activation-credentials-lock": (
        "The password set by the activation locks after 5 wrong ones in a row (event credentialsLocked); a right one "
        "before that resets the count.",
        setup() + activated() + [
            step("verifyPassword", {"refused": "PASSWORD_MISMATCH"}, account=ACCOUNT, password="wrong password 1",
                 at=T + 200),
            step("verifyPassword", "accepted", account=ACCOUNT, password=NEW_PASSWORD, at=T + 201),
        ] + [
            step("verifyPassword", {"refused": "PASSWORD_MISMATCH"}, account=ACCOUNT, password="wrong password",
                 at=T + 210 + i) for i in range(4)
        ] + [
            step("verifyPassword", {"refused": "LOCKED_OUT"}, ["credentialsLocked"], account=ACCOUNT,
                 password="wrong password", at=T + 220),
            step("verifyPassword", {"refused": "LOCKED_OUT"}, [], account=ACCOUNT, password=NEW_PASSWORD, at=T + 221),
        ],
    ),
    "activation-cancelled-before-use": (
        "A fraudulent activation noticed during the delay: the portal unlinks the device, and it is never usable.",
        setup() + activated() + [
            step("unlink", events=["deviceUnlinked"], token="t1", at=T + 1000),
            step("challenge", {"error": "DEVICE_REVOKED"}, account=ACCOUNT, approval=LOGIN, save="c1", at=USABLE),
        ],
    ),
    "activation-with-a-phone": (
        "An account with a linked phone activates an authenticator: challenges leave it out until the delay is over "
        "(the phone still answers), then include both, and either may answer.",
        [
            step("portal", name="Example Bank"),
            step("offer", account=ACCOUNT, save="qr_p1", at=T),
            step("startLink", phone="p1", qr="qr_p1", name="Anna's Pixel", passcode="493817", at=T + 1),
            step("accept", "accepted", phone="p1", at=T + 2),
            step("finish", phone="p1"),
            step("confirm", "accepted", account=ACCOUNT, code="p1", at=T + 3),
            step("activationSettings", settings=dict(SETTINGS, usableAfterSeconds=3600)),
            step("token", token="t1", serial="TS00012345"),
            step("importDevices", tokens=["t1"], at=T + 4),
            step("order", account=ACCOUNT, activationCode=CODE, token="t1", save="o1", at=T + 10),
        ] + activated() + [
            step("challenge", account=ACCOUNT, approval=LOGIN, save="c1", at=T + 200),
            step("tokenScan", {"error": "NOT_FOR_THIS_DEVICE"}, token="t1", qr="c1"),
            step("answer", phone="p1", qr="c1", passcode="493817", at=T + 201),
            step("verify", {"device": "p1"}, challenge="c1", answer="p1", at=T + 202),
            step("challenge", account=ACCOUNT, approval=LOGIN, save="c2", at=T + 95 + 3600),
            step("tokenScan", {"kind": "challenge", "userId": "o1"}, token="t1", qr="c2"),
            step("verify", {"device": "t1"}, challenge="c2", answer="t1", at=T + 95 + 3601),
            step("devices", {"devices": [{"name": "Anna's Pixel", "status": "active"},
                                         {"name": "Authenticator TS00012345", "status": "active"}]},
                 account=ACCOUNT),
        ],
    ),
    "activation-second-device": (
        "A second authenticator activated for the same account: its new password and recovery codes wait for its "
        "delay (the user's own stay in force until then, so an activation they did not make changes nothing before "
        "it can be cancelled), then replace them.",
        setup(("t1", "t2"), ("TS00012345", "TS00067890")) + activated() + [
            step("order", account=ACCOUNT, activationCode="161803", token="t2", save="o2", at=T + 1000),
            step("activationStart", order="o2", save="b1", at=T + 1100),
            step("tokenScan", {"kind": "deviceCode"}, token="t2", qr="b1"),
            step("activationNext", {"step": "activationCode"}, activation="b1", input={"shown": "t2"}, at=T + 1101),
            step("activationNext", {"step": "bindingCode"}, activation="b1", input="161803", at=T + 1102),
            step("tokenScan", {"kind": "bindingCode", "userId": "o2"}, token="t2", qr="b1"),
            step("activationNext", {"step": "serial"}, activation="b1", input={"shown": "t2"}, at=T + 1103),
            step("activationNext", {"step": "testOtp"}, activation="b1", input={"serial": "t2"}, at=T + 1104),
            step("tokenScan", {"kind": "challenge"}, token="t2", qr="b1"),
            step("activationNext", {"step": "initialPassword"}, activation="b1", input={"shown": "t2"}, at=T + 1105),
            step("activationNext", {"step": "newPassword"}, activation="b1", input={"initialPassword": "o2"},
                 at=T + 1106),
            step("activationNext", {"step": "done", "recoveryCodes": 10}, ["deviceActivated"], activation="b1",
                 input="another long pass phrase", at=T + 1107),
            step("verifyPassword", {"refused": "PASSWORD_MISMATCH"}, account=ACCOUNT,
                 password="another long pass phrase", at=T + 1107 + DELAY - 1),
            step("verifyPassword", "accepted", account=ACCOUNT, password=NEW_PASSWORD, at=T + 1107 + DELAY - 1),
            step("verifyPassword", "accepted", account=ACCOUNT, password="another long pass phrase",
                 at=T + 1107 + DELAY),
            step("verifyPassword", {"refused": "PASSWORD_MISMATCH"}, account=ACCOUNT, password=NEW_PASSWORD,
                 at=T + 1107 + DELAY + 1),
            step("redeemRecoveryCode", {"left": 9}, account=ACCOUNT, code={"recovery": ["b1", 0]},
                 at=T + 1107 + DELAY + 2),
            step("redeemRecoveryCode", {"refused": "RECOVERY_CODE_MISMATCH"}, account=ACCOUNT,
                 code={"recovery": ["a1", 1]}, at=T + 1107 + DELAY + 3),
        ],
    ),
}

for name, (about, steps) in FILES.items():
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump({"name": name, "about": about, "steps": steps}, f, indent=2, ensure_ascii=False)
        f.write("\n")
print(f"{len(FILES)} files, {sum(len(s) for _, s in FILES.values())} steps")
