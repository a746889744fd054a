//! `tessera otp …`: an `oathtool`-like front end to the OTP engine.

use crate::cli_err;
use crate::util::{now_or, random, render_qr};
use clap::{Args, Subcommand};
use qrcode::EcLevel;
use tessera_core::encoding::{base32_decode, base32_encode, hex_decode, hex_decode_as};
use tessera_core::otp::{hotp, Algorithm, KeyUri, OcraInput, OcraSuite, OtpKind, SecretPolicy, Totp};
use tessera_core::{Error, ErrorCode, SecretBytes};

#[derive(Subcommand, Debug)]
pub enum OtpCommand {
    /// HOTP (RFC 4226) code for a counter.
    Hotp {
        #[command(flatten)]
        secret: SecretArgs,
        /// Counter value.
        #[arg(long)]
        counter: u64,
        /// Digits (6–10).
        #[arg(long, default_value_t = 6)]
        digits: u8,
        /// sha1, sha256 or sha512.
        #[arg(long, default_value = "sha1")]
        algorithm: String,
    },
    /// TOTP (RFC 6238) code at a time.
    Totp {
        #[command(flatten)]
        secret: SecretArgs,
        /// Unix seconds (default: now).
        #[arg(long)]
        time: Option<u64>,
        /// Period in seconds.
        #[arg(long, default_value_t = 30)]
        period: u64,
        /// Digits (6–10).
        #[arg(long, default_value_t = 6)]
        digits: u8,
        /// sha1, sha256 or sha512.
        #[arg(long, default_value = "sha1")]
        algorithm: String,
    },
    /// OCRA (RFC 6287) response.
    Ocra {
        /// Suite, e.g. OCRA-1:HOTP-SHA1-6:QN08.
        #[arg(long)]
        suite: String,
        /// Key in hex.
        #[arg(long)]
        key: String,
        /// Counter (suites with C).
        #[arg(long)]
        counter: Option<u64>,
        /// Question as the suite says: decimal (QN), hex (QH) or text (QA).
        #[arg(long)]
        question: Option<String>,
        /// PIN in clear (suites with P).
        #[arg(long)]
        password: Option<String>,
        /// Session information in hex (suites with S).
        #[arg(long)]
        session: Option<String>,
        /// Unix seconds (suites with T).
        #[arg(long)]
        time: Option<u64>,
    },
    /// Print the current code of an otpauth:// URI.
    Uri {
        /// The otpauth:// URI.
        uri: String,
        /// Unix seconds (default: now).
        #[arg(long)]
        time: Option<u64>,
        /// Accept secrets shorter than 128 bits.
        #[arg(long)]
        allow_short_secret: bool,
    },
    /// Make a new secret: print its otpauth:// URI and show it as a QR code.
    New {
        /// Issuer (service) name.
        #[arg(long)]
        issuer: String,
        /// Account name.
        #[arg(long)]
        account: String,
        /// sha1, sha256 or sha512.
        #[arg(long, default_value = "sha1")]
        algorithm: String,
        /// Digits (6–10).
        #[arg(long, default_value_t = 6)]
        digits: u8,
        /// Period in seconds.
        #[arg(long, default_value_t = 30)]
        period: u64,
        /// Do not draw the QR code.
        #[arg(long)]
        no_qr: bool,
    },
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct SecretArgs {
    /// Secret in base32 (spaces, lower case and padding accepted).
    #[arg(long)]
    secret: Option<String>,
    /// Secret in hex.
    #[arg(long)]
    secret_hex: Option<String>,
}

impl SecretArgs {
    fn decode(&self) -> Result<SecretBytes, Error> {
        let bytes = match (&self.secret, &self.secret_hex) {
            (Some(b32), _) => base32_decode(b32)?,
            (None, Some(h)) => hex_decode(h)?,
            (None, None) => return Err(cli_err(ErrorCode::InvalidSecret, "give --secret or --secret-hex")),
        };
        if bytes.is_empty() {
            return Err(cli_err(ErrorCode::InvalidSecret, "the secret is empty"));
        }
        Ok(SecretBytes::new(bytes))
    }
}

pub fn run(cmd: OtpCommand) -> Result<(), Error> {
    match cmd {
        OtpCommand::Hotp { secret, counter, digits, algorithm } => {
            let key = secret.decode()?;
            out!("{}", hotp(key.expose(), counter, digits, Algorithm::parse(&algorithm)?)?);
        }
        OtpCommand::Totp { secret, time, period, digits, algorithm } => {
            let key = secret.decode()?;
            let t = Totp::new(key.expose().to_vec(), Algorithm::parse(&algorithm)?, digits, period, 0)?;
            out!("{}", t.generate(now_or(time)?)?);
        }
        OtpCommand::Ocra { suite, key, counter, question, password, session, time } => {
            let suite = OcraSuite::parse(&suite)?;
            let key = SecretBytes::new(hex_decode(&key)?);
            let session = session.map(|s| hex_decode_as(&s, ErrorCode::InvalidOcraInput)).transpose()?;
            let input = OcraInput {
                counter,
                question: question.as_deref(),
                password: password.as_deref(),
                password_hash: None,
                session: session.as_deref(),
                time,
            };
            out!("{}", suite.compute(key.expose(), &input)?);
        }
        OtpCommand::Uri { uri, time, allow_short_secret } => {
            let policy = if allow_short_secret { SecretPolicy::AllowShort } else { SecretPolicy::Strict };
            let k = KeyUri::parse(&uri, policy)?;
            out!("{}", k.generate(now_or(time)?)?);
        }
        OtpCommand::New { issuer, account, algorithm, digits, period, no_qr } => {
            let secret = random::<20>()?;
            let k = KeyUri {
                kind: OtpKind::Totp { period },
                issuer: Some(issuer),
                account,
                secret: SecretBytes::from_slice(&secret),
                algorithm: Algorithm::parse(&algorithm)?,
                digits,
            };
            k.totp()?; // validates digits and period
            let uri = k.to_uri();
            out!("{uri}");
            if !no_qr {
                eprintln!("secret (base32): {}", base32_encode(&secret));
                out!("{}", render_qr(&uri, EcLevel::M)?);
            }
        }
    }
    Ok(())
}
