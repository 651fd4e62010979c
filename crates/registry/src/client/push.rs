//! Writing to registries: blob uploads, manifest pushes, cross-repository mounts and copies.

use bytes::Bytes;
use ferry_core::{Digest, Reference};
use reqwest::header;
use reqwest::{Method, StatusCode};
use url::Url;

use super::endpoint::{Endpoint, push_scope};
use super::reads::check_children;
use super::wire::{Request, status_error};
use super::{Client, CopyOutcome};
use crate::error::{Error, Result};
use crate::manifest::{self, FetchedManifest, ManifestContent};

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
                reason: "202 without Location".into(),
            })?;
        start_url.join(location).map_err(|e| Error::Invalid {
            what: "upload session",
            url: started.url.clone(),
            reason: format!("bad Location {location:?}: {e}"),
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
    /// the registry allows mounting). The digest stays the same.
    pub async fn copy(&self, src: &Reference, dst: &Reference) -> Result<CopyOutcome> {
        let top = self.manifest(src).await?;
        let mut outcome = CopyOutcome {
            digest: top.digest.clone(),
            media_type: top.media_type.clone(),
            mounted_blobs: 0,
            copied_blobs: 0,
            manifests: 0,
        };
        for m in &self.image_manifests(src, &top).await? {
            self.copy_image(src, dst, m, &top.digest, &mut outcome)
                .await?;
        }
        let written = self
            .put_manifest(dst, &top.media_type, top.body.clone())
            .await?;
        outcome.manifests += 1;
        if written != top.digest {
            return Err(Error::DigestMismatch {
                url: dst.to_string(),
                expected: top.digest,
                actual: written,
            });
        }
        Ok(outcome)
    }

    /// The manifests under `top`: its children when it is an index, else itself.
    async fn image_manifests(
        &self,
        src: &Reference,
        top: &FetchedManifest,
    ) -> Result<Vec<FetchedManifest>> {
        let ManifestContent::Index(index) = &top.content else {
            return Ok(vec![top.clone()]);
        };
        check_children(index.manifests().len(), src)?;
        let mut v = Vec::new();
        for d in index.manifests() {
            let cd = manifest::descriptor_digest(d, &src.to_string())?;
            let child = Reference::parse(&format!("{}@{cd}", src.name()))?;
            v.push(self.manifest(&child).await?);
        }
        Ok(v)
    }

    /// Copy one manifest's blobs, and the manifest itself by digest unless it is the top one
    /// (written last, under `dst`'s tag).
    async fn copy_image(
        &self,
        src: &Reference,
        dst: &Reference,
        m: &FetchedManifest,
        top: &Digest,
        outcome: &mut CopyOutcome,
    ) -> Result<()> {
        if let ManifestContent::Image(img) = &m.content {
            let mut blobs = vec![manifest::descriptor_digest(img.config(), &src.to_string())?];
            for l in img.layers() {
                blobs.push(manifest::descriptor_digest(l, &src.to_string())?);
            }
            for b in blobs {
                if self.transfer_blob(src, dst, &b).await? {
                    outcome.mounted_blobs += 1;
                } else {
                    outcome.copied_blobs += 1;
                }
            }
        }
        if m.digest != *top {
            let by_digest = Reference::parse(&format!("{}@{}", dst.name(), m.digest))?;
            self.put_manifest(&by_digest, &m.media_type, m.body.clone())
                .await?;
            outcome.manifests += 1;
        }
        Ok(())
    }
}
