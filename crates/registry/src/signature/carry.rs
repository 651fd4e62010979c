//! Carrying a digest's signatures and attestations along when it is copied to another
//! repository (`promote`, `tag`): each referrer manifest is copied by digest (its subject, the
//! promoted digest, is already there) and, where the destination has no Referrers API, added to
//! the destination's referrers tag-schema index; cosign's `.sig`/`.att` tags are copied as tags,
//! merged with the destination's tag when it already holds other signatures.

use bytes::Bytes;
use ferry_core::{Digest, Reference};
use serde_json::{Value, json};

use super::{Location, SignatureManifest, Wanted};
use crate::client::{Client, ReferrersSource, referrers_tag};
use crate::error::{Error, Result};
use crate::manifest::OCI_INDEX;
use crate::problem::InvalidProblem;

/// What [`Client::copy_signatures`] copied.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SignaturesCopied {
    /// Referrer manifests (signatures, attestations) copied.
    pub referrers: usize,
    /// cosign tags (`sha256-<hex>.sig`, `.att`) copied.
    pub tags: Vec<String>,
    /// Whether the destination's referrers tag-schema index was written (no Referrers API).
    pub tag_schema_index: bool,
}

impl Client {
    /// Copy `digest`'s cosign signatures and attestations from `src`'s repository to `dst`'s
    /// (same registry). Nothing to do within one repository. `digest` must already be in `dst`.
    pub async fn copy_signatures(
        &self,
        src: &Reference,
        dst: &Reference,
        digest: &Digest,
    ) -> Result<SignaturesCopied> {
        let mut done = SignaturesCopied::default();
        let (src_repo, dst_repo) = (src.repository_only(), dst.repository_only());
        if src_repo.name() == dst_repo.name() {
            return Ok(done);
        }
        let wanted = Wanted { attestations: true };
        let (_, found) = self.signature_manifests(&src_repo, digest, wanted).await?;
        let mut referrers = Vec::new();
        for m in &found {
            let from = src_repo.with_digest(m.manifest.digest.clone());
            match &m.location {
                Location::CosignTag { tag } => {
                    self.copy_cosign_tag(&src_repo, &dst_repo, m, tag).await?;
                    done.tags.push(tag.clone());
                }
                Location::Referrers | Location::ReferrersTag => {
                    self.copy(&from, &dst_repo.with_digest(m.manifest.digest.clone()))
                        .await?;
                    referrers.push(m);
                    done.referrers += 1;
                }
            }
        }
        if !referrers.is_empty() {
            done.tag_schema_index = self.index_referrers(&dst_repo, digest, &referrers).await?;
        }
        Ok(done)
    }

    /// Copy cosign's `tag`; where the destination's tag already holds other signatures, keep
    /// them and add the source's (no duplicates) instead of overwriting them.
    async fn copy_cosign_tag(
        &self,
        src_repo: &Reference,
        dst_repo: &Reference,
        m: &SignatureManifest,
        tag: &str,
    ) -> Result<()> {
        let from = src_repo.with_digest(m.manifest.digest.clone());
        let to = dst_repo.with_tag(tag)?;
        let existing = match self.manifest(&to).await {
            Ok(e) if e.digest == m.manifest.digest => return Ok(()),
            Ok(e) => e,
            Err(Error::NotFound { .. }) => return self.copy(&from, &to).await.map(drop),
            Err(e) => return Err(e),
        };
        let bad = |problem| Error::SignatureMerge {
            tag: to.to_string(),
            problem,
        };
        // The source's layers and config into the destination repository first.
        self.copy(&from, &dst_repo.with_digest(m.manifest.digest.clone()))
            .await?;
        let dst_cfg = config_digest(&existing.body, "destination").map_err(bad)?;
        let src_cfg = config_digest(&m.manifest.body, "source").map_err(bad)?;
        let dst_cfg = self.blob(dst_repo, &dst_cfg, super::PAYLOAD_LIMIT).await?;
        let src_cfg = self.blob(src_repo, &src_cfg, super::PAYLOAD_LIMIT).await?;
        let merged = super::merge::merge(&existing.body, &dst_cfg, &m.manifest.body, &src_cfg)
            .map_err(bad)?;
        let Some((mut manifest, config)) = merged else {
            return Ok(());
        };
        let config = Bytes::from(serde_json::to_vec(&config).unwrap_or_default());
        let size = config.len();
        let digest = self.push_blob(dst_repo, config).await?;
        manifest["config"]["digest"] = json!(digest.to_string());
        manifest["config"]["size"] = json!(size);
        let body = Bytes::from(serde_json::to_vec(&manifest).unwrap_or_default());
        self.put_manifest(&to, &existing.media_type, body).await?;
        Ok(())
    }

    /// Where the destination lists referrers by the tag schema (no Referrers API, or the API
    /// does not list what was pushed), add the copied ones to its `<alg>-<hex>` index.
    async fn index_referrers(
        &self,
        repo: &Reference,
        digest: &Digest,
        copied: &[&SignatureManifest],
    ) -> Result<bool> {
        let (source, listed) = self.referrers(repo, digest).await?;
        let missing: Vec<&&SignatureManifest> = copied
            .iter()
            .filter(|m| !listed.iter().any(|r| r.digest == m.manifest.digest))
            .collect();
        if source == ReferrersSource::Api || missing.is_empty() {
            return Ok(false);
        }
        let tag = repo.with_tag(&referrers_tag(digest))?;
        let mut index: Value = match self.manifest(&tag).await {
            Ok(m) => serde_json::from_slice(&m.body).map_err(|e| Error::Invalid {
                what: "referrers index",
                url: tag.to_string(),
                problem: InvalidProblem::Json(e),
            })?,
            Err(Error::NotFound { .. }) => {
                json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
            }
            Err(e) => return Err(e),
        };
        let Some(entries) = index["manifests"].as_array_mut() else {
            return Err(Error::Invalid {
                what: "referrers index",
                url: tag.to_string(),
                problem: InvalidProblem::NoManifestsList,
            });
        };
        for m in missing {
            entries.push(descriptor(m));
        }
        let body = Bytes::from(serde_json::to_vec(&index).unwrap_or_default());
        self.put_manifest(&tag, OCI_INDEX, body).await?;
        Ok(true)
    }
}

/// The index descriptor of a referrer manifest: media type, digest, size, artifact type (its
/// own, else its config's media type) and annotations.
fn descriptor(m: &SignatureManifest) -> Value {
    let body: Value = serde_json::from_slice(&m.manifest.body).unwrap_or(Value::Null);
    let artifact = body
        .get("artifactType")
        .or_else(|| body.get("config").and_then(|c| c.get("mediaType")))
        .cloned();
    let mut d = json!({
        "mediaType": m.manifest.media_type,
        "digest": m.manifest.digest.to_string(),
        "size": m.manifest.body.len(),
    });
    if let Some(a) = artifact {
        d["artifactType"] = a;
    }
    if let Some(a) = body.get("annotations") {
        d["annotations"] = a.clone();
    }
    d
}

/// The config digest of an image manifest.
fn config_digest(
    manifest: &[u8],
    which: &'static str,
) -> std::result::Result<Digest, super::merge::MergeProblem> {
    let v: Value = serde_json::from_slice(manifest)
        .map_err(|_| super::merge::MergeProblem::NotAnImageManifest { which })?;
    v["config"]["digest"]
        .as_str()
        .and_then(|d| Digest::parse(d).ok())
        .ok_or(super::merge::MergeProblem::NotAnImageManifest { which })
}
