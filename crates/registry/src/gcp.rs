//! Google Artifact Registry and GCR: an access token of the workload's service account from
//! the GKE/GCE metadata server (GKE Workload Identity answers there), used as the password of
//! `oauth2accesstoken`, kept until shortly before it expires.
//!
//! Not supported yet: service-account key files (`GOOGLE_APPLICATION_CREDENTIALS`).

use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use crate::cloud::{CloudProvider, TokenProvider, cloud_source};
use crate::credentials::Credential;
use crate::error::{CloudProblem, CredentialProblem, Error, Result};
use crate::source::SourcedCredential;

/// The metadata server's usual name (`GCE_METADATA_HOST` overrides it; the binary reads that).
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";

/// Artifact Registry's [`TokenProvider`].
#[derive(Debug)]
pub struct Gcp {
    metadata_host: String,
    http: reqwest::Client,
}

impl Gcp {
    /// Tokens from the metadata server at `metadata_host` (`host[:port]`).
    pub fn new(metadata_host: impl Into<String>) -> Result<Self> {
        // The metadata server speaks plain HTTP: no TLS roots to load (reading and parsing the
        // system's CA bundle is a fifth of a short ferry process, and this client is built in
        // every process that has GCP enabled, on GCP or not).
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .tls_certs_only(Vec::<reqwest::Certificate>::new())
            .build()
            .map_err(|e| Error::Config(crate::ConfigProblem::Http(e)))?;
        Ok(Gcp {
            metadata_host: metadata_host.into(),
            http,
        })
    }

    async fn token(&self) -> std::result::Result<Option<SourcedCredential>, CloudProblem> {
        let url = format!(
            "http://{}/computeMetadata/v1/instance/service-accounts/default/token",
            self.metadata_host
        );
        let reply = self
            .http
            .get(&url)
            .header("Metadata-Flavor", "Google")
            .send()
            .await;
        let reply = match reply {
            Ok(r) => r,
            // No metadata server here (DNS, refused, silent): not on GCP, anonymous.
            Err(e) if e.is_connect() || e.is_timeout() => {
                tracing::debug!(url, error = %e, "no GCP metadata server");
                return Ok(None);
            }
            Err(source) => return Err(CloudProblem::Unreachable { url, source }),
        };
        let status = reply.status();
        let body = reply
            .bytes()
            .await
            .map_err(|source| CloudProblem::Unreachable {
                url: url.clone(),
                source,
            })?;
        if !status.is_success() {
            let answer: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Err(CloudProblem::Refused {
                url,
                status: status.as_u16(),
                answer,
            });
        }
        #[derive(serde::Deserialize)]
        struct Token {
            access_token: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let t: Token = serde_json::from_slice(&body).map_err(|source| CloudProblem::BadAnswer {
            url: url.clone(),
            source,
        })?;
        if t.access_token.is_empty() {
            return Err(CloudProblem::Incomplete {
                from: url,
                missing: "empty access_token",
            });
        }
        let expires_at = t
            .expires_in
            .map(|s| SystemTime::now() + Duration::from_secs(s.min(86_400)));
        Ok(Some(SourcedCredential {
            source: cloud_source(
                CloudProvider::Gcp,
                format!(
                    "access token from the metadata server {}",
                    self.metadata_host
                ),
            ),
            secret: Credential::Basic {
                username: "oauth2accesstoken".into(),
                password: t.access_token,
            },
            expires_at,
        }))
    }
}

impl TokenProvider for Gcp {
    fn provider(&self) -> CloudProvider {
        CloudProvider::Gcp
    }

    fn fetch<'a>(&'a self, registry: &'a str) -> BoxFuture<'a, Result<Option<SourcedCredential>>> {
        Box::pin(async move {
            self.token().await.map_err(|problem| Error::Credentials {
                registry: registry.to_string(),
                problem: CredentialProblem::Cloud {
                    provider: CloudProvider::Gcp,
                    problem,
                },
            })
        })
    }
}
