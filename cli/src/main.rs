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

mod demo;
mod device_cmd;
mod otp_cmd;
mod portal_cmd;
mod secrets;
mod store;
mod util;

#[derive(Parser, Debug)]
#[command(name = "tessera", version, about = "Tessera authentication SDK: OTP tool and portal/device simulators")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One-time passwords: HOTP, TOTP, OCRA and otpauth:// URIs.
    #[command(subcommand)]
    Otp(otp_cmd::OtpCommand),
    /// The reference portal: link offers, device registry.
    #[command(subcommand)]
    Portal(portal_cmd::PortalCommand),
    /// A simulated device (phone app).
    #[command(subcommand)]
    Device(device_cmd::DeviceCommand),
    /// Run every flow end to end on this machine and explain each step.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    // Before anything is created: every file and directory (SQLite's
    // journals included) is readable by its owner only.
    secrets::private_umask();
    let cli = Cli::parse();
    let result: Result<(), TesseraError> = match cli.command {
        Command::Otp(c) => otp_cmd::run(c),
        Command::Portal(c) => portal_cmd::run(c),
        Command::Device(c) => device_cmd::run(c),
        Command::Demo(a) => demo::run(a),
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
