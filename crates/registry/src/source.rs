//! Where a credential came from and when it stops being good: what `ferry-registry auth`
//! reports and what every 401/403 error names. Never holds or prints a secret itself.

use std::fmt;
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
        how: String,
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
