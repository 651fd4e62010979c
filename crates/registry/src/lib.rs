//! `ferry-registry`: an OCI distribution client that gets the details right.
//!
//! * [`Client`] — built from a plain [`ClientConfig`], cheap to clone, async. It resolves tags
//!   to digests with one HEAD (GET + hashing when a registry omits `Docker-Content-Digest`),
//!   inspects multi-arch indexes (attestations kept apart from platforms), lists tags across
//!   `Link` pages, waits for images, and pushes blobs and manifests.
//! * Authentication: anonymous, basic and bearer-token challenges, tokens cached per registry,
//!   scope and credential; credentials from Docker's `config.json` via [`DockerConfig`]
//!   (`auths`, `credHelpers`, `credsStore`) or any [`CredentialStore`].
//! * One client, many credentials: [`Client::with_credentials`] gives a cheap handle that asks
//!   another store first (a workload's pull secrets) while sharing connections, auth probes,
//!   per-host limits and the token cache — a token is only ever sent with the credential it
//!   was obtained with.
//! * Resilience: one retry loop for every request, token requests included: jittered retries
//!   for connection errors, timeouts, 5xx and 408; 429 honouring `Retry-After` within a bounded
//!   budget; a per-request timeout that covers the body; bounded per-host concurrency; every
//!   body capped and hashed against the digest asked for. Numbers from servers (token
//!   lifetimes, `Retry-After`, rate-limit windows, sizes, page and child counts) are clamped or
//!   checked: no server answer can make the client panic.
//!
//! The library never prints, never exits and never reads environment variables.
//!
//! ```no_run
//! # async fn demo() -> ferry_registry::Result<()> {
//! use std::sync::Arc;
//! use ferry_registry::{Client, ClientConfig, DockerConfig};
//!
//! let creds = DockerConfig::load_dir(std::path::Path::new("/root/.docker"))?;
//! let client = Client::new(ClientConfig { credentials: Arc::new(creds), ..Default::default() })?;
//! let image = "docker.io/acme/etl:latest".parse()?;
//! let check = client
//!     .verify(&image, &ferry_core::Platform::parse_list("linux/amd64,linux/arm64")?)
//!     .await?;
//! assert!(check.complete(), "missing: {:?}", check.missing);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod azure;
pub mod challenge;
mod client;
pub mod cloud;
pub mod config;
mod config_file;
pub mod credentials;
mod detail;
pub mod ecr;
mod error;
pub mod gcp;
pub mod jwt;
pub mod manifest;
mod problem;
pub mod promote;
pub mod ratelimit;
pub mod revision;
pub mod signature;
pub mod source;

pub use client::check::{AuthCheck, AuthKind};
pub use client::{
    Client, CopyOutcome, DOCKER_HUB_API_HOST, NotReady, Referrer, ReferrersSource, TagsOptions,
    WaitOutcome, referrers_tag,
};
pub use cloud::{CloudCredentials, CloudProvider, TokenProvider};
pub use config::{CaCertificates, ClientConfig, RetryPolicy};
pub use config_file::DockerConfigFile;
pub use credentials::{
    Anonymous, ChainCredentials, Credential, CredentialStore, DockerConfig, StaticCredentials,
};
pub use detail::{CredentialsUsed, Refusal, RegistryErrorItem, RegistryWords};
pub use error::{
    AwsOperation, CloudProblem, ConfigProblem, CredentialProblem, EntryProblem, Error,
    KeyFileProblem, Result,
};
pub use manifest::{
    Attestation, FetchedManifest, ImageConfigSummary, Inspection, PlatformCheck, PlatformManifest,
    Resolved,
};
pub use problem::{ChallengeProblem, InvalidProblem, KeyProblem};
pub use ratelimit::RateLimit;
pub use source::{CloudLogin, CredentialSource, DEFAULT_CREDENTIAL_TTL, SourcedCredential};
