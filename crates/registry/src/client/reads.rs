//! Reading from registries: resolve, digest, manifest, inspect, verify, image config, blob,
//! tags, wait and created. Every body read is capped and hashed against the digest it should
//! have.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_core::{Digest, Platform, Reference};
use futures::{StreamExt, TryStreamExt, stream};
use reqwest::header;
use reqwest::{Method, StatusCode};
use url::Url;

use super::endpoint::pull_scope;
use super::wire::{Reply, Request, content_type, jitter, registry_detail, status_error};
use super::{Client, NotReady, TagsOptions, WaitOutcome};
use crate::detail::RegistryWords;
use crate::error::{Error, Result};
use crate::manifest::{
    self, ACCEPT_MANIFESTS, FetchedManifest, ImageConfigSummary, Inspection, ManifestContent,
    PlatformCheck, PlatformManifest, Resolved,
};
use crate::problem::InvalidProblem;
use crate::ratelimit::RateLimit;

/// Most pages of one tag list followed (a registry paginating without end is an error).
const MAX_TAG_PAGES: usize = 10_000;
/// Most child manifests of one index fetched (real indexes list a few dozen).
pub(super) const MAX_INDEX_CHILDREN: usize = 1_000;
/// Requests in flight for the children of one index (their manifests, configs, or, in a copy,
/// each child's blobs: at most its square then).
pub(super) const CHILD_CONCURRENCY: usize = 4;

impl Client {
    /// The digest, media type and size the registry serves for `reference`: one HEAD request
    /// (Docker Hub does not count HEADs against pull limits), falling back to GET + hashing when
    /// the registry sends no usable `Docker-Content-Digest`.
    pub async fn resolve(&self, reference: &Reference) -> Result<Resolved> {
        let reply = self.fetch_manifest(reference, Method::HEAD).await?;
        match reply.status {
            s if s.is_success() => {}
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED => {
                return self.resolve_by_get(reference).await;
            }
            StatusCode::NOT_FOUND => return Err(not_found("manifest", reference, &reply)),
            _ => return Err(status_error(&reply)),
        }
        let header_digest = reply
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v.trim()).ok());
        let Some(digest) = header_digest else {
            tracing::debug!(url = %reply.url, "no usable Docker-Content-Digest on HEAD; using GET");
            return self.resolve_by_get(reference).await;
        };
        if let Some(want) = reference.digest()
            && *want != digest
        {
            return Err(Error::DigestMismatch {
                url: reply.url,
                expected: want.clone(),
                actual: digest,
            });
        }
        Ok(Resolved {
            reference: reference.clone(),
            digest,
            media_type: content_type(&reply.headers).unwrap_or_default(),
            size: reply
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
            platform: None,
            rate_limit: RateLimit::from_headers(&reply.headers),
        })
    }

    async fn resolve_by_get(&self, reference: &Reference) -> Result<Resolved> {
        let m = self.manifest(reference).await?;
        Ok(Resolved {
            reference: reference.clone(),
            digest: m.digest,
            media_type: m.media_type,
            size: Some(m.body.len() as u64),
            platform: None,
            rate_limit: m.rate_limit,
        })
    }

    /// The digest for `reference`, or with `platform` the digest of that platform's manifest.
    pub async fn digest(
        &self,
        reference: &Reference,
        platform: Option<&Platform>,
    ) -> Result<Resolved> {
        let Some(platform) = platform else {
            return self.resolve(reference).await;
        };
        let inspection = self.inspect(reference).await?;
        let Some(p) = inspection.platform(platform) else {
            return Err(Error::PlatformNotFound {
                reference: reference.to_string(),
                platform: platform.clone(),
                available: inspection
                    .platforms
                    .iter()
                    .map(|p| p.platform.clone())
                    .collect(),
            });
        };
        Ok(Resolved {
            reference: reference.clone(),
            digest: p.digest.clone(),
            media_type: p.media_type.clone(),
            size: Some(p.size),
            platform: Some(p.platform.clone()),
            rate_limit: inspection.rate_limit.clone(),
        })
    }

    /// GET the manifest for `reference`, capped, hashed and verified against the requested
    /// digest and the `Docker-Content-Digest` header.
    pub async fn manifest(&self, reference: &Reference) -> Result<FetchedManifest> {
        let reply = self.fetch_manifest(reference, Method::GET).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Err(not_found("manifest", reference, &reply));
        }
        if !reply.status.is_success() {
            return Err(status_error(&reply));
        }
        let header_digest = match reply.headers.get("docker-content-digest") {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|s| Digest::parse(s.trim()).ok())
                    .ok_or_else(|| Error::Invalid {
                        what: "Docker-Content-Digest header",
                        url: reply.url.clone(),
                        problem: InvalidProblem::NotADigest(v.clone()),
                    })?,
            ),
        };
        let digest = verify_body(&reply, reference.digest(), header_digest.as_ref())?;
        let (media_type, content) = manifest::decode(
            &reply.body,
            content_type(&reply.headers).as_deref(),
            &reply.url,
        )?;
        Ok(FetchedManifest {
            digest,
            media_type,
            body: reply.body.clone(),
            content,
            rate_limit: RateLimit::from_headers(&reply.headers),
        })
    }

    /// Platforms, child digests, attestations, media types and sizes of `reference`.
    pub async fn inspect(&self, reference: &Reference) -> Result<Inspection> {
        let m = self.manifest(reference).await?;
        let size = m.body.len() as u64;
        let (platforms, attestations) = match &m.content {
            ManifestContent::Index(index) => {
                manifest::index_entries(index, &reference.to_string())?
            }
            ManifestContent::Image(image) => {
                let config_digest =
                    manifest::descriptor_digest(image.config(), &reference.to_string())?;
                let cfg = self.image_config(reference, &config_digest).await?;
                let platform = Platform::new(&cfg.os, &cfg.architecture, cfg.variant.as_deref());
                (
                    vec![PlatformManifest {
                        platform,
                        digest: m.digest.clone(),
                        media_type: m.media_type.clone(),
                        size,
                    }],
                    Vec::new(),
                )
            }
        };
        Ok(Inspection {
            reference: reference.clone(),
            digest: m.digest,
            media_type: m.media_type,
            size,
            platforms,
            attestations,
            rate_limit: m.rate_limit,
        })
    }

    /// Which of `platforms` the image behind `reference` provides.
    pub async fn verify(
        &self,
        reference: &Reference,
        platforms: &[Platform],
    ) -> Result<PlatformCheck> {
        Ok(self.inspect(reference).await?.check_platforms(platforms))
    }

    /// Read and decode an image config blob (platform, `created`).
    pub async fn image_config(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<ImageConfigSummary> {
        let body = self
            .blob(reference, digest, self.inner.config.manifest_limit)
            .await?;
        serde_json::from_slice(&body).map_err(|e| Error::Invalid {
            what: "image config",
            url: format!("{}@{digest}", reference.name()),
            problem: InvalidProblem::Json(e),
        })
    }

    /// GET a blob of `reference`'s repository into memory (at most `limit` bytes), verified
    /// against `digest`.
    pub async fn blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        limit: usize,
    ) -> Result<Bytes> {
        let ep = self.endpoint(reference.registry())?;
        let url = self.url(
            &ep,
            &format!("/v2/{}/blobs/{digest}", reference.repository()),
        )?;
        let req = Request::new(Method::GET, url).limit(limit.min(self.inner.config.blob_limit));
        let reply = self
            .execute(&ep, &pull_scope(reference.repository()), req)
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Err(Error::NotFound {
                what: "blob",
                reference: format!("{}@{digest}", reference.name()),
                detail: registry_detail(&reply.body),
            });
        }
        if !reply.status.is_success() {
            return Err(status_error(&reply));
        }
        verify_body(&reply, Some(digest), None)?;
        Ok(reply.body)
    }

    /// Every tag of `reference`'s repository, following `Link` pagination.
    pub async fn tags(&self, reference: &Reference, options: &TagsOptions) -> Result<Vec<String>> {
        let ep = self.endpoint(reference.registry())?;
        let mut path = format!("/v2/{}/tags/list", reference.repository());
        if let Some(n) = options.page_size {
            path.push_str(&format!("?n={n}"));
        }
        let scope = pull_scope(reference.repository());
        let mut next = Some(self.url(&ep, &path)?);
        let mut seen = HashSet::new();
        let mut tags = Vec::new();
        while let Some(url) = next.take() {
            if !seen.insert(url.to_string()) {
                return Err(Error::Invalid {
                    what: "tag list",
                    url: url.to_string(),
                    problem: InvalidProblem::PaginationLoop,
                });
            }
            if seen.len() > MAX_TAG_PAGES {
                return Err(Error::Invalid {
                    what: "tag list",
                    url: url.to_string(),
                    problem: InvalidProblem::TooManyPages {
                        limit: MAX_TAG_PAGES,
                    },
                });
            }
            let req = Request::new(Method::GET, url.clone())
                .accept("application/json")
                .limit(self.inner.config.manifest_limit);
            let reply = self.execute(&ep, &scope, req).await?;
            if reply.status == StatusCode::NOT_FOUND {
                return Err(Error::NotFound {
                    what: "repository",
                    reference: reference.name(),
                    detail: registry_detail(&reply.body),
                });
            }
            if !reply.status.is_success() {
                return Err(status_error(&reply));
            }
            tags.extend(tag_page(&reply)?);
            next = next_page(&url, &reply)?;
        }
        Ok(tags)
    }

    /// Poll until `reference` exists with all of `platforms`, or `timeout` passes.
    ///
    /// Not found and missing platforms keep waiting; transient failures are logged and keep
    /// waiting; other errors (authentication, invalid manifests) end the wait with that error.
    pub async fn wait(
        &self,
        reference: &Reference,
        platforms: &[Platform],
        timeout: Duration,
        interval: Duration,
    ) -> Result<WaitOutcome> {
        let start = Instant::now();
        loop {
            let last = match self.check_ready(reference, platforms).await {
                Ok(Ok(digest)) => {
                    return Ok(WaitOutcome::Ready {
                        digest,
                        waited: start.elapsed(),
                    });
                }
                Ok(Err(missing)) => missing,
                Err(e) if e.is_negative() || e.is_transient() => {
                    tracing::debug!(%reference, error = %e, "not ready yet");
                    NotReady::Failed(Arc::new(e))
                }
                Err(e) => return Err(e),
            };
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                return Ok(WaitOutcome::TimedOut {
                    waited: elapsed,
                    last,
                });
            }
            let sleep = jitter(interval, 0.1).min(timeout - elapsed);
            tokio::time::sleep(sleep).await;
        }
    }

    async fn check_ready(
        &self,
        reference: &Reference,
        platforms: &[Platform],
    ) -> Result<std::result::Result<Digest, NotReady>> {
        if platforms.is_empty() {
            return Ok(Ok(self.resolve(reference).await?.digest));
        }
        let check = self.verify(reference, platforms).await?;
        if check.complete() {
            Ok(Ok(check.digest))
        } else {
            Ok(Err(NotReady::MissingPlatforms {
                reference: reference.clone(),
                missing: check.missing,
            }))
        }
    }

    /// When the image of `reference` was created, as seconds since the Unix epoch: the
    /// `org.opencontainers.image.created` annotation of the index or manifest when it has one,
    /// else the newest `created` time among the platform images' configs (attestations
    /// ignored); `None` when neither records one.
    pub async fn created(&self, reference: &Reference) -> Result<Option<u64>> {
        let top = self.manifest(reference).await?;
        self.created_from(reference, top).await
    }

    /// [`Client::created`] of `reference` whose manifest `top` the caller already fetched
    /// (by tag, to learn its digest and its created time with one request less).
    pub async fn created_from(
        &self,
        reference: &Reference,
        top: FetchedManifest,
    ) -> Result<Option<u64>> {
        let annotations = match &top.content {
            ManifestContent::Image(img) => img.annotations().as_ref(),
            ManifestContent::Index(index) => index.annotations().as_ref(),
        };
        if let Some(c) = annotations.and_then(|a| a.get(CREATED_ANNOTATION)) {
            let secs = parse_created(c).map_err(|e| Error::Invalid {
                what: "manifest annotation org.opencontainers.image.created",
                url: format!("{}@{}", reference.name(), top.digest),
                problem: InvalidProblem::Created {
                    created: c.clone(),
                    source: e,
                },
            })?;
            return Ok(Some(secs));
        }
        let mut newest: Option<u64> = None;
        let configs = self.platform_configs(reference, top).await?;
        let read: Vec<_> = stream::iter(&configs)
            .map(|(r, d)| self.image_config(r, d))
            .buffered(CHILD_CONCURRENCY)
            .try_collect()
            .await?;
        for ((r, d), cfg) in configs.iter().zip(read) {
            if let Some(c) = cfg.created.as_deref() {
                let secs = parse_created(c).map_err(|e| Error::Invalid {
                    what: "image config",
                    url: format!("{}@{d}", r.name()),
                    problem: InvalidProblem::Created {
                        created: c.to_string(),
                        source: e,
                    },
                })?;
                newest = Some(newest.map_or(secs, |n: u64| n.max(secs)));
            }
        }
        Ok(newest)
    }

    /// The image manifest `reference` stands for, to read what a platform image says about the
    /// whole (its annotations, its config's labels): `top` (the manifest fetched for
    /// `reference`) itself when it is an image manifest, else the first platform manifest its
    /// index lists, fetched — attestations are not platforms (see
    /// [`FetchedManifest::platforms`]). `None` for an index that lists no platform.
    pub async fn first_platform_image(
        &self,
        reference: &Reference,
        top: FetchedManifest,
    ) -> Result<Option<FetchedManifest>> {
        if let ManifestContent::Image(_) = &top.content {
            return Ok(Some(top));
        }
        let Some(first) = top.platforms()?.into_iter().next() else {
            return Ok(None);
        };
        let child = Reference::parse(&format!("{}@{}", reference.name(), first.digest))?;
        self.manifest(&child).await.map(Some)
    }

    /// The config blob of each platform image of `reference` (whose manifest is `top`;
    /// attestations left out), each with the reference of the manifest naming it.
    async fn platform_configs(
        &self,
        reference: &Reference,
        top: FetchedManifest,
    ) -> Result<Vec<(Reference, Digest)>> {
        let name = reference.name();
        match &top.content {
            ManifestContent::Image(img) => Ok(vec![(
                reference.clone(),
                manifest::descriptor_digest(img.config(), &name)?,
            )]),
            ManifestContent::Index(index) => {
                let (platforms, _) = manifest::index_entries(index, &name)?;
                check_children(platforms.len(), reference)?;
                let mut children = Vec::new();
                for p in platforms {
                    children.push(Reference::parse(&format!("{name}@{}", p.digest))?);
                }
                let read: Vec<FetchedManifest> = stream::iter(&children)
                    .map(|child| self.manifest(child))
                    .buffered(CHILD_CONCURRENCY)
                    .try_collect()
                    .await?;
                let mut v = Vec::new();
                for (child, m) in children.into_iter().zip(read) {
                    if let ManifestContent::Image(img) = &m.content {
                        v.push((child, manifest::descriptor_digest(img.config(), &name)?));
                    }
                }
                Ok(v)
            }
        }
    }

    /// HEAD or GET `reference`'s manifest with every manifest media type accepted (GET bodies
    /// capped at the manifest limit).
    pub(super) async fn fetch_manifest(
        &self,
        reference: &Reference,
        method: Method,
    ) -> Result<Reply> {
        let ep = self.endpoint(reference.registry())?;
        let url = self.manifest_url(&ep, reference.repository(), &reference.manifest_selector())?;
        let limit = if method == Method::HEAD {
            0
        } else {
            self.inner.config.manifest_limit
        };
        let req = Request::new(method, url)
            .accept(ACCEPT_MANIFESTS)
            .limit(limit);
        self.execute(&ep, &pull_scope(reference.repository()), req)
            .await
    }
}

/// The OCI annotation naming when an image was created (RFC 3339).
const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// The tags of one page of a tag list (`null` and non-string entries skipped).
fn tag_page(reply: &Reply) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Page {
        #[serde(default)]
        tags: Option<Vec<serde_json::Value>>,
    }
    let page: Page = serde_json::from_slice(&reply.body).map_err(|e| Error::Invalid {
        what: "tag list",
        url: reply.url.clone(),
        problem: InvalidProblem::Json(e),
    })?;
    Ok(page
        .tags
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect())
}

/// The next page of a tag list, from the `Link` header, relative to `url`.
fn next_page(url: &Url, reply: &Reply) -> Result<Option<Url>> {
    let Some(target) = reply
        .headers
        .get(header::LINK)
        .and_then(|v| v.to_str().ok())
        .and_then(next_link)
    else {
        return Ok(None);
    };
    url.join(&target).map(Some).map_err(|e| Error::Invalid {
        what: "tag list",
        url: reply.url.clone(),
        problem: InvalidProblem::LinkTarget {
            target: target.clone(),
            source: e,
        },
    })
}

/// `Link: <url>; rel="next"` → url.
fn next_link(header: &str) -> Option<String> {
    for part in header.split(',') {
        let part = part.trim();
        let (target, params) = part.split_once(';').unwrap_or((part, ""));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        if params.split(';').any(|p| {
            matches!(
                p.trim().replace(' ', "").as_str(),
                "rel=\"next\"" | "rel=next"
            )
        }) {
            return Some(target.to_string());
        }
    }
    None
}

/// An image config's `created` time as seconds since the Unix epoch (0 before it).
fn parse_created(c: &str) -> std::result::Result<u64, humantime::TimestampError> {
    let t = humantime::parse_rfc3339_weak(c.trim_end_matches('Z').split('.').next().unwrap_or(c))
        .or_else(|_| humantime::parse_rfc3339_weak(c))?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()))
}

/// Refuse an index with more children than ferry fetches one by one.
pub(super) fn check_children(count: usize, reference: &Reference) -> Result<()> {
    if count > MAX_INDEX_CHILDREN {
        return Err(Error::Invalid {
            what: "manifest",
            url: reference.to_string(),
            problem: InvalidProblem::TooManyChildren {
                count,
                limit: MAX_INDEX_CHILDREN,
            },
        });
    }
    Ok(())
}

/// Hash a body and compare it with the requested digest and the announced header digest.
pub(super) fn verify_body(
    reply: &Reply,
    requested: Option<&Digest>,
    header: Option<&Digest>,
) -> Result<Digest> {
    let alg = requested
        .or(header)
        .map_or(ferry_core::Algorithm::Sha256, Digest::algorithm);
    let actual = Digest::compute(alg, &reply.body);
    for expected in [requested, header].into_iter().flatten() {
        let got = if expected.algorithm() == alg {
            actual.clone()
        } else {
            Digest::compute(expected.algorithm(), &reply.body)
        };
        if got != *expected {
            return Err(Error::DigestMismatch {
                url: reply.url.clone(),
                expected: expected.clone(),
                actual: got,
            });
        }
    }
    Ok(actual)
}

fn not_found(what: &'static str, reference: &Reference, reply: &Reply) -> Error {
    Error::NotFound {
        what,
        reference: reference.to_string(),
        detail: if reply.body.is_empty() {
            RegistryWords::Http404
        } else {
            registry_detail(&reply.body)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn link_header_forms() {
        assert_eq!(
            next_link(r#"</v2/foo/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/foo/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://r/a>; rel="prev", <https://r/b>; rel=next"#).as_deref(),
            Some("https://r/b")
        );
        assert_eq!(next_link("garbage"), None);
        assert_eq!(next_link(r#"<x>; rel="prev""#), None);
    }

    #[test]
    fn created_times_with_and_without_fractions() {
        assert_eq!(parse_created("2024-01-02T03:04:05Z"), Ok(1_704_164_645));
        assert_eq!(
            parse_created("2024-01-02T03:04:05.123456789Z"),
            Ok(1_704_164_645)
        );
        assert!(parse_created("yesterday").is_err());
    }

    proptest! {
        #[test]
        fn next_link_never_panics(s in "\\PC{0,100}") {
            let _ = next_link(&s);
        }
    }
}
