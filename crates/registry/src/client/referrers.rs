//! The OCI 1.1 Referrers API (`GET /v2/<name>/referrers/<digest>`) and its fallback, the
//! referrers tag schema (an index under the tag `<alg>-<hex>`), for registries without it.

use std::collections::BTreeMap;

use ferry_core::{Digest, Reference};
use reqwest::{Method, StatusCode};

use super::Client;
use super::endpoint::pull_scope;
use super::wire::{Request, status_error};
use crate::error::{Error, Result};
use crate::manifest::OCI_INDEX;
use crate::problem::InvalidProblem;

/// One manifest that refers to a digest (a signature, an attestation, an SBOM…).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Referrer {
    /// The referring manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its `artifactType` (or its config's media type), when given.
    pub artifact_type: Option<String>,
    /// Its size in bytes.
    pub size: u64,
    /// The descriptor's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// Where the referrers of a digest were listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferrersSource {
    /// The registry's Referrers API.
    Api,
    /// The referrers tag schema (`sha256-<hex>` tag holding an index).
    TagSchema,
}

/// The tag the referrers tag schema keeps `digest`'s referrers under: `<alg>-<hex>`.
pub fn referrers_tag(digest: &Digest) -> String {
    format!("{}-{}", digest.algorithm().as_str(), digest.hex())
}

/// How long a registry whose Referrers API answered 404 is remembered as having none: later
/// digests go straight to the referrers tag schema (one request and one round fewer). Bounded,
/// so a registry upgraded to the API is probed again within this long.
pub const NO_REFERRERS_API_MEMORY: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// What a registry's Referrers API answered last.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ApiSeen {
    /// It answered a listing: the registry has the API (kept for the client's life).
    Present,
    /// It answered 404, at this instant (kept for [`NO_REFERRERS_API_MEMORY`]).
    Absent(std::time::Instant),
}

impl Client {
    /// The manifests referring to `digest` in `reference`'s repository: through the Referrers
    /// API, or — when the registry has none (it answers 404) — through the referrers tag
    /// schema. Empty when there are none. One request, two on a registry without the API the
    /// first time; for [`NO_REFERRERS_API_MEMORY`] after a 404 the client remembers that
    /// registry (every clone and handle of it) and sends only the tag-schema request. Until a
    /// registry's answer is known, one probe at a time is sent to it (concurrent lookups wait
    /// for the first answer instead of each probing).
    pub async fn referrers(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<(ReferrersSource, Vec<Referrer>)> {
        let (source, list, _) = self.referrers_counted(reference, digest).await?;
        Ok((source, list))
    }

    /// [`Client::referrers`] and the number of requests it sent (1 or 2).
    pub(crate) async fn referrers_counted(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<(ReferrersSource, Vec<Referrer>, usize)> {
        let registry = reference.registry();
        let mut requests = 0;
        let mut api = self.referrers_api_seen(registry);
        // Unknown: single-flight the probe, then look again (another lookup may have answered).
        let probing = match api {
            None => {
                let lock = self
                    .inner
                    .referrers_probes
                    .lock()
                    .entry(registry.to_string())
                    .or_default()
                    .clone();
                let guard = lock.lock_owned().await;
                api = self.referrers_api_seen(registry);
                Some(guard)
            }
            Some(_) => None,
        };
        if !matches!(api, Some(ApiSeen::Absent(_))) {
            requests += 1;
            if let Some(list) = self.referrers_api(reference, digest).await? {
                return Ok((ReferrersSource::Api, list, requests));
            }
        }
        drop(probing);
        let tag = reference
            .repository_only()
            .with_tag(&referrers_tag(digest))?;
        requests += 1;
        match self.manifest(&tag).await {
            Ok(m) => Ok((
                ReferrersSource::TagSchema,
                parse_referrers(&m.body, &tag.to_string())?,
                requests,
            )),
            Err(Error::NotFound { .. }) => Ok((ReferrersSource::TagSchema, Vec::new(), requests)),
            Err(e) => Err(e),
        }
    }

    /// One Referrers API request: the listing, or `None` when the registry answered 404 (it
    /// has no API). Either answer is remembered for the registry.
    async fn referrers_api(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Option<Vec<Referrer>>> {
        let ep = self.endpoint(reference.registry())?;
        let url = self.url(
            &ep,
            &format!("/v2/{}/referrers/{digest}", reference.repository()),
        )?;
        let req = Request::new(Method::GET, url)
            .accept(OCI_INDEX)
            .limit(self.inner.config.manifest_limit);
        let reply = self
            .execute(&ep, &pull_scope(reference.repository()), req)
            .await?;
        let seen = if reply.status.is_success() {
            ApiSeen::Present
        } else if reply.status == StatusCode::NOT_FOUND {
            ApiSeen::Absent(std::time::Instant::now())
        } else {
            return Err(status_error(&reply));
        };
        self.inner
            .referrers_api
            .lock()
            .insert(reference.registry().to_string(), seen);
        match seen {
            ApiSeen::Present => Ok(Some(parse_referrers(&reply.body, &reply.url)?)),
            ApiSeen::Absent(_) => Ok(None),
        }
    }

    /// What `registry`'s Referrers API answered, if that is still remembered: a listing for
    /// the client's life, a 404 for [`NO_REFERRERS_API_MEMORY`].
    pub(crate) fn referrers_api_seen(&self, registry: &str) -> Option<ApiSeen> {
        let mut seen = self.inner.referrers_api.lock();
        match seen.get(registry).copied() {
            Some(ApiSeen::Absent(at)) if at.elapsed() >= NO_REFERRERS_API_MEMORY => {
                seen.remove(registry);
                None
            }
            other => other,
        }
    }
}

/// The descriptors of a referrers index (API answer or tag-schema index).
pub(crate) fn parse_referrers(body: &[u8], url: &str) -> Result<Vec<Referrer>> {
    #[derive(serde::Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<Desc>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Desc {
        media_type: String,
        digest: String,
        size: u64,
        artifact_type: Option<String>,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
    let invalid = |problem: InvalidProblem| Error::Invalid {
        what: "referrers index",
        url: url.to_string(),
        problem,
    };
    let index: Index =
        serde_json::from_slice(body).map_err(|e| invalid(InvalidProblem::Json(e)))?;
    index
        .manifests
        .into_iter()
        .map(|d| {
            Ok(Referrer {
                digest: Digest::parse(&d.digest).map_err(|source| {
                    invalid(InvalidProblem::ReferrerDigest {
                        digest: d.digest.clone(),
                        source: Box::new(source),
                    })
                })?,
                media_type: d.media_type,
                artifact_type: d.artifact_type,
                size: d.size,
                annotations: d.annotations,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referrers_index_descriptors_are_read_and_a_bad_digest_names_the_url() {
        let d = Digest::sha256_of(b"x");
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d}","size":3,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","annotations":{{"a":"b"}}}}]}}"#
        );
        let list = parse_referrers(body.as_bytes(), "u").unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].digest, d);
        assert_eq!(
            list[0].artifact_type.as_deref(),
            Some("application/vnd.dev.sigstore.bundle.v0.3+json")
        );
        let e = parse_referrers(
            br#"{"manifests":[{"mediaType":"m","digest":"sha256:zz","size":1}]}"#,
            "http://r/v2/x/referrers/d",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("http://r/v2/x/referrers/d"), "{e}");
    }

    #[test]
    fn referrers_tag_is_algorithm_dash_hex() {
        let d = Digest::sha256_of(b"x");
        assert_eq!(referrers_tag(&d), format!("sha256-{}", d.hex()));
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_bytes_as_a_referrers_index_never_panics(b in proptest::collection::vec(0u8..=255, 0..300)) {
            let _ = parse_referrers(&b, "u");
        }
    }
}
