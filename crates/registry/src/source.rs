//! Where a credential came from and when it stops being good: what `ferry-registry auth`
//! reports and what every 401/403 error names. Never holds or prints a secret itself.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::credentials::Credential;

/// How long a credential helper's answer is used before the helper is asked again, unless the
/// caller says otherwise (`--credential-ttl`).
pub const DEFAULT_CREDENTIAL_TTL: Duration = Duration::from_secs(600);

/// Where a credential came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CredentialSource {
    /// An `auths` entry of a Docker config (a file on disk, or a pull secret's content).
    ConfigFile {
        /// The file, or what the configuration came from (`secret NS/NAME`).
        origin: String,
        /// The `auths` key that matched.
        key: String,
    },
    /// A `docker-credential-<name>` helper (`credHelpers` or `credsStore`).
    Helper {
        /// The helper's name (`ecr-login` for `docker-credential-ecr-login`).
        name: String,
        /// The config file that named it.
        origin: String,
    },
    /// A cloud provider's built-in login (ECR, Artifact Registry, ACR).
    Cloud {
        /// The cloud.
        provider: crate::cloud::CloudProvider,
        /// How the credential was obtained (`ECR GetAuthorizationToken in eu-west-1`).
        how: Box<CloudLogin>,
    },
    /// Credentials a program handed to the client directly.
    Static,
    /// A [`CredentialStore`](crate::CredentialStore) that does not say where its answer came from.
    Unnamed,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::ConfigFile { origin, key } => {
                write!(f, "{origin} (auths key {key:?})")
            }
            CredentialSource::Helper { name, origin } => {
                write!(
                    f,
                    "credential helper docker-credential-{name} (named in {origin})"
                )
            }
            CredentialSource::Cloud { provider, how } => {
                write!(f, "{provider} cloud credentials ({how})")
            }
            CredentialSource::Static => f.write_str("credentials given by the program"),
            CredentialSource::Unnamed => f.write_str("a credential store"),
        }
    }
}

/// How a cloud login obtained its credential ([`CredentialSource::Cloud`]); serialized as its
/// text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloudLogin {
    /// ECR's `GetAuthorizationToken`.
    EcrToken {
        /// The AWS region.
        region: String,
    },
    /// An access token from the GKE metadata server.
    GcpMetadata {
        /// The metadata server's host.
        host: String,
    },
    /// An access token of a service account, from its key file.
    GcpServiceAccount {
        /// The account's `client_email`.
        email: String,
        /// The key file.
        key_file: PathBuf,
    },
    /// An access token of gcloud's user credentials (`authorized_user`).
    GcpUser {
        /// The OAuth client id.
        client_id: String,
        /// The credentials file.
        file: PathBuf,
    },
    /// Azure workload identity exchanged for an ACR refresh token.
    AcrWorkloadIdentity {
        /// `AZURE_CLIENT_ID`.
        client_id: String,
        /// `AZURE_TENANT_ID`.
        tenant_id: String,
        /// The registry's `/oauth2/exchange` URL.
        exchange_url: String,
    },
}

impl fmt::Display for CloudLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloudLogin::EcrToken { region } => write!(f, "ECR GetAuthorizationToken in {region}"),
            CloudLogin::GcpMetadata { host } => {
                write!(f, "access token from the metadata server {host}")
            }
            CloudLogin::GcpServiceAccount { email, key_file } => write!(
                f,
                "access token of service account {email}, key file {}",
                key_file.display()
            ),
            CloudLogin::GcpUser { client_id, file } => write!(
                f,
                "access token of gcloud user credentials (client {client_id}), file {}",
                file.display()
            ),
            CloudLogin::AcrWorkloadIdentity {
                client_id,
                tenant_id,
                exchange_url,
            } => write!(
                f,
                "workload identity {client_id} in tenant {tenant_id}, exchanged at {exchange_url}"
            ),
        }
    }
}

impl serde::Serialize for CloudLogin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A credential with its source and, where known, when it expires. `Debug` prints no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcedCredential {
    /// Where it came from.
    pub source: CredentialSource,
    /// The secret itself.
    pub secret: Credential,
    /// When it stops being valid, when its source says so.
    pub expires_at: Option<SystemTime>,
}

impl SourcedCredential {
    /// A credential that does not expire on its own.
    pub fn new(source: CredentialSource, secret: Credential) -> Self {
        SourcedCredential {
            source,
            secret,
            expires_at: None,
        }
    }
}

/// What to say about the credential a request was made with: its source, or anonymous.
pub(crate) fn describe(source: Option<&CredentialSource>) -> String {
    match source {
        Some(s) => format!("credentials from {s}"),
        None => "anonymous (no credentials configured for this registry)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_name_the_source_but_never_the_secret() {
        let c = SourcedCredential::new(
            CredentialSource::ConfigFile {
                origin: "/etc/ferry/config.json".into(),
                key: "r.io".into(),
            },
            Credential::Basic {
                username: "u".into(),
                password: "hunter2".into(),
            },
        );
        let text = format!("{c:?} {}", c.source);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("/etc/ferry/config.json") && text.contains("r.io"),
            "{text}"
        );
        let json = serde_json::to_value(&c.source).unwrap();
        assert_eq!(json["kind"], "config-file");
        assert_eq!(json["key"], "r.io");
    }
}

#[cfg(test)]
mod login_tests {
    use super::*;

    #[test]
    fn each_cloud_login_reads_as_before_and_serializes_as_its_text() {
        let cases = [
            (
                CloudLogin::EcrToken {
                    region: "eu-west-1".into(),
                },
                "ECR GetAuthorizationToken in eu-west-1",
            ),
            (
                CloudLogin::GcpMetadata {
                    host: "169.254.169.254".into(),
                },
                "access token from the metadata server 169.254.169.254",
            ),
            (
                CloudLogin::GcpServiceAccount {
                    email: "ci@p.iam.gserviceaccount.com".into(),
                    key_file: PathBuf::from("/k.json"),
                },
                "access token of service account ci@p.iam.gserviceaccount.com, key file /k.json",
            ),
            (
                CloudLogin::GcpUser {
                    client_id: "c1".into(),
                    file: PathBuf::from("/adc.json"),
                },
                "access token of gcloud user credentials (client c1), file /adc.json",
            ),
            (
                CloudLogin::AcrWorkloadIdentity {
                    client_id: "app".into(),
                    tenant_id: "t".into(),
                    exchange_url: "https://r.azurecr.io/oauth2/exchange".into(),
                },
                "workload identity app in tenant t, exchanged at https://r.azurecr.io/oauth2/exchange",
            ),
        ];
        for (login, text) in cases {
            assert_eq!(login.to_string(), text);
            assert_eq!(
                serde_json::to_value(&login).unwrap(),
                serde_json::json!(text)
            );
        }
    }
}
