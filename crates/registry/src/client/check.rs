//! `Client::check_auth`: which credential a registry gets from this client, and whether the
//! registry accepts it — what `ferry-registry auth` reports. Never exposes a secret.

use std::time::{Instant, SystemTime};

use ferry_core::Reference;

use super::Client;
use super::auth::{AuthScheme, TokenKey};
use super::endpoint::pull_scope;
use crate::error::{Error, Result};
use crate::source::CredentialSource;

/// How the registry wants requests authenticated, as learned while checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthKind {
    /// No challenge: anonymous requests are let in.
    Anonymous,
    /// HTTP basic authentication with the credential itself.
    Basic,
    /// Bearer tokens from a token server.
    Bearer,
    /// Not learned (the check failed before the registry said).
    Unknown,
}

/// What [`Client::check_auth`] found. `Debug` prints no secret (none is held).
#[derive(Debug, Clone)]
pub struct AuthCheck {
    /// The registry (the mirror's `host[:port]` when mirrored).
    pub registry: String,
    /// The repository whose pull access was checked.
    pub repository: String,
    /// Where the credential came from; `None` for anonymous access.
    pub source: Option<CredentialSource>,
    /// For anonymous access: where the stores looked and found nothing.
    pub searched: Vec<String>,
    /// When the credential expires, when its source says.
    pub credential_expires_at: Option<SystemTime>,
    /// Whether the registry let the request in (a missing tag still counts: the registry
    /// answered past authentication).
    pub accepted: bool,
    /// The registry's scheme.
    pub scheme: AuthKind,
    /// When the bearer token obtained for the pull scope expires (bearer registries only).
    pub token_expires_at: Option<SystemTime>,
    /// The refusal, naming the source used (when not accepted).
    pub refusal: Option<String>,
}

impl Client {
    /// Ask the registry of `reference` for its manifest (a HEAD) with the credential this
    /// handle would use, and report the credential's source, whether it was accepted, and the
    /// expiry of credential and token. A refusal (401/403) is `Ok` with `accepted: false`;
    /// other failures (network, registry errors) are errors.
    pub async fn check_auth(&self, reference: &Reference) -> Result<AuthCheck> {
        let ep = self.endpoint(reference.registry())?;
        let repository = reference.repository().to_string();
        let (accepted, refusal) = match self.resolve(reference).await {
            Ok(_) => (true, None),
            Err(e @ (Error::Unauthorized { .. } | Error::Denied { .. })) => {
                (false, Some(e.to_string()))
            }
            Err(e @ Error::NotFound { .. }) => {
                tracing::debug!(error = %e, "not found, but past authentication");
                (true, None)
            }
            Err(e) => return Err(e),
        };
        let found = self.credentials(&ep.key).await?;
        let scheme = match self.scheme(&ep.key) {
            None => AuthKind::Unknown,
            Some(AuthScheme::Anonymous) => AuthKind::Anonymous,
            Some(AuthScheme::Basic) => AuthKind::Basic,
            Some(AuthScheme::Bearer { .. }) => AuthKind::Bearer,
        };
        let key = TokenKey::new(&ep.key, &pull_scope(&repository), found.id.clone());
        let token_expires_at = self
            .token_expiry(&key)
            .map(|at| SystemTime::now() + at.saturating_duration_since(Instant::now()));
        Ok(AuthCheck {
            registry: ep.key,
            repository,
            source: found.source,
            searched: found.searched,
            credential_expires_at: found.expires_at,
            accepted,
            scheme,
            token_expires_at,
            refusal,
        })
    }
}

impl Client {
    /// Where the credential this handle uses for `registry` (a reference's registry name)
    /// comes from now; `None` for anonymous access. Asks the stores as a request would.
    pub async fn credential_source(&self, registry: &str) -> Result<Option<CredentialSource>> {
        let ep = self.endpoint(registry)?;
        Ok(self.credentials(&ep.key).await?.source)
    }
}
