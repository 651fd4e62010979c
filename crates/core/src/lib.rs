//! The shared vocabulary of ferry.
//!
//! Every other ferry crate speaks in these types:
//!
//! * [`Reference`] — an image reference parsed and normalized exactly like Docker's
//!   `distribution/reference` (`ubuntu` → `docker.io/library/ubuntu:latest`).
//! * [`Digest`] — a strict `algorithm:hex` content digest (sha256, sha384, sha512) that can
//!   also verify bytes.
//! * [`Platform`] — `os/arch[/variant]`, with the equivalences registries and runtimes use
//!   (`linux/arm64` ≡ `linux/arm64/v8`, `linux/amd64` ≡ `linux/amd64/v1`).
//! * [`exit`] — the exit codes every ferry binary shares (and [`exit::Classify`], how a crate's
//!   error names its code); [`ci`] — CI output formats; [`text`] — short hashes and identities.
//!
//! ```
//! use ferry_core::Reference;
//!
//! let r: Reference = "python:3.12-slim".parse().unwrap();
//! assert_eq!(r.to_string(), "docker.io/library/python:3.12-slim");
//! assert_eq!(r.familiar(), "python:3.12-slim");
//! assert_eq!(r.registry(), "docker.io");
//! assert_eq!(r.repository(), "library/python");
//! ```
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod ci;
pub mod digest;
pub mod duration;
mod error;
pub mod exit;
#[cfg(feature = "git")]
pub mod git;
pub mod platform;
pub mod reference;
pub mod shared;
pub mod sync;
pub mod text;

pub use digest::{Algorithm, Digest};
pub use error::{Error, Result};
pub use platform::Platform;
pub use reference::Reference;
pub use shared::Shared;
pub use text::{Identity, short_hash};
