//! Azure Container Registry with Azure Workload Identity: the federated token file (as the
//! AKS webhook mounts it) → an Entra ID access token (client-credentials grant with a JWT
//! assertion) → the registry's `/oauth2/exchange` refresh token, used as an identity token
//! (the registry's token server then gives access tokens per scope). Kept until three
//! quarters of the Entra token's lifetime have passed.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use crate::cloud::{CloudProvider, TokenProvider, cloud_source, post_form};
use crate::config::CaCertificates;
use crate::credentials::Credential;
use crate::error::{CloudProblem, CredentialProblem, Error, Result};
use crate::source::{CloudLogin, SourcedCredential};

/// Entra ID's usual authority (`AZURE_AUTHORITY_HOST` overrides it; the binary reads that).
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com/";

/// The audience ACR accepts in `/oauth2/exchange`.
const ACR_SCOPE: &str = "https://containerregistry.azure.net/.default";

/// What Azure Workload Identity provides (the binary reads it from `AZURE_*`).
#[derive(Debug, Clone)]
pub struct WorkloadIdentity {
    /// `AZURE_FEDERATED_TOKEN_FILE`: read again for every login (it is rotated).
    pub token_file: PathBuf,
    /// `AZURE_CLIENT_ID`.
    pub client_id: String,
    /// `AZURE_TENANT_ID`.
    pub tenant_id: String,
    /// `AZURE_AUTHORITY_HOST`, else [`DEFAULT_AUTHORITY_HOST`].
    pub authority_host: String,
}

/// ACR's [`TokenProvider`].
#[derive(Debug)]
pub struct Azure {
    identity: WorkloadIdentity,
    /// Registry → base URL used instead of `https://REGISTRY` (the client's `--mirror`s).
    mirrors: Vec<(String, String)>,
    http: reqwest::Client,
}

#[derive(serde::Deserialize)]
struct EntraToken {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(serde::Deserialize)]
struct Exchanged {
    refresh_token: String,
}

impl Azure {
    /// Logins as `identity`; the exchange goes to a registry's mirror when it has one. Entra
    /// and the registry are trusted when the system's roots or `ca` (the client's `--ca-file`)
    /// vouch for them.
    pub fn new(
        identity: WorkloadIdentity,
        mirrors: Vec<(String, String)>,
        ca: &CaCertificates,
    ) -> Result<Self> {
        let http = ca
            .trusted_by(reqwest::Client::builder().timeout(Duration::from_secs(30)))
            .build()
            .map_err(|e| Error::Config(crate::ConfigProblem::Http(e)))?;
        Ok(Azure {
            identity,
            mirrors,
            http,
        })
    }

    async fn token(&self, registry: &str) -> std::result::Result<SourcedCredential, CloudProblem> {
        let id = &self.identity;
        let assertion =
            std::fs::read_to_string(&id.token_file).map_err(|source| CloudProblem::TokenFile {
                path: id.token_file.clone(),
                source,
            })?;
        let entra_url = format!(
            "{}/{}/oauth2/v2.0/token",
            id.authority_host.trim_end_matches('/'),
            id.tenant_id
        );
        let entra: EntraToken = post_form(
            &self.http,
            &entra_url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id.client_id),
                ("scope", ACR_SCOPE),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.trim()),
            ],
        )
        .await?;
        let fetched = SystemTime::now();
        let base = self
            .mirrors
            .iter()
            .find(|(r, _)| r == registry)
            .map_or_else(|| format!("https://{registry}"), |(_, url)| url.clone());
        let exchange_url = format!("{}/oauth2/exchange", base.trim_end_matches('/'));
        let exchanged: Exchanged = post_form(
            &self.http,
            &exchange_url,
            &[
                ("grant_type", "access_token"),
                ("service", registry),
                ("tenant", &id.tenant_id),
                ("access_token", &entra.access_token),
            ],
        )
        .await?;
        // ACR refresh tokens last three hours; the Entra token's lifetime bounds ours.
        let life = Duration::from_secs(entra.expires_in.unwrap_or(3600).min(3 * 3600));
        Ok(SourcedCredential {
            source: cloud_source(
                CloudProvider::Azure,
                CloudLogin::AcrWorkloadIdentity {
                    client_id: id.client_id.clone(),
                    tenant_id: id.tenant_id.clone(),
                    exchange_url: exchange_url.clone(),
                },
            ),
            secret: Credential::IdentityToken(exchanged.refresh_token),
            expires_at: Some(fetched + life),
        })
    }
}

impl TokenProvider for Azure {
    fn provider(&self) -> CloudProvider {
        CloudProvider::Azure
    }

    fn fetch<'a>(&'a self, registry: &'a str) -> BoxFuture<'a, Result<Option<SourcedCredential>>> {
        Box::pin(async move {
            self.token(registry)
                .await
                .map(Some)
                .map_err(|problem| Error::Credentials {
                    registry: registry.to_string(),
                    problem: CredentialProblem::Cloud {
                        provider: CloudProvider::Azure,
                        problem,
                    },
                })
        })
    }
}
