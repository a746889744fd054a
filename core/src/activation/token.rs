//! The offline authenticator: scans QR codes, shows digits. It runs
//! without an operating system and without allocating: every buffer is a
//! fixed-size array on the stack, and its whole state is
//! [`TOKEN_STATE_LEN`] bytes the firmware keeps in protected flash (an app
//! acting as one seals them with its storage key). It builds for
//! `thumbv7em-none-eabihf` (see `firmware/`), and the simulator (the
//! CLI's `tessera token`, the Kotlin and Swift `OfflineAuthenticator`)
//! runs this same code.

use super::messages::{
    binding_code, check_possession_mac, device_code, open_binding, ActivationQrRef, MAX_BINDING_PLAIN,
};
use super::{binding_keys, binding_root, key_hint, qr_key, serial_ok, wrap_key, MAX_USER_ID_LEN, SERIAL_LEN};
use crate::challenge::messages::{challenge_hash, typed_code_digits, ChallengeQrRef, MAX_CHALLENGE_QR_TEXT};
use crate::challenge::{Amount, ANSWER_DIGITS, MAX_PAYEE_LEN, MAX_TEXT_LEN, MAX_TEXT_LINES};
use crate::crypto::{
    ecdh, generate_secret_key, public_of, secret_key_from_bytes, sha256, RandomSource, PUBLIC_KEY_LEN,
};
use crate::error::{err, ErrorCode, Result};
use crate::link::{name_ok, MAX_DEVICE_NAME_LEN, MAX_PORTAL_NAME_LEN};
use crate::secret::ct_eq;
use crate::wire::{self, Kind};
use serde::Deserialize;
use zeroize::Zeroizing;

/// Bytes of a token's state ([`Token::to_bytes`]).
pub const TOKEN_STATE_LEN: usize = 133;
/// Bytes of the longest QR code a token reads (1024 Base45 characters).
const MAX_QR_BYTES: usize = crate::encoding::base45_decoded_len(MAX_CHALLENGE_QR_TEXT);
const STATE_VERSION: u8 = 1;
const STATE_CHECK: &[u8] = b"tessera/v1/token-state";

/// Up to `N` bytes of text in a fixed buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Text<const N: usize> {
    buf: [u8; N],
    len: u8,
}

impl<const N: usize> Text<N> {
    /// `None` if `s` is longer than `N` bytes.
    pub(crate) fn new(s: &str) -> Option<Self> {
        let len = u8::try_from(s.len()).ok().filter(|&l| usize::from(l) <= N)?;
        let mut buf = [0u8; N];
        buf[..s.len()].copy_from_slice(s.as_bytes());
        Some(Text { buf, len })
    }

    fn of(s: &str) -> Result<Self> {
        Self::new(s).ok_or(err(ErrorCode::MalformedMessage, "a text is longer than the device can show"))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ever filled from a `&str`.
        core::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

impl<const N: usize> core::fmt::Debug for Text<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> core::fmt::Display for Text<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Digits the device shows (6 to 10), in a fixed buffer. `Debug` does not
/// print them.
#[derive(Clone, PartialEq, Eq)]
pub struct Code {
    buf: [u8; 10],
    len: u8,
}

impl Code {
    /// `n mod 10^digits` with leading zeros (`digits` ≤ 10).
    pub(crate) fn from_number(mut n: u64, digits: u8) -> Code {
        let len = digits.min(10);
        let mut buf = [b'0'; 10];
        for b in buf[..usize::from(len)].iter_mut().rev() {
            *b = b'0' + (n % 10) as u8;
            n /= 10;
        }
        Code { buf, len }
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

impl core::fmt::Debug for Code {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Code(<{} digits>)", self.len)
    }
}

impl Drop for Code {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.buf);
    }
}

/// What a challenge approves, as the device shows it.
// Fixed-size on purpose (no heap on the device): boxing the large variant
// would allocate.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShownApproval {
    /// Log in.
    Login,
    /// A payment.
    Transaction {
        /// Amount, shown exactly as the portal wrote it.
        amount: Amount,
        /// ISO 4217 code.
        currency: Text<3>,
        /// Payee.
        payee: Text<MAX_PAYEE_LEN>,
        /// Up to 3 more lines; `lines` of them are used.
        text: [Text<MAX_TEXT_LEN>; MAX_TEXT_LINES],
        /// How many of `text` are used.
        lines: u8,
    },
    /// A new device joins the account (flow 2).
    LinkDevice {
        /// The new device's name.
        device_name: Text<MAX_DEVICE_NAME_LEN>,
        /// Its id.
        device_id: Text<16>,
    },
}

impl ShownApproval {
    /// `login`, `transaction` or `linkDevice` (as [`crate::challenge::Approval::kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            ShownApproval::Login => "login",
            ShownApproval::Transaction { .. } => "transaction",
            ShownApproval::LinkDevice { .. } => "linkDevice",
        }
    }

    /// The used text lines of a transaction (none otherwise).
    pub fn text_lines(&self) -> &[Text<MAX_TEXT_LEN>] {
        match self {
            ShownApproval::Transaction { text, lines, .. } => &text[..usize::from(*lines).min(MAX_TEXT_LINES)],
            _ => &[],
        }
    }
}

/// What the device shows after a scan.
// Fixed-size on purpose (no heap on the device).
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Screen {
    /// The first activation QR code: the user types these 10 digits.
    DeviceCode {
        /// Who activates the device.
        portal_name: Text<MAX_PORTAL_NAME_LEN>,
        /// The device code.
        code: Code,
    },
    /// The second activation QR code: the device took the binding to this
    /// user (store [`Token::to_bytes`] now) and shows 8 digits.
    BindingCode {
        /// Who activates the device.
        portal_name: Text<MAX_PORTAL_NAME_LEN>,
        /// The user it is bound to.
        user_id: Text<MAX_USER_ID_LEN>,
        /// The binding code.
        code: Code,
        /// An earlier binding (of an activation not finished, or of a
        /// previous owner) was replaced.
        replaced: bool,
    },
    /// A challenge (the test challenge of the activation, or any login or
    /// transaction afterwards): the user checks what is approved and types
    /// the code.
    Challenge {
        /// Who asks.
        portal_name: Text<MAX_PORTAL_NAME_LEN>,
        /// The user the device is bound to.
        user_id: Text<MAX_USER_ID_LEN>,
        /// What is approved.
        approval: ShownApproval,
        /// The code to type (the portal's digits).
        code: Code,
    },
}

#[derive(Clone)]
struct Binding {
    generation: u32,
    root: Zeroizing<[u8; 32]>,
    portal_name: Text<MAX_PORTAL_NAME_LEN>,
    user_id: Text<MAX_USER_ID_LEN>,
}

/// An offline authenticator: its serial number, its P-256 device key
/// (made at the factory; the maker's file carries only its public half),
/// and the binding of its last activation.
#[derive(Clone)]
pub struct Token {
    serial: Text<16>,
    device_sk: Zeroizing<[u8; 32]>,
    device_pk: [u8; PUBLIC_KEY_LEN],
    binding: Option<Binding>,
}

impl core::fmt::Debug for Token {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Token")
            .field("serial", &self.serial)
            .field("user_id", &self.binding.as_ref().map(|b| b.user_id))
            .finish_non_exhaustive()
    }
}

impl Token {
    /// A new device with a fresh device key (what the maker does):
    /// `INVALID_INPUT` unless `serial` is 6 to 16 of `A`–`Z`, `0`–`9`.
    pub fn new(serial: &str, rng: &mut dyn RandomSource) -> Result<Token> {
        let sk = generate_secret_key(rng)?;
        Token::from_factory(serial, &Zeroizing::new(sk.to_bytes().into()))
    }

    /// A device from its 32-byte device secret (a P-256 scalar):
    /// `INVALID_INPUT` for a bad serial or a scalar that is not a key.
    pub fn from_factory(serial: &str, device_secret: &[u8; 32]) -> Result<Token> {
        if !serial_ok(serial) {
            return Err(err(ErrorCode::InvalidInput, "a serial number has 6 to 16 characters A-Z and 0-9"));
        }
        let sk = secret_key_from_bytes(device_secret)
            .map_err(|_| err(ErrorCode::InvalidInput, "the device secret is not a P-256 key"))?;
        Ok(Token {
            serial: Text::of(serial).map_err(|_| err(ErrorCode::InvalidInput, "the serial number is too long"))?,
            device_sk: Zeroizing::new(*device_secret),
            device_pk: public_of(&sk),
            binding: None,
        })
    }

    /// The serial number (printed on the back).
    pub fn serial(&self) -> &str {
        self.serial.as_str()
    }

    /// The device's public key (33-byte compressed SEC1), for the maker's record.
    pub fn public_key(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.device_pk
    }

    /// The ECDH secret with a portal's ephemeral key from a QR code.
    fn shared(&self, e_pk: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        secret_key_from_bytes(&self.device_sk[..])?;
        ecdh(&self.device_sk, e_pk, ErrorCode::MalformedMessage)
    }

    /// The user the device is bound to, if any.
    pub fn user_id(&self) -> Option<&str> {
        self.binding.as_ref().map(|b| b.user_id.as_str())
    }

    /// The portal it is bound to, if any.
    pub fn portal_name(&self) -> Option<&str> {
        self.binding.as_ref().map(|b| b.portal_name.as_str())
    }

    /// The device id the portal lists the device under, once bound.
    pub fn device_id(&self) -> Option<[u8; 8]> {
        self.binding.as_ref().map(|b| super::token_device_id(self.serial(), b.generation))
    }

    /// The whole state, to keep in protected storage.
    pub fn to_bytes(&self) -> Zeroizing<[u8; TOKEN_STATE_LEN]> {
        let mut s = Zeroizing::new([0u8; TOKEN_STATE_LEN]);
        s[0] = STATE_VERSION;
        s[1] = self.serial.len;
        s[2..18].copy_from_slice(&self.serial.buf);
        s[18..50].copy_from_slice(&self.device_sk[..]);
        if let Some(b) = &self.binding {
            s[50] = 1;
            s[51..55].copy_from_slice(&b.generation.to_be_bytes());
            s[55..87].copy_from_slice(&b.root[..]);
            s[87] = b.portal_name.len;
            s[88..108].copy_from_slice(&b.portal_name.buf);
            s[108] = b.user_id.len;
            s[109..125].copy_from_slice(&b.user_id.buf);
        }
        let check = sha256(&[STATE_CHECK, &s[..125]]);
        s[125..].copy_from_slice(&check[..8]);
        s
    }

    /// Read a state back (`STATE_CORRUPT` if it is not one, or changed).
    pub fn from_bytes(s: &[u8]) -> Result<Token> {
        let corrupt = || err(ErrorCode::StateCorrupt, "the authenticator's state is corrupt");
        if s.len() != TOKEN_STATE_LEN || s[0] != STATE_VERSION {
            return Err(corrupt());
        }
        if !ct_eq(&sha256(&[STATE_CHECK, &s[..125]])[..8], &s[125..]) {
            return Err(corrupt());
        }
        fn text(len: u8, bytes: &[u8]) -> Result<&str> {
            let t = bytes
                .get(..usize::from(len))
                .ok_or(err(ErrorCode::StateCorrupt, "the authenticator's state is corrupt"))?;
            core::str::from_utf8(t).map_err(|_| err(ErrorCode::StateCorrupt, "the authenticator's state is corrupt"))
        }
        let serial = text(s[1], &s[2..18])?;
        if !SERIAL_LEN.contains(&serial.len()) {
            return Err(corrupt());
        }
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(&s[18..50]);
        let mut token = Token::from_factory(serial, &secret).map_err(|_| corrupt())?;
        token.binding = match s[50] {
            0 => None,
            1 => {
                let mut root = Zeroizing::new([0u8; 32]);
                root.copy_from_slice(&s[55..87]);
                let mut g = [0u8; 4];
                g.copy_from_slice(&s[51..55]);
                Some(Binding {
                    generation: u32::from_be_bytes(g),
                    root,
                    portal_name: Text::new(text(s[87], &s[88..108])?).ok_or_else(corrupt)?,
                    user_id: Text::new(text(s[108], &s[109..125])?).ok_or_else(corrupt)?,
                })
            }
            _ => return Err(corrupt()),
        };
        Ok(token)
    }

    /// Scan a QR code and say what to show. The first activation QR code
    /// gives the 10-digit device code; the second binds the device to the
    /// user (the state changed: store it) and gives the 8-digit binding
    /// code; a challenge gives what is approved and its code.
    ///
    /// Errors: `NOT_FOR_THIS_DEVICE` (made for another device, or a
    /// challenge for another binding), `MESSAGE_TAMPERED`,
    /// `MALFORMED_MESSAGE`, `WRONG_MESSAGE_KIND` (a link QR code),
    /// `UNSUPPORTED_VERSION`, `TOKEN_ALREADY_USED` (a binding older than
    /// the one the device holds), `DEVICE_NOT_LINKED` (a challenge before
    /// any activation). Nothing changes on an error.
    pub fn scan(&mut self, qr: &str) -> Result<Screen> {
        if qr.len() > MAX_CHALLENGE_QR_TEXT {
            return Err(err(ErrorCode::MalformedMessage, "the QR code is too long"));
        }
        let mut buf = [0u8; MAX_QR_BYTES];
        let bytes = wire::from_qr_text_into(qr, &mut buf)?;
        if bytes.first() == Some(&(Kind::ChallengeQr as u8)) {
            return self.challenge(bytes);
        }
        let parsed = ActivationQrRef::parse(bytes)?;
        parsed.check_hint(&key_hint(&self.device_pk))?;
        match parsed {
            ActivationQrRef::Possession { e_pk, signed, mac, portal_name, .. } => {
                let k = qr_key(&*self.shared(&e_pk)?, &e_pk, self.serial());
                check_possession_mac(&k, signed, mac)?;
                Ok(Screen::DeviceCode { portal_name: Text::of(portal_name)?, code: device_code(&k, bytes) })
            }
            ActivationQrRef::Binding { e_pk, generation, aad, ciphertext, .. } => {
                let shared = self.shared(&e_pk)?;
                let mut plain = Zeroizing::new([0u8; MAX_BINDING_PLAIN]);
                let b = open_binding(&wrap_key(&shared, &e_pk, self.serial()), aad, ciphertext, &mut plain)?;
                let root = binding_root(&shared, &e_pk, self.serial(), generation);
                let replaced = match &self.binding {
                    Some(old) if generation < old.generation => {
                        return Err(err(
                            ErrorCode::TokenAlreadyUsed,
                            "this activation QR code is older than the device's activation",
                        ))
                    }
                    // The same QR code again (the user typed a wrong code): the same digits.
                    Some(old)
                        if generation == old.generation
                            && ct_eq(&old.root[..], &root[..])
                            && old.portal_name.as_str() == b.portal_name
                            && old.user_id.as_str() == b.user_id =>
                    {
                        false
                    }
                    Some(old) if generation == old.generation => {
                        return Err(err(ErrorCode::TokenAlreadyUsed, "this activation QR code was replaced"))
                    }
                    Some(_) => true,
                    None => false,
                };
                let binding =
                    Binding { generation, root, portal_name: Text::of(b.portal_name)?, user_id: Text::of(b.user_id)? };
                let screen = Screen::BindingCode {
                    portal_name: binding.portal_name,
                    user_id: binding.user_id,
                    code: binding_code(&binding.root, bytes),
                    replaced,
                };
                self.binding = Some(binding);
                Ok(screen)
            }
        }
    }

    fn challenge(&self, bytes: &[u8]) -> Result<Screen> {
        let parsed = ChallengeQrRef::parse(bytes)?;
        let b =
            self.binding.as_ref().ok_or(err(ErrorCode::DeviceNotLinked, "this authenticator is not activated yet"))?;
        let (channel_key, answer_key) = binding_keys(&b.root);
        let mut plain = Zeroizing::new([0u8; MAX_QR_BYTES]);
        let n = parsed.open_into(&channel_key[..], &mut plain[..])?;
        let plain = &plain[..n];
        let bad = || err(ErrorCode::MalformedMessage, "the challenge holds values a device must not show");
        let body = match postcard::take_from_bytes::<BodyRef<'_>>(plain) {
            Ok((body, [])) => body,
            _ => return Err(err(ErrorCode::MalformedMessage, "the payload is malformed or truncated")),
        };
        if !ANSWER_DIGITS.contains(&body.digits) {
            return Err(bad());
        }
        let approval = body.approval.shown().ok_or_else(bad)?;
        let hash = challenge_hash(&parsed.nonce, plain);
        let digits = typed_code_digits(&answer_key[..], &hash, body.digits);
        let mut n: u64 = 0;
        for d in &digits[..usize::from(body.digits)] {
            n = n * 10 + u64::from(d - b'0');
        }
        Ok(Screen::Challenge {
            portal_name: b.portal_name,
            user_id: b.user_id,
            approval,
            code: Code::from_number(n, body.digits),
        })
    }
}

/// A challenge body borrowed from the decrypted bytes: the same postcard
/// layout as the owned `ChallengeBody`, read without allocating.
#[derive(Deserialize)]
struct BodyRef<'a> {
    #[allow(dead_code)] // the device has no clock it can trust: the portal judges expiry
    expires_at: u64,
    digits: u8,
    #[serde(borrow)]
    approval: ApprovalRef<'a>,
}

/// `Approval` by reference (variants in the same order).
#[derive(Deserialize)]
enum ApprovalRef<'a> {
    Login,
    Transaction(#[serde(borrow)] TransactionRef<'a>),
    LinkDevice { device_name: &'a str, device_id: &'a str },
}

#[derive(Deserialize)]
struct TransactionRef<'a> {
    amount: Amount,
    currency: &'a str,
    payee: &'a str,
    #[serde(borrow)]
    text: Lines<'a>,
}

/// Up to [`MAX_TEXT_LINES`] strings (a longer list is refused while reading).
struct Lines<'a>([&'a str; MAX_TEXT_LINES], usize);

impl<'de: 'a, 'a> Deserialize<'de> for Lines<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        struct V<'a>(core::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Lines<'a>;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("at most 3 text lines")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> core::result::Result<Lines<'a>, A::Error> {
                let mut lines = Lines([""; MAX_TEXT_LINES], 0);
                while let Some(s) = seq.next_element::<&'de str>()? {
                    if lines.1 == MAX_TEXT_LINES {
                        return Err(serde::de::Error::invalid_length(MAX_TEXT_LINES + 1, &self));
                    }
                    lines.0[lines.1] = s;
                    lines.1 += 1;
                }
                Ok(lines)
            }
        }
        d.deserialize_seq(V(core::marker::PhantomData))
    }
}

impl ApprovalRef<'_> {
    /// The approval to show, if every field passes the rules of
    /// `Approval::validate` and is displayable (the same rules as a phone).
    fn shown(&self) -> Option<ShownApproval> {
        Some(match self {
            ApprovalRef::Login => ShownApproval::Login,
            ApprovalRef::Transaction(t) => {
                if t.amount.check().is_err()
                    || t.currency.len() != 3
                    || !t.currency.bytes().all(|b| b.is_ascii_uppercase())
                    || !name_ok(t.payee, MAX_PAYEE_LEN)
                {
                    return None;
                }
                let mut text = [Text::new("")?; MAX_TEXT_LINES];
                for (slot, line) in text.iter_mut().zip(&t.text.0[..t.text.1]) {
                    if !name_ok(line, MAX_TEXT_LEN) {
                        return None;
                    }
                    *slot = Text::new(line)?;
                }
                ShownApproval::Transaction {
                    amount: t.amount,
                    currency: Text::new(t.currency)?,
                    payee: Text::new(t.payee)?,
                    text,
                    lines: t.text.1 as u8,
                }
            }
            ApprovalRef::LinkDevice { device_name, device_id } => {
                if !name_ok(device_name, MAX_DEVICE_NAME_LEN)
                    || device_id.len() != 16
                    || !device_id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                {
                    return None;
                }
                ShownApproval::LinkDevice { device_name: Text::new(device_name)?, device_id: Text::new(device_id)? }
            }
        })
    }
}
