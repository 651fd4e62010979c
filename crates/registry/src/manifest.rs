//! What ferry reads out of manifests and indexes.

use std::collections::HashMap;

use ferry_core::{Digest, Platform, Reference};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use crate::error::{Error, Result};
use crate::problem::InvalidProblem;
use crate::ratelimit::RateLimit;

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The `Accept` header sent for every manifest request: all four types, always.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Whether a media type is a multi-platform index (OCI index or Docker list).
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// The answer to "what digest does the registry serve for this reference".
#[derive(Debug, Clone, serde::Serialize)]
pub struct Resolved {
    /// The reference asked about.
    pub reference: Reference,
    /// The digest served (the index digest for a multi-arch tag, or the platform's manifest).
    pub digest: Digest,
    /// The manifest's media type.
    pub media_type: String,
    /// The manifest's size in bytes, when known.
    pub size: Option<u64>,
    /// The platform, when a platform was asked for (or the manifest is single-platform and its
    /// platform was read).
    pub platform: Option<Platform>,
    /// Rate-limit headers of the answer.
    pub rate_limit: Option<RateLimit>,
}

/// A manifest fetched with GET, verified against its digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The digest of the body (verified).
    pub digest: Digest,
    /// The media type (from the body's `mediaType`, else `Content-Type`).
    pub media_type: String,
    /// The raw bytes.
    pub body: bytes::Bytes,
    /// The decoded content.
    pub content: ManifestContent,
    /// Rate-limit headers of the answer.
    pub rate_limit: Option<RateLimit>,
}

impl FetchedManifest {
    /// The annotations of the manifest or index itself (not those of an index's entries).
    pub fn annotations(&self) -> Option<&HashMap<String, String>> {
        match &self.content {
            ManifestContent::Image(m) => m.annotations().as_ref(),
            ManifestContent::Index(i) => i.annotations().as_ref(),
        }
    }

    /// One annotation of the manifest or index itself, as written (possibly blank).
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations()?.get(key).map(String::as_str)
    }

    /// The digest of an image manifest's config blob; `None` for an index.
    pub fn config_digest(&self) -> Result<Option<Digest>> {
        match &self.content {
            ManifestContent::Image(m) => {
                descriptor_digest(m.config(), &self.digest.to_string()).map(Some)
            }
            ManifestContent::Index(_) => Ok(None),
        }
    }

    /// The platforms an index lists, in its order, attestations left out (buildx's
    /// `unknown/unknown` entries and `vnd.docker.reference.type: attestation-manifest` ones are
    /// not platforms); empty for an image manifest.
    pub fn platforms(&self) -> Result<Vec<PlatformManifest>> {
        match &self.content {
            ManifestContent::Index(i) => Ok(index_entries(i, &self.digest.to_string())?.0),
            ManifestContent::Image(_) => Ok(Vec::new()),
        }
    }
}

/// A decoded manifest.
#[derive(Debug, Clone)]
pub enum ManifestContent {
    /// A multi-platform index / manifest list.
    Index(Box<ImageIndex>),
    /// A single-platform image manifest.
    Image(Box<ImageManifest>),
}

/// One platform of an image.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlatformManifest {
    /// `os/arch[/variant]` as the registry spells it.
    pub platform: Platform,
    /// The platform manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

/// An attestation manifest (buildx provenance/SBOM): listed in an index, not a platform.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Attestation {
    /// The attestation manifest's digest.
    pub digest: Digest,
    /// The platform manifest it describes (`vnd.docker.reference.digest`), when named.
    pub refers_to: Option<Digest>,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Everything `inspect` reports about a reference.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspection {
    /// The reference asked about.
    pub reference: Reference,
    /// The digest the registry serves for it.
    pub digest: Digest,
    /// Media type of the top-level manifest.
    pub media_type: String,
    /// Size of the top-level manifest in bytes.
    pub size: u64,
    /// The platforms it provides.
    pub platforms: Vec<PlatformManifest>,
    /// Attestation manifests (never counted as platforms).
    pub attestations: Vec<Attestation>,
    /// Rate-limit headers of the manifest answer.
    pub rate_limit: Option<RateLimit>,
}

impl Inspection {
    /// The manifest for `platform`, if the image has it.
    pub fn platform(&self, platform: &Platform) -> Option<&PlatformManifest> {
        self.platforms.iter().find(|p| p.platform.matches(platform))
    }

    /// Which of `wanted` are present and which are missing.
    pub fn check_platforms(&self, wanted: &[Platform]) -> PlatformCheck {
        let (present, missing) = wanted
            .iter()
            .cloned()
            .partition(|w| self.platform(w).is_some());
        PlatformCheck {
            digest: self.digest.clone(),
            present,
            missing,
        }
    }
}

/// The answer to "does this image provide these platforms".
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlatformCheck {
    /// The digest checked.
    pub digest: Digest,
    /// Requested platforms it has.
    pub present: Vec<Platform>,
    /// Requested platforms it lacks.
    pub missing: Vec<Platform>,
}

impl PlatformCheck {
    /// Whether every requested platform is there.
    pub fn complete(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Decode a manifest body by its media type (falling back to sniffing `manifests`/`config`).
pub(crate) fn decode(
    body: &[u8],
    content_type: Option<&str>,
    url: &str,
) -> Result<(String, ManifestContent)> {
    let invalid = |problem: InvalidProblem| Error::Invalid {
        what: "manifest",
        url: url.to_string(),
        problem,
    };
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
        manifests: Option<serde::de::IgnoredAny>,
        config: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe =
        serde_json::from_slice(body).map_err(|e| invalid(InvalidProblem::NotJson(e)))?;
    if probe.schema_version != Some(2) {
        return Err(invalid(InvalidProblem::SchemaVersion(probe.schema_version)));
    }
    let content_type = content_type
        .map(|c| c.split(';').next().unwrap_or_default().trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "text/plain");
    let media_type = match (probe.media_type, content_type) {
        (Some(m), _) => m,
        (None, Some(c)) => c.to_string(),
        (None, None) if probe.manifests.is_some() => OCI_INDEX.to_string(),
        (None, None) if probe.config.is_some() => OCI_MANIFEST.to_string(),
        (None, None) => {
            return Err(invalid(InvalidProblem::NoMediaType));
        }
    };
    let content = if is_index(&media_type) {
        ManifestContent::Index(Box::new(
            serde_json::from_slice(body).map_err(|e| invalid(InvalidProblem::Index(e)))?,
        ))
    } else if media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST {
        ManifestContent::Image(Box::new(
            serde_json::from_slice(body).map_err(|e| invalid(InvalidProblem::ImageManifest(e)))?,
        ))
    } else {
        return Err(invalid(InvalidProblem::UnsupportedMediaType { media_type }));
    };
    Ok((media_type, content))
}

/// Split an index's entries into platforms and attestations.
pub(crate) fn index_entries(
    index: &ImageIndex,
    url: &str,
) -> Result<(Vec<PlatformManifest>, Vec<Attestation>)> {
    let mut platforms = Vec::new();
    let mut attestations = Vec::new();
    for d in index.manifests() {
        let digest = descriptor_digest(d, url)?;
        let annotations = d.annotations().as_ref();
        let ref_type = annotations.and_then(|a| a.get("vnd.docker.reference.type"));
        let plat = d.platform().as_ref().map(|p| {
            Platform::new(
                &p.os().to_string(),
                &p.architecture().to_string(),
                p.variant().as_deref(),
            )
        });
        let is_attestation = ref_type.is_some_and(|t| t == "attestation-manifest")
            || plat
                .as_ref()
                .is_some_and(|p| p.os() == "unknown" && p.architecture() == "unknown");
        if is_attestation {
            let refers_to = annotations
                .and_then(|a| a.get("vnd.docker.reference.digest"))
                .and_then(|s| Digest::parse(s).ok());
            attestations.push(Attestation {
                digest,
                refers_to,
                media_type: d.media_type().to_string(),
                size: d.size(),
            });
        } else if let Some(platform) = plat {
            platforms.push(PlatformManifest {
                platform,
                digest,
                media_type: d.media_type().to_string(),
                size: d.size(),
            });
        }
    }
    Ok((platforms, attestations))
}

pub(crate) fn descriptor_digest(d: &Descriptor, url: &str) -> Result<Digest> {
    Digest::parse(d.digest().as_ref()).map_err(|e| Error::Invalid {
        what: "manifest",
        url: url.to_string(),
        problem: InvalidProblem::DescriptorDigest(Box::new(e)),
    })
}

/// The part of an image config ferry reads.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ImageConfigSummary {
    /// `os`.
    #[serde(default)]
    pub os: String,
    /// `architecture`.
    #[serde(default)]
    pub architecture: String,
    /// `variant`.
    #[serde(default)]
    pub variant: Option<String>,
    /// `created` (RFC 3339), when set.
    #[serde(default)]
    pub created: Option<String>,
    /// `config.Labels` (the image's `LABEL`s), when set.
    #[serde(default, rename = "config")]
    pub run_config: Option<RunConfig>,
}

/// The part of an image config's `config` (how to run it) ferry reads.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RunConfig {
    /// `Labels`.
    #[serde(default, rename = "Labels")]
    pub labels: Option<HashMap<String, String>>,
}

impl ImageConfigSummary {
    /// One label of the image (`config.Labels`), as written (possibly blank).
    pub fn label(&self, key: &str) -> Option<&str> {
        self.run_config
            .as_ref()?
            .labels
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_by_media_type_and_sniffing() {
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        let (m, c) = decode(idx, None, "u").unwrap();
        assert_eq!(m, OCI_INDEX);
        assert!(matches!(c, ManifestContent::Index(_)));
        let (m, _) = decode(idx, Some(DOCKER_LIST), "u").unwrap();
        assert_eq!(m, DOCKER_LIST);
        let e = decode(br#"{"schemaVersion":1}"#, None, "http://x").unwrap_err();
        assert!(e.to_string().contains("http://x"));
        assert!(decode(b"[]", None, "u").is_err());
        assert!(decode(br#"{"schemaVersion":2,"mediaType":"text/x"}"#, None, "u").is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&body, None, "u");
        }

        #[test]
        fn decode_never_panics_on_jsonish(s in r#"\{"schemaVersion":2,"(manifests|config|mediaType)":[\[\]{}"a-z0-9:,]{0,60}\}"#) {
            let _ = decode(s.as_bytes(), None, "u");
        }
    }
}
