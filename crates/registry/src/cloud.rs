//! Built-in credentials of cloud registries, chosen by registry host: asked after every
//! explicit configuration (config.json `auths`, `credHelpers`, `credsStore`, pull secrets) and
//! before anonymous access. Each provider is a [`TokenProvider`] (the I/O seam); a
//! [`CloudCredentials`] store keeps each answer until three quarters of its lifetime have
//! passed, and drops it at once when the registry refuses it.
//!
//! The library reads no environment: a provider is handed what the binary gathered (for ECR, a
//! loader of the AWS SDK's configuration, which the binary builds from its environment).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use crate::credentials::{Credential, CredentialStore};
use crate::error::{CloudProblem, CredentialProblem, Error, Result};
use crate::source::{CloudLogin, CredentialSource, SourcedCredential};
use ferry_core::sync::Lock;

/// A cloud whose registries ferry can log in to by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudProvider {
    /// Amazon ECR (`<account>.dkr.ecr.<region>.amazonaws.com`).
    Aws,
    /// Google Artifact Registry and GCR (`*-docker.pkg.dev`, `gcr.io`, `*.gcr.io`).
    Gcp,
    /// Azure Container Registry (`*.azurecr.io`).
    Azure,
}

impl fmt::Display for CloudProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloudProvider::Aws => "aws",
            CloudProvider::Gcp => "gcp",
            CloudProvider::Azure => "azure",
        })
    }
}

impl CloudProvider {
    /// Every provider, the `--cloud-auth` default.
    pub const ALL: [CloudProvider; 3] =
        [CloudProvider::Aws, CloudProvider::Gcp, CloudProvider::Azure];

    /// The cloud whose registry `registry` (`host[:port]`) is, by its host name.
    pub fn for_registry(registry: &str) -> Option<CloudProvider> {
        let host = registry.split(':').next().unwrap_or_default();
        let host = host.to_ascii_lowercase();
        if ecr_region(&host).is_some() {
            Some(CloudProvider::Aws)
        } else if host.ends_with("-docker.pkg.dev") || host == "gcr.io" || host.ends_with(".gcr.io")
        {
            Some(CloudProvider::Gcp)
        } else if host.ends_with(".azurecr.io") {
            Some(CloudProvider::Azure)
        } else {
            None
        }
    }

    /// Parse `--cloud-auth`: a comma-separated list of `aws`, `gcp`, `azure`, or `none`.
    pub fn parse_list(spec: &str) -> Result<Vec<CloudProvider>> {
        let mut out = Vec::new();
        for word in spec.split(',').map(str::trim) {
            let p = match word.to_ascii_lowercase().as_str() {
                "none" if spec.trim().eq_ignore_ascii_case("none") => return Ok(Vec::new()),
                "aws" => CloudProvider::Aws,
                "gcp" => CloudProvider::Gcp,
                "azure" => CloudProvider::Azure,
                _ => {
                    return Err(Error::Config(crate::ConfigProblem::CloudAuth {
                        spec: spec.to_string(),
                        word: word.to_string(),
                    }));
                }
            };
            if !out.contains(&p) {
                out.push(p);
            }
        }
        Ok(out)
    }
}

/// The region of an ECR registry host (`<account>.dkr.ecr.<region>.amazonaws.com`, also
/// `.amazonaws.com.cn` and the FIPS form `dkr.ecr-fips`).
pub fn ecr_region(host: &str) -> Option<&str> {
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let mut parts = rest.split('.');
    let account = parts.next()?;
    let dkr = parts.next()?;
    let ecr = parts.next()?;
    let region = parts.next()?;
    let ok = account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && dkr == "dkr"
        && (ecr == "ecr" || ecr == "ecr-fips")
        && !region.is_empty()
        && parts.next().is_none();
    ok.then_some(region)
}

/// Where short-lived registry credentials of one cloud come from: the I/O seam.
pub trait TokenProvider: Send + Sync + fmt::Debug {
    /// The cloud this provider logs in to.
    fn provider(&self) -> CloudProvider;
    /// A new credential for `registry` with its expiry; `None` when this cloud's identity is
    /// not available here (no AWS credentials, no metadata server): anonymous access then.
    fn fetch<'a>(&'a self, registry: &'a str) -> BoxFuture<'a, Result<Option<SourcedCredential>>>;
}

/// How long "no identity here" is believed before the provider is asked again.
const ABSENT_FOR: Duration = Duration::from_secs(300);

/// One provider's answer and when it was given.
#[derive(Clone)]
struct Kept {
    credential: Option<SourcedCredential>,
    fetched: SystemTime,
}

impl Kept {
    /// Still good: less than three quarters of its lifetime gone (no expiry: one hour; no
    /// credential: [`ABSENT_FOR`]).
    fn fresh(&self, now: SystemTime) -> bool {
        let life = match &self.credential {
            None => return now.duration_since(self.fetched).unwrap_or_default() < ABSENT_FOR,
            Some(c) => match c.expires_at {
                Some(at) => at.duration_since(self.fetched).unwrap_or_default(),
                None => Duration::from_secs(3600),
            },
        };
        now.duration_since(self.fetched).unwrap_or_default() < life * 3 / 4
    }
}

/// The cloud providers that are on, each asked for the registries of its cloud.
pub struct CloudCredentials {
    providers: Vec<Arc<dyn TokenProvider>>,
    kept: Lock<HashMap<String, Kept>>,
    /// Serializes fetches per registry, so concurrent lookups make one token request.
    fetching: Lock<HashMap<String, Arc<std::sync::Mutex<()>>>>,
}

impl fmt::Debug for CloudCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on: Vec<CloudProvider> = self.providers.iter().map(|p| p.provider()).collect();
        f.debug_struct("CloudCredentials")
            .field("providers", &on)
            .finish()
    }
}

impl CloudCredentials {
    /// A store asking `providers` for the registries of their clouds.
    pub fn new(providers: Vec<Arc<dyn TokenProvider>>) -> Self {
        CloudCredentials {
            providers,
            kept: Lock::default(),
            fetching: Lock::default(),
        }
    }

    fn provider_for(&self, registry: &str) -> Option<&Arc<dyn TokenProvider>> {
        let cloud = CloudProvider::for_registry(registry)?;
        self.providers.iter().find(|p| p.provider() == cloud)
    }

    /// The kept answer for `registry` while it is fresh (`Some(None)`: no identity here).
    fn fresh(&self, registry: &str) -> Option<Option<SourcedCredential>> {
        let kept = self.kept.lock();
        kept.get(registry)
            .filter(|k| k.fresh(SystemTime::now()))
            .map(|k| k.credential.clone())
    }
}

impl CredentialStore for CloudCredentials {
    fn get(&self, registry: &str) -> Result<Option<Credential>> {
        Ok(self.lookup(registry)?.map(|c| c.secret))
    }

    /// Runs on a blocking thread of the client's runtime: the provider's request is driven
    /// to completion on that runtime.
    fn lookup(&self, registry: &str) -> Result<Option<SourcedCredential>> {
        let Some(provider) = self.provider_for(registry) else {
            return Ok(None);
        };
        if let Some(c) = self.fresh(registry) {
            return Ok(c);
        }
        let slot = self
            .fetching
            .lock()
            .entry(registry.to_string())
            .or_default()
            .clone();
        let _one = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = self.fresh(registry) {
            return Ok(c);
        }
        let handle = tokio::runtime::Handle::try_current().map_err(|e| Error::Credentials {
            registry: registry.to_string(),
            problem: CredentialProblem::Cloud {
                provider: provider.provider(),
                problem: crate::error::CloudProblem::NoRuntime(e),
            },
        })?;
        let fetched = SystemTime::now();
        let credential = handle.block_on(provider.fetch(registry))?;
        match &credential {
            Some(c) => {
                tracing::debug!(registry, provider = %provider.provider(), expires_at = ?c.expires_at, "cloud registry credential obtained")
            }
            None => {
                tracing::debug!(registry, provider = %provider.provider(), "no cloud identity here; anonymous")
            }
        }
        self.kept.lock().insert(
            registry.to_string(),
            Kept {
                credential: credential.clone(),
                fetched,
            },
        );
        Ok(credential)
    }

    fn refused(&self, registry: &str) -> bool {
        self.kept
            .lock()
            .remove(registry)
            .is_some_and(|k| k.credential.is_some())
    }

    fn searched(&self) -> Option<String> {
        None
    }
}

/// The source of a cloud credential.
pub(crate) fn cloud_source(provider: CloudProvider, how: CloudLogin) -> CredentialSource {
    CredentialSource::Cloud {
        provider,
        how: Box::new(how),
    }
}

/// POST `form` (`application/x-www-form-urlencoded`) to a token service and decode its JSON
/// answer; an error status is [`CloudProblem::Refused`] with the start of the answer (token
/// services' error answers hold codes and descriptions, never the secret).
pub(crate) async fn post_form<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> std::result::Result<T, CloudProblem> {
    let body = {
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in form {
            body.append_pair(k, v);
        }
        body.finish()
    };
    let unreachable = |source| CloudProblem::Unreachable {
        url: url.to_string(),
        source,
    };
    let reply = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(unreachable)?;
    let status = reply.status();
    let body = reply.bytes().await.map_err(unreachable)?;
    if !status.is_success() {
        let answer: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        return Err(CloudProblem::Refused {
            url: url.to_string(),
            status: status.as_u16(),
            answer,
        });
    }
    serde_json::from_slice(&body).map_err(|source| CloudProblem::BadAnswer {
        url: url.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_chosen_by_host() {
        for (host, want) in [
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                Some(CloudProvider::Aws),
            ),
            (
                "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com",
                Some(CloudProvider::Aws),
            ),
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn",
                Some(CloudProvider::Aws),
            ),
            ("public.ecr.aws", None),
            ("12345.dkr.ecr.eu-west-1.amazonaws.com", None),
            ("europe-west1-docker.pkg.dev", Some(CloudProvider::Gcp)),
            ("gcr.io", Some(CloudProvider::Gcp)),
            ("eu.gcr.io", Some(CloudProvider::Gcp)),
            ("acme.azurecr.io", Some(CloudProvider::Azure)),
            ("docker.io", None),
            ("127.0.0.1:5000", None),
        ] {
            assert_eq!(CloudProvider::for_registry(host), want, "{host}");
        }
        assert_eq!(
            ecr_region("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            Some("eu-west-1")
        );
    }

    #[test]
    fn cloud_auth_lists_parse_and_bad_words_are_named() {
        assert_eq!(
            CloudProvider::parse_list("aws,gcp,azure").unwrap(),
            CloudProvider::ALL.to_vec()
        );
        assert_eq!(CloudProvider::parse_list("none").unwrap(), vec![]);
        assert_eq!(
            CloudProvider::parse_list("gcp, aws,gcp").unwrap(),
            vec![CloudProvider::Gcp, CloudProvider::Aws]
        );
        let e = CloudProvider::parse_list("aws,ibm")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ibm"), "{e}");
        assert!(CloudProvider::parse_list("aws,none").is_err());
    }

    proptest::proptest! {
        #[test]
        fn host_classification_never_panics(host in "[a-z0-9.:-]{0,60}") {
            let _ = CloudProvider::for_registry(&host);
            let _ = ecr_region(&host);
        }
    }
}
