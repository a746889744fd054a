#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod activation;
pub mod challenge;
pub mod crypto;
pub mod encoding;
pub mod error;
pub mod host;
pub mod limits;
pub mod link;
pub mod otp;
pub mod provider;
pub mod secret;
pub mod time;
pub mod wire;

pub use error::{Error, ErrorCode, Result};
pub use secret::SecretBytes;
