//! Writing to registries: blob uploads, manifest pushes, cross-repository mounts and copies.

use bytes::Bytes;
use ferry_core::{Digest, Reference};
use futures::{StreamExt, TryStreamExt, stream};
use reqwest::header;
use reqwest::{Method, StatusCode};
use url::Url;

use super::endpoint::{Endpoint, push_scope};
use super::reads::{CHILD_CONCURRENCY, check_children};
use super::wire::{Request, status_error};
use super::{Client, CopyOutcome};
use crate::error::{Error, Result};
use crate::manifest::{self, FetchedManifest, ManifestContent};
use crate::problem::InvalidProblem;

/// Cap of the (empty or tiny) bodies of write answers.
const WRITE_REPLY_LIMIT: usize = 64 * 1024;

impl Client {
    /// Upload a blob (monolithic) unless the repository already has it; returns its digest.
    pub async fn push_blob(&self, reference: &Reference, data: Bytes) -> Result<Digest> {
        let digest = Digest::sha256_of(&data);
        let ep = self.endpoint(reference.registry())?;
        let repo = reference.repository();
        let scope = push_scope(repo);
        let head_url = self.url(&ep, &format!("/v2/{repo}/blobs/{digest}"))?;
        let head = self
            .execute(&ep, &scope, Request::new(Method::HEAD, head_url))
            .await?;
        if head.status.is_success() {
            return Ok(digest);
        }
        let mut put_url = self.start_upload(&ep, &scope, repo).await?;
        put_url
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let req = Request::new(Method::PUT, put_url)
            .body(Some("application/octet-stream".into()), data)
            .limit(WRITE_REPLY_LIMIT);
        let done = self.execute(&ep, &scope, req).await?;
        if done.status != StatusCode::CREATED {
            return Err(status_error(&done));
        }
        Ok(digest)
    }

    /// Open an upload session in `repo`; returns where to PUT the blob.
    async fn start_upload(&self, ep: &Endpoint, scope: &str, repo: &str) -> Result<Url> {
        let start_url = self.url(ep, &format!("/v2/{repo}/blobs/uploads/"))?;
        let req = Request::new(Method::POST, start_url.clone())
            .body(None, Bytes::new())
            .limit(WRITE_REPLY_LIMIT);
        let started = self.execute(ep, scope, req).await?;
        if started.status != StatusCode::ACCEPTED {
            return Err(status_error(&started));
        }
        let location = started
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Invalid {
                what: "upload session",
                url: started.url.clone(),
                problem: InvalidProblem::MissingLocation,
            })?;
        start_url.join(location).map_err(|e| Error::Invalid {
            what: "upload session",
            url: started.url.clone(),
            problem: InvalidProblem::Location {
                location: location.to_string(),
                source: e,
            },
        })
    }

    /// PUT a manifest under `reference`'s tag (or digest); returns the manifest's digest.
    pub async fn put_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        body: Bytes,
    ) -> Result<Digest> {
        let digest = Digest::sha256_of(&body);
        let ep = self.endpoint(reference.registry())?;
        let selector = match (reference.tag(), reference.digest()) {
            (Some(t), _) => t.to_string(),
            (None, Some(d)) => d.to_string(),
            (None, None) => ferry_core::reference::DEFAULT_TAG.to_string(),
        };
        let url = self.manifest_url(&ep, reference.repository(), &selector)?;
        let req = Request::new(Method::PUT, url)
            .body(Some(media_type.to_string()), body)
            .limit(WRITE_REPLY_LIMIT);
        let reply = self
            .execute(&ep, &push_scope(reference.repository()), req)
            .await?;
        if reply.status != StatusCode::CREATED && !reply.status.is_success() {
            return Err(status_error(&reply));
        }
        if let Some(h) = reply
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v).ok())
            && h != digest
        {
            return Err(Error::DigestMismatch {
                url: reply.url,
                expected: digest,
                actual: h,
            });
        }
        Ok(digest)
    }

    /// Mount `digest` from repository `from` into `dst`'s repository (same registry) without
    /// transferring it. `Ok(false)` when the registry declined to mount (then the caller copies).
    pub async fn mount_blob(&self, from: &str, dst: &Reference, digest: &Digest) -> Result<bool> {
        let ep = self.endpoint(dst.registry())?;
        let repo = dst.repository();
        let mut url = self.url(&ep, &format!("/v2/{repo}/blobs/uploads/"))?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let scope = format!("{} repository:{from}:pull", push_scope(repo));
        let req = Request::new(Method::POST, url)
            .body(None, Bytes::new())
            .limit(WRITE_REPLY_LIMIT);
        let reply = self.execute(&ep, &scope, req).await?;
        match reply.status {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => Ok(false),
            _ => Err(status_error(&reply)),
        }
    }

    /// Make `blob` available in `dst`'s repository: mount it from `src`'s repository, or copy it
    /// (GET then PUT) when the registry will not mount. Returns whether it was mounted.
    async fn transfer_blob(
        &self,
        src: &Reference,
        dst: &Reference,
        digest: &Digest,
    ) -> Result<bool> {
        if src.name() == dst.name() {
            return Ok(true);
        }
        if src.registry() == dst.registry()
            && self.mount_blob(src.repository(), dst, digest).await?
        {
            return Ok(true);
        }
        tracing::warn!(%digest, "blob could not be mounted; copying it");
        let data = self.blob(src, digest, self.inner.config.blob_limit).await?;
        self.push_blob(dst, data).await?;
        Ok(false)
    }

    /// Copy what `src` points at (a manifest, or an index with every child) to `dst` — another
    /// tag, or another repository of the same registry (blobs are mounted, never pulled when
    /// the registry allows mounting). The digest stays the same. The children, and each one's
    /// blobs, are read and written a few at a time; the top manifest last.
    pub async fn copy(&self, src: &Reference, dst: &Reference) -> Result<CopyOutcome> {
        let top = self.manifest(src).await?;
        let manifests = self.image_manifests(src, &top).await?;
        let copies: Vec<(usize, usize, usize)> = stream::iter(&manifests)
            .map(|m| self.copy_image(src, dst, m, &top.digest))
            .buffer_unordered(CHILD_CONCURRENCY)
            .try_collect()
            .await?;
        let written = self
            .put_manifest(dst, &top.media_type, top.body.clone())
            .await?;
        if written != top.digest {
            return Err(Error::DigestMismatch {
                url: dst.to_string(),
                expected: top.digest,
                actual: written,
            });
        }
        let sum = |f: fn(&(usize, usize, usize)) -> usize| copies.iter().map(f).sum::<usize>();
        Ok(CopyOutcome {
            digest: top.digest.clone(),
            media_type: top.media_type.clone(),
            mounted_blobs: sum(|c| c.0),
            copied_blobs: sum(|c| c.1),
            manifests: sum(|c| c.2) + 1,
        })
    }

    /// The manifests under `top`: its children when it is an index (in index order), else
    /// itself.
    async fn image_manifests(
        &self,
        src: &Reference,
        top: &FetchedManifest,
    ) -> Result<Vec<FetchedManifest>> {
        let ManifestContent::Index(index) = &top.content else {
            return Ok(vec![top.clone()]);
        };
        check_children(index.manifests().len(), src)?;
        let mut children = Vec::new();
        for d in index.manifests() {
            let cd = manifest::descriptor_digest(d, &src.to_string())?;
            children.push(Reference::parse(&format!("{}@{cd}", src.name()))?);
        }
        stream::iter(&children)
            .map(|child| self.manifest(child))
            .buffered(CHILD_CONCURRENCY)
            .try_collect()
            .await
    }

    /// Copy one manifest's blobs, and the manifest itself by digest unless it is the top one
    /// (written last, under `dst`'s tag): (blobs mounted, blobs copied, manifests written).
    async fn copy_image(
        &self,
        src: &Reference,
        dst: &Reference,
        m: &FetchedManifest,
        top: &Digest,
    ) -> Result<(usize, usize, usize)> {
        let mut blobs = Vec::new();
        if let ManifestContent::Image(img) = &m.content {
            blobs.push(manifest::descriptor_digest(img.config(), &src.to_string())?);
            for l in img.layers() {
                blobs.push(manifest::descriptor_digest(l, &src.to_string())?);
            }
        }
        let mounted: Vec<bool> = stream::iter(&blobs)
            .map(|b| self.transfer_blob(src, dst, b))
            .buffer_unordered(CHILD_CONCURRENCY)
            .try_collect()
            .await?;
        let n_mounted = mounted.iter().filter(|&&m| m).count();
        let mut written = 0;
        if m.digest != *top {
            let by_digest = Reference::parse(&format!("{}@{}", dst.name(), m.digest))?;
            self.put_manifest(&by_digest, &m.media_type, m.body.clone())
                .await?;
            written = 1;
        }
        Ok((n_mounted, mounted.len() - n_mounted, written))
    }
}
