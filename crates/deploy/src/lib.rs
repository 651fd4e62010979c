//! `ferry-deploy`: redeploy only the workloads that opted in, pinned to the exact digest.
//!
//! * [`policy`] — pure decisions (no IO): annotations (`ferry.dev/policy`, `ferry.dev/containers`,
//!   `ferry.dev/platforms`), digest and semver policies, baselines, quarantine, Argo CD detection.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod cluster;
pub mod controller;
mod error;
pub mod forge;
pub mod gitops;
pub mod lease;
pub mod metrics;
pub mod server;
pub mod yamledit;

pub use error::{ConfigProblem, Error, Result};
/// The pure decision core (its own crate, re-exported under its old paths).
pub use ferry_policy as policy;
pub use ferry_policy::{approval, tags};
pub mod helm;
pub mod notify;
pub mod status;
pub mod webhook;
