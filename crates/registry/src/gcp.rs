//! Google Artifact Registry and GCR: an OAuth access token, used as the password of
//! `oauth2accesstoken`, kept until shortly before it expires. Where the token comes from
//! follows Google's Application Default Credentials; the binary picks ([`GcpIdentity`]):
//! a credentials file (a service-account key, whose JWT assertion is exchanged at the key's
//! `token_uri`, or gcloud's user credentials), else the GKE/GCE metadata server (GKE Workload
//! Identity answers there).

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use crate::cloud::{CloudProvider, TokenProvider, cloud_source};
use crate::config::CaCertificates;
use crate::credentials::Credential;
use crate::error::{CloudProblem, CredentialProblem, Error, Result};
use crate::source::{CloudLogin, SourcedCredential};

/// The metadata server's usual name (`GCE_METADATA_HOST` overrides it; the binary reads that).
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";

mod key_file;

/// Where Artifact Registry tokens come from, in the order of Google's Application Default
/// Credentials (the binary reads `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's well-known file
/// and `GCE_METADATA_HOST` and picks the first that applies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcpIdentity {
    /// A credentials file: a service-account key (`"type": "service_account"`) or gcloud's
    /// user credentials (`"authorized_user"`). Read again at every login (a mounted Secret is
    /// rotated in place).
    KeyFile(PathBuf),
    /// The metadata server at `host[:port]`.
    MetadataServer(String),
}

/// Artifact Registry's [`TokenProvider`].
#[derive(Debug)]
pub struct Gcp {
    identity: GcpIdentity,
    http: reqwest::Client,
}

impl Gcp {
    /// Tokens from the metadata server at `metadata_host` (`host[:port]`).
    pub fn new(metadata_host: impl Into<String>) -> Result<Self> {
        Self::with_identity(
            GcpIdentity::MetadataServer(metadata_host.into()),
            &CaCertificates::default(),
        )
    }

    /// Tokens for `identity`; a credentials file's token endpoint (HTTPS) is trusted when the
    /// system's roots or `ca` (the client's `--ca-file`) vouch for it.
    pub fn with_identity(identity: GcpIdentity, ca: &CaCertificates) -> Result<Self> {
        let http = match identity {
            // The metadata server speaks plain HTTP (`http://HOST/computeMetadata/…`, the
            // only scheme Google's libraries use for it): no TLS roots to load (reading and
            // parsing the system's CA bundle is a fifth of a short ferry process, and this
            // client is built in every process that has GCP enabled, on GCP or not).
            GcpIdentity::MetadataServer(_) => reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .no_proxy()
                .tls_certs_only(Vec::<reqwest::Certificate>::new()),
            // A key file's token_uri is Google's HTTPS endpoint (or what a proxy puts there).
            GcpIdentity::KeyFile(_) => {
                ca.trusted_by(reqwest::Client::builder().timeout(Duration::from_secs(30)))
            }
        }
        .build()
        .map_err(|e| Error::Config(crate::ConfigProblem::Http(e)))?;
        Ok(Gcp { identity, http })
    }

    async fn token(&self) -> std::result::Result<Option<SourcedCredential>, CloudProblem> {
        match &self.identity {
            GcpIdentity::MetadataServer(host) => self.metadata_token(host).await,
            GcpIdentity::KeyFile(path) => key_file::token(&self.http, path).await.map(Some),
        }
    }

    async fn metadata_token(
        &self,
        metadata_host: &str,
    ) -> std::result::Result<Option<SourcedCredential>, CloudProblem> {
        let url = format!(
            "http://{metadata_host}/computeMetadata/v1/instance/service-accounts/default/token"
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
        let t: AccessToken =
            serde_json::from_slice(&body).map_err(|source| CloudProblem::BadAnswer {
                url: url.clone(),
                source,
            })?;
        let how = CloudLogin::GcpMetadata {
            host: metadata_host.to_string(),
        };
        t.into_credential(&url, SystemTime::now(), how).map(Some)
    }
}

/// An OAuth access token as Google's token endpoints and the metadata server answer it.
#[derive(serde::Deserialize)]
struct AccessToken {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl AccessToken {
    /// The registry credential (`oauth2accesstoken`) of a token obtained at `fetched` from `url`.
    fn into_credential(
        self,
        url: &str,
        fetched: SystemTime,
        how: CloudLogin,
    ) -> std::result::Result<SourcedCredential, CloudProblem> {
        if self.access_token.is_empty() {
            return Err(CloudProblem::Incomplete {
                from: url.to_string(),
                missing: "empty access_token",
            });
        }
        let expires_at = self
            .expires_in
            .map(|s| fetched + Duration::from_secs(s.min(86_400)));
        Ok(SourcedCredential {
            source: cloud_source(CloudProvider::Gcp, how),
            secret: Credential::Basic {
                username: "oauth2accesstoken".into(),
                password: self.access_token,
            },
            expires_at,
        })
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
