//! `tessera`: OATH OTP tool (like `oathtool`), and the portal and device
//! simulators that run the whole Tessera system on one machine.

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

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
mod input;
mod otp_cmd;
mod portal_cmd;
mod qr;
mod rfc3339;
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

/// How to run it: secrets, times, output, exit statuses (`tessera --help`).
const OPERATORS: &str = "\
Secrets (--secret, --secret-hex, --key, --password, --passcode, --activation-code, --input, --code of
recovery-code, the URI of `otp uri`, --db): VALUE, or - (one line of stdin), @FILE (the file's contents)
or env:NAME (the environment variable NAME), a trailing newline dropped; the last three keep the secret
out of `ps` and shell history. An unreadable source is error[INVALID_INPUT] naming the option, never the value.
Times (--now, --time): Unix seconds or RFC 3339 (2026-11-30T12:00:00Z, 2026-11-30T14:00:00+02:00).
Output: --json prints one JSON document on stdout. Errors print error[CODE]: message on stderr (codes:
docs/ERRORS.md); with --json a second line follows there: {\"error\": {\"code\", \"message\"}} (and a
document a command prints on failure, such as a verdict, carries that \"error\" too).
Exit status: 0 success; 1 an error or a refused code (error[CODE], e.g. OTP_MISMATCH when a typed code
does not match); 2 a usage error (unknown option, missing value: clap's message; with --json then
{\"error\": {\"code\": \"USAGE\", …}} on stderr) or a bad TESSERA_CRYPTO.
Shell completions: tessera completions bash|zsh|fish|elvish|powershell; manual page: tessera man.";

#[derive(Parser, Debug)]
#[command(
    name = "tessera",
    version,
    about = "Tessera authentication SDK: OTP tool and portal/device simulators",
    after_help = format!("{FLOWS}\n\n{OPERATORS}")
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
    /// Print a shell completion script: `source <(tessera completions bash)`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `tessera man | man -l -`.
    Man {
        /// The page of this subcommand (e.g. `otp totp`) instead of the top-level one.
        command: Vec<String>,
        /// Write every page instead (`tessera.1`, `tessera-otp.1`,
        /// `tessera-otp-totp.1`, …) into this existing directory, e.g. for a package.
        #[arg(long, value_name = "DIR", conflicts_with = "command")]
        dir: Option<std::path::PathBuf>,
    },
}

/// Whether the command line asks for `--json` (read before parsing, for
/// usage errors): an argument `--json` before any `--`.
fn argv_wants_json() -> bool {
    std::env::args_os().skip(1).take_while(|a| a != "--").any(|a| a == "--json")
}

/// Whether the parsed command (its innermost subcommand) has `--json` set.
fn parsed_wants_json(m: &clap::ArgMatches) -> bool {
    let mut m = m;
    while let Some((_, sub)) = m.subcommand() {
        m = sub;
    }
    matches!(m.try_get_one::<bool>("json"), Ok(Some(true)))
}

fn main() -> ExitCode {
    // Before anything is created: every file and directory (SQLite's
    // journals included) is readable by its owner only.
    secrets::private_umask();
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return usage_error(e),
    };
    let json = parsed_wants_json(&matches);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    // AWS-LC for the portal's public-key work, unless TESSERA_CRYPTO names
    // another provider (`rustcrypto`: the scenario runner checks both give
    // the same bytes).
    if let Err(e) = tessera_crypto_aws_lc::install_from_env(&tessera_crypto_aws_lc::AWS_LC) {
        let e = TesseraError::new(ErrorCode::InvalidInput, e.to_string());
        report(&e, json);
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
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "tessera", &mut std::io::stdout());
            Ok(())
        }
        Command::Man { dir: Some(dir), .. } => clap_mangen::generate_to(Cli::command(), &dir)
            .map_err(|e| cli_err(ErrorCode::Storage, format!("--dir {}: {e}", dir.display()))),
        Command::Man { command, dir: None } => man(&command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e, json);
            ExitCode::from(1)
        }
    }
}

/// `error[CODE]: message` on stderr; with `--json` a second line there,
/// `{"error": {"code", "message"}}`. Stdout keeps only the command's own
/// document (a tool reading `--json` output sees no new document on
/// failure; a failure document such as a verdict carries `"error"` too).
fn report(e: &TesseraError, json: bool) {
    eprintln!("error[{}]: {}", e.code().as_str(), e.detail());
    if json {
        eprintln!("{}", serde_json::json!({ "error": util::error_json(e) }));
    }
}

/// clap's message and exit status (2 for a usage error, 0 for `--help`
/// and `--version`); with `--json`, a usage error ends with the line
/// `{"error": {"code": "USAGE", "message"}}` on stderr.
fn usage_error(e: clap::Error) -> ExitCode {
    if !(e.use_stderr() && argv_wants_json()) {
        e.exit()
    }
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned();
    let _ = e.print();
    eprintln!("{}", serde_json::json!({"error": {"code": "USAGE", "message": first}}));
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

/// `tessera man [SUBCOMMAND…]`: the manual page, from the clap definitions.
fn man(path: &[String]) -> Result<(), TesseraError> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut name = String::from("tessera");
    for word in path {
        cmd = cmd.find_subcommand(word).cloned().ok_or_else(|| {
            cli_err(ErrorCode::InvalidInput, format!("`{name}` has no subcommand `{word}` (see `{name} --help`)"))
        })?;
        name.push('-');
        name.push_str(word);
    }
    let cmd = cmd.name(name);
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut page)
        .map_err(|e| cli_err(ErrorCode::Internal, format!("manual page: {e}")))?;
    out!("{}", String::from_utf8_lossy(&page).trim_end());
    Ok(())
}

/// Errors of the CLI's own (arguments, files, storage); every protocol
/// error comes from tessera-host.
pub(crate) fn cli_err(code: ErrorCode, detail: impl Into<String>) -> TesseraError {
    TesseraError::new(code, detail)
}
