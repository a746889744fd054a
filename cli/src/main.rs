//! `tessera`: OATH OTP tool (like `oathtool`), and the portal and device
//! simulators that run the whole Tessera system on one machine.

use clap::{Parser, Subcommand};

/// `println!` for command output, except that a closed pipe (`tessera … |
/// head -1`) ends the program quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}
use std::process::ExitCode;
use tessera_host::{ErrorCode, TesseraError};

mod activation_cmd;
mod bench;
mod demo;
mod device_cmd;
mod http_client;
mod otp_cmd;
mod portal_cmd;
mod secrets;
mod serve;
mod service;
mod store;
mod token_cmd;
mod util;

/// The flows as command sequences (`tessera help`, `tessera help portal`).
const FLOWS: &str = "\
Flows (each command prints what the next one takes; --dir P is the portal, D a device):
  Link a phone by QR code (flow 1):
    portal link-offer --account A      device link --qr QR --name N --passcode C
    portal link-accept --request REQ   device link-finish --response ANS   portal link-confirm --account A --code CODE
  Log in or approve a payment (flow 4):
    portal challenge --account A [--amount 125.50 --currency EUR --payee NAME [--text LINE]]   (QR, then id)
    device show --qr QR                device answer --qr QR --passcode C [--signed]
    portal verify --challenge ID --answer CODE        (5 wrong answers lock: portal unlock-device --device ID)
  Link a new device from an existing authenticator (flow 2, no logged-in computer):
    portal offer-new-device --account A               the offer text for the new device
    device link --dir NEW --qr OFFER …, portal link-accept, device link-finish --dir NEW   (no check code typed)
    portal link-challenge --device NEWID              the QR the new device shows (line 1) and its id (line 2)
    device show / device answer --dir OLD --qr QR     the existing authenticator approves, shows a code
    portal vouch --device NEWID --challenge ID --code CODE    the code, typed into the new device, links it
  Activate an offline authenticator (flow 3; --dir T is the authenticator, a QR reader without network):
    token new --dir T --serial S --export FILE         the maker: a new device, its record appended to FILE
    portal import-devices --file FILE                  the portal imports the file (all or nothing)
    portal order --account A --activation-code CODE [--serial S]   the letter: user ID, initial password; serial
    portal activation-start --user-id U                the activation id, its step and the step's QR code
    token scan --dir T --qr QR                         the digits to type (and what a challenge approves)
    portal activation-next --id ID --input VALUE       one call per step: device_code, activation_code,
        binding_code, serial, test_otp, initial_password, new_password, done (prints the recovery codes once)
    portal activation-status --id ID                   the step and its QR code again
    portal activation-settings [--hash-iterations N] [--usable-after SECS] …   how activations run
    portal password-check --account A --password X, portal recovery-code --account A --code X
    The device is usable after the delay (default 4 hours): before, challenges are DEVICE_NOT_YET_USABLE.
  Time-based codes without a QR code: device totp --passcode C, portal verify-totp --account A --device ID --code X
  The portal as an HTTP JSON service (docs/openapi.yaml; a test page at / on loopback):
    serve --dir P --listen 127.0.0.1:8080 [--db sqlite:PATH | --db postgres://…]
    serve … --auth-token-file F: host routes need Authorization: Bearer (required off loopback)
    device link --qr QR … --server URL, device status-request --server URL, device answer … --server URL";

#[derive(Parser, Debug)]
#[command(
    name = "tessera",
    version,
    about = "Tessera authentication SDK: OTP tool and portal/device simulators",
    after_help = FLOWS
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One-time passwords: HOTP, TOTP, OCRA and otpauth:// URIs.
    #[command(subcommand)]
    Otp(otp_cmd::OtpCommand),
    /// The reference portal: link offers, device registry, challenges, activations.
    #[command(subcommand, after_help = FLOWS)]
    Portal(portal_cmd::PortalCommand),
    /// A simulated device (phone app).
    #[command(subcommand, after_help = FLOWS)]
    Device(device_cmd::DeviceCommand),
    /// A simulated offline authenticator (flow 3: QR reader, no network).
    #[command(subcommand, after_help = FLOWS)]
    Token(token_cmd::TokenCommand),
    /// Run every flow end to end on this machine and explain each step.
    Demo(demo::DemoArgs),
    /// The portal as an HTTP JSON service (docs/openapi.yaml), with a demo page.
    Serve(serve::ServeArgs),
    /// Load benchmark: N `tessera serve` processes on SQLite or PostgreSQL,
    /// link accepts and TOTP verifications from concurrent clients.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    // Before anything is created: every file and directory (SQLite's
    // journals included) is readable by its owner only.
    secrets::private_umask();
    let cli = Cli::parse();
    // AWS-LC for the portal's public-key work, unless TESSERA_CRYPTO names
    // another provider (`rustcrypto`: the scenario runner checks both give
    // the same bytes).
    if let Err(e) = tessera_crypto_aws_lc::install_from_env(&tessera_crypto_aws_lc::AWS_LC) {
        eprintln!("error[{}]: {e}", ErrorCode::InvalidInput.as_str());
        return ExitCode::from(2);
    }
    let result: Result<(), TesseraError> = match cli.command {
        Command::Otp(c) => otp_cmd::run(c),
        Command::Portal(c) => portal_cmd::run(c),
        Command::Device(c) => device_cmd::run(c),
        Command::Token(c) => token_cmd::run(c),
        Command::Demo(a) => demo::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Bench(a) => bench::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error[{}]: {}", e.code().as_str(), e.detail());
            ExitCode::from(1)
        }
    }
}

/// Errors of the CLI's own (arguments, files, storage); every protocol
/// error comes from tessera-host.
pub(crate) fn cli_err(code: ErrorCode, detail: impl Into<String>) -> TesseraError {
    TesseraError::new(code, detail)
}
