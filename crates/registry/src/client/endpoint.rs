//! Where requests for a registry go: mirrors, plain HTTP, Docker Hub's API host; and the scopes
//! requests ask tokens for.

use url::Url;

use super::Client;
use crate::credentials::is_docker_hub;
use crate::error::{ConfigProblem, Error, Result};

/// Docker Hub's API host.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// Where requests for one registry go.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    /// `scheme://host[:port][/prefix]` without a trailing slash.
    pub(super) base: String,
    /// The name credentials, auth state and concurrency are keyed by: the registry name, or the
    /// mirror's `host[:port]` when mirrored (credentials for Docker Hub are never sent to a mirror).
    pub(super) key: String,
}

impl Client {
    pub(super) fn endpoint(&self, registry: &str) -> Result<Endpoint> {
        if registry.is_empty() {
            return Err(Error::Config(ConfigProblem::NoRegistry));
        }
        let registry = normalize_registry(registry);
        if let Some(m) = self.inner.mirrors.get(registry) {
            return Ok(Endpoint {
                base: m.as_str().trim_end_matches('/').to_string(),
                key: host_key(m),
            });
        }
        let host = if is_docker_hub(registry) {
            DOCKER_HUB_API_HOST
        } else {
            registry
        };
        let scheme = if self.is_plain_http(registry) {
            "http"
        } else {
            "https"
        };
        Ok(Endpoint {
            base: format!("{scheme}://{host}"),
            key: registry.to_string(),
        })
    }

    fn is_plain_http(&self, registry: &str) -> bool {
        let host_only = registry.rsplit_once(':').map_or(registry, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(']') || h.ends_with(']') {
                h
            } else {
                registry
            }
        });
        self.inner
            .config
            .plain_http
            .iter()
            .any(|p| p == registry || (!p.contains(':') || p.ends_with(']')) && p == host_only)
    }

    pub(super) fn url(&self, ep: &Endpoint, path: &str) -> Result<Url> {
        let url = format!("{}{path}", ep.base);
        Url::parse(&url).map_err(|source| Error::Config(ConfigProblem::Url { url, source }))
    }

    pub(super) fn manifest_url(
        &self,
        ep: &Endpoint,
        repository: &str,
        selector: &str,
    ) -> Result<Url> {
        self.url(ep, &format!("/v2/{repository}/manifests/{selector}"))
    }
}

/// `host[:port]` of a URL: the key of its per-host state (concurrency, auth).
pub(super) fn host_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

pub(super) fn normalize_registry(registry: &str) -> &str {
    if is_docker_hub(registry) {
        "docker.io"
    } else {
        registry
    }
}

pub(super) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

pub(super) fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClientConfig;

    #[test]
    fn endpoints_mirrors_and_plain_http() {
        let c = Client::new(ClientConfig {
            plain_http: vec!["127.0.0.1:5000".into(), "insecure.local".into()],
            mirrors: vec![("docker.io".into(), "http://127.0.0.1:9/prefix".into())],
            ..Default::default()
        })
        .unwrap();
        let e = c.endpoint("docker.io").unwrap();
        assert_eq!(e.base, "http://127.0.0.1:9/prefix");
        assert_eq!(e.key, "127.0.0.1:9");
        assert_eq!(
            c.endpoint("index.docker.io").unwrap().base,
            "http://127.0.0.1:9/prefix"
        );
        assert_eq!(
            c.endpoint("127.0.0.1:5000").unwrap().base,
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            c.endpoint("127.0.0.1:5001").unwrap().base,
            "https://127.0.0.1:5001"
        );
        assert_eq!(
            c.endpoint("insecure.local:8080").unwrap().base,
            "http://insecure.local:8080"
        );
        assert_eq!(c.endpoint("ghcr.io").unwrap().base, "https://ghcr.io");
        let plain = Client::new(ClientConfig::default()).unwrap();
        assert_eq!(
            plain.endpoint("docker.io").unwrap().base,
            "https://registry-1.docker.io"
        );
        assert_eq!(plain.endpoint("docker.io").unwrap().key, "docker.io");
        assert!(plain.endpoint("").is_err());
    }

    #[test]
    fn host_keys_carry_explicit_ports_only() {
        let u = Url::parse("https://auth.example:8443/token").unwrap();
        assert_eq!(host_key(&u), "auth.example:8443");
        let u = Url::parse("https://auth.example/token").unwrap();
        assert_eq!(host_key(&u), "auth.example");
    }
}
