//! cosign signatures: finding them and checking them with public keys.
//!
//! [`Client::signature_manifests`] finds the manifests that carry signatures (and, when asked,
//! attestations) of one digest: its referrers (OCI 1.1 Referrers API, else the referrers tag
//! schema) with a cosign artifact type, and cosign's own `sha256-<hex>.sig` (and `.att`) tags.
//! [`Client::verify_signatures`] checks every signature found against a set of
//! [`PublicKey`]s and reports each candidate with why it failed; [`SignatureReport::valid`]
//! says whether one was good. For an image index the index digest's signature is what counts:
//! a signed child does not sign its index.
//!
//! What is checked, per candidate: the signature over the exact signed bytes with one of the
//! keys, then that the signed payload names the digest asked about. Not checked: transparency
//! log inclusion (like `cosign verify --insecure-ignore-tlog`), and keyless (certificate)
//! signatures, which are reported as not verifiable with a key.

mod carry;
mod check;
mod keys;
mod policy;

use ferry_core::{Digest, Reference};
use futures::{StreamExt, TryStreamExt, stream};

use crate::client::{Client, Referrer, ReferrersSource};
use crate::error::{Error, Result};
use crate::manifest::{FetchedManifest, ManifestContent};

pub use carry::SignaturesCopied;
pub use check::COSIGN_SIGN_PREDICATE;
pub use keys::PublicKey;
pub use policy::{KeylessIdentity, PolicyProblem, SignaturePolicy};

/// artifactType of a Sigstore bundle (cosign 3 signatures and attestations).
pub const BUNDLE_ARTIFACT_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
/// artifactType of a legacy cosign signature stored as a referrer (`--registry-referrers-mode
/// oci-1-1`).
pub const COSIGN_SIG_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// Media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING_LAYER: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding a simple-signing signature (base64).
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Referrer annotation cosign puts on a bundle: what the bundle holds (`dsse-envelope`).
const BUNDLE_CONTENT_ANNOTATION: &str = "dev.sigstore.bundle.content";
/// Referrer annotation cosign puts on a bundle: the statement's predicate type.
const BUNDLE_PREDICATE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";
/// The layer annotation holding a keyless signature's certificate.
const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// Largest signature payload or bundle read.
const PAYLOAD_LIMIT: usize = 1 << 20;
/// Most signature manifests read for one digest.
const MAX_SIGNATURE_MANIFESTS: usize = 64;

/// Where a signature manifest was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Location {
    /// Listed by the Referrers API.
    Referrers,
    /// Listed in the referrers tag schema's index (`sha256-<hex>`).
    ReferrersTag,
    /// cosign's tag `sha256-<hex>.sig` (or `.att`).
    CosignTag {
        /// The tag.
        tag: String,
    },
}

/// A manifest carrying signatures or attestations of a digest.
#[derive(Debug, Clone)]
pub struct SignatureManifest {
    /// Where it was found.
    pub location: Location,
    /// The manifest itself (verified against its digest).
    pub manifest: FetchedManifest,
}

/// How a signature is packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// cosign's simple-signing payload with the signature in a layer annotation.
    SimpleSigning,
    /// A Sigstore bundle (v0.3) with a DSSE envelope.
    Bundle,
    /// A DSSE envelope in cosign's `.att` tag (an attestation).
    DsseEnvelope,
}

/// What a verified envelope turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An image signature.
    Signature,
    /// An attestation with this predicate type.
    Attestation {
        /// The in-toto predicate type.
        predicate_type: String,
    },
}

/// Why a candidate is not a valid signature of the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No key verifies the signature over the signed bytes (wrong key, or tampered bytes).
    BadSignature,
    /// The signature is good but the payload names another digest.
    OtherDigest {
        /// The digest(s) the payload names.
        signed: String,
    },
    /// The payload, bundle or annotation is not what cosign writes.
    Malformed(String),
    /// A keyless signature (certificate); ferry verifies with keys only.
    Keyless,
    /// A verified attestation, or an attestation not checked: not a signature.
    Attestation {
        /// Its predicate type, when read.
        predicate_type: String,
    },
    /// The payload or bundle could not be fetched.
    Unreadable(String),
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::BadSignature => f.write_str("the signature does not verify with any given key"),
            Rejection::OtherDigest { signed } => {
                write!(f, "the signed payload names {signed}, not this digest")
            }
            Rejection::Malformed(m) => write!(f, "malformed: {m}"),
            Rejection::Keyless => f.write_str(
                "keyless signature (certificate) — verifying keyless signatures is not supported yet",
            ),
            Rejection::Attestation { predicate_type } => {
                write!(f, "an attestation ({predicate_type}), not a signature")
            }
            Rejection::Unreadable(m) => write!(f, "cannot read it: {m}"),
        }
    }
}

/// One signature (or attestation) found for a digest, and its verdict.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Where its manifest was found.
    pub location: Location,
    /// Its manifest's digest.
    pub manifest: Digest,
    /// The layer holding the payload or bundle.
    pub layer: Digest,
    /// How it is packaged.
    pub format: Format,
    /// `Ok` when it is a valid signature of the digest.
    pub verdict: std::result::Result<(), Rejection>,
}

/// Every candidate found for a digest, verified.
#[derive(Debug, Clone)]
pub struct SignatureReport {
    /// The digest whose signatures were checked.
    pub digest: Digest,
    /// How its referrers were listed.
    pub referrers: ReferrersSource,
    /// Every candidate, in the order found.
    pub candidates: Vec<Candidate>,
    /// HTTP requests the check sent to the registry: the referrers listing (two without the
    /// Referrers API), cosign's `.sig` tag, each signature manifest found through referrers,
    /// each payload or bundle blob read (token requests aside).
    pub requests: usize,
}

impl SignatureReport {
    /// Whether at least one candidate is a valid signature of the digest.
    pub fn valid(&self) -> bool {
        self.candidates.iter().any(|c| c.verdict.is_ok())
    }

    /// Each rejected candidate as `manifest: why`, joined by `; ` (empty when none was).
    pub fn rejections(&self) -> String {
        let lines: Vec<String> = self
            .candidates
            .iter()
            .filter_map(|c| {
                c.verdict
                    .as_ref()
                    .err()
                    .map(|e| format!("{}: {e}", c.manifest))
            })
            .collect();
        lines.join("; ")
    }
}

/// Which signature manifests to look for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wanted {
    /// Attestations too (`.att` tag, in-toto referrers), not only signatures.
    pub attestations: bool,
}

/// Whether a referrer is one cosign writes (a signature, or an attestation when `wanted`).
/// The descriptor's artifact type decides, or cosign's bundle annotations: some registries
/// (go-containerregistry's) list a bundle under its config's media type instead.
fn cosign_artifact(r: &Referrer, wanted: Wanted) -> bool {
    let predicate = r.annotations.get(BUNDLE_PREDICATE_ANNOTATION);
    let bundle = r
        .artifact_type
        .as_deref()
        .is_some_and(|t| t.starts_with(BUNDLE_ARTIFACT_PREFIX))
        || r.annotations.contains_key(BUNDLE_CONTENT_ANNOTATION);
    match r.artifact_type.as_deref() {
        _ if bundle => wanted.attestations || predicate.is_none_or(|p| p == COSIGN_SIGN_PREDICATE),
        Some(COSIGN_SIG_ARTIFACT) => true,
        Some("application/vnd.dsse.envelope.v1+json" | "application/vnd.in-toto+json") => {
            wanted.attestations
        }
        _ => false,
    }
}

impl Client {
    /// The manifests carrying cosign signatures (and attestations, when `wanted`) of `digest`
    /// in `reference`'s repository: its referrers with a cosign artifact type (Referrers API,
    /// else the referrers tag schema) and cosign's `sha256-<hex>.sig` / `.att` tags. The
    /// lookups run together; then each signature manifest is fetched once.
    pub async fn signature_manifests(
        &self,
        reference: &Reference,
        digest: &Digest,
        wanted: Wanted,
    ) -> Result<(ReferrersSource, Vec<SignatureManifest>)> {
        let repo = reference.repository_only();
        let hex = format!("{}-{}", digest.algorithm().as_str(), digest.hex());
        let mut suffixes = vec!["sig"];
        if wanted.attestations {
            suffixes.push("att");
        }
        let tags = stream::iter(suffixes)
            .map(|s| self.cosign_tag(&repo, format!("{hex}.{s}")))
            .buffered(2)
            .try_collect::<Vec<_>>();
        let (referrers, tags) = futures::join!(self.referrers(&repo, digest), tags);
        let (source, referrers) = referrers?;
        let location = match source {
            ReferrersSource::Api => Location::Referrers,
            ReferrersSource::TagSchema => Location::ReferrersTag,
        };
        let wanted_referrers: Vec<&Referrer> = referrers
            .iter()
            .filter(|r| cosign_artifact(r, wanted))
            .take(MAX_SIGNATURE_MANIFESTS)
            .collect();
        let refs: Vec<Reference> = wanted_referrers
            .iter()
            .map(|r| repo.with_digest(r.digest.clone()))
            .collect();
        let mut found: Vec<SignatureManifest> = stream::iter(&refs)
            .map(|r| self.manifest(r))
            .buffered(4)
            .map_ok(|manifest| SignatureManifest {
                location: location.clone(),
                manifest,
            })
            .try_collect()
            .await?;
        found.extend(tags?.into_iter().flatten());
        Ok((source, found))
    }

    /// cosign's tag, if it exists.
    async fn cosign_tag(&self, repo: &Reference, tag: String) -> Result<Option<SignatureManifest>> {
        match self.manifest(&repo.with_tag(&tag)?).await {
            Ok(manifest) => Ok(Some(SignatureManifest {
                location: Location::CosignTag { tag },
                manifest,
            })),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Find `reference`'s signatures and check each against `keys`. `reference` must carry a
    /// digest (resolve a tag first): that digest is the one the payload must name.
    pub async fn verify_signatures(
        &self,
        reference: &Reference,
        keys: &[PublicKey],
    ) -> Result<SignatureReport> {
        let digest = reference.digest().cloned().ok_or_else(|| Error::Invalid {
            what: "reference",
            url: reference.to_string(),
            reason: "verifying signatures needs a digest (resolve the tag first)".into(),
        })?;
        let (referrers, manifests) = self
            .signature_manifests(reference, &digest, Wanted::default())
            .await?;
        // The referrers listing (a 404 then the tag schema's tag without the API) and the tag.
        let mut requests = match referrers {
            ReferrersSource::Api => 1,
            ReferrersSource::TagSchema => 2,
        } + 1;
        requests += manifests
            .iter()
            .filter(|m| !matches!(m.location, Location::CosignTag { .. }))
            .count();
        let mut candidates = Vec::new();
        for m in &manifests {
            let (found, reads) = self.check_manifest(reference, &digest, m, keys).await;
            candidates.extend(found);
            requests += reads;
        }
        Ok(SignatureReport {
            digest,
            referrers,
            candidates,
            requests,
        })
    }

    /// Every candidate layer of one signature manifest, verified; and the blobs read for it.
    async fn check_manifest(
        &self,
        reference: &Reference,
        digest: &Digest,
        m: &SignatureManifest,
        keys: &[PublicKey],
    ) -> (Vec<Candidate>, usize) {
        let ManifestContent::Image(img) = &m.manifest.content else {
            return (Vec::new(), 0);
        };
        let repo = reference.repository_only();
        let mut out = Vec::new();
        let mut reads = 0;
        for layer in img.layers() {
            let Ok(layer_digest) = Digest::parse(layer.digest().as_ref()) else {
                continue;
            };
            let media_type = layer.media_type().to_string();
            let annotations = layer.annotations().clone().unwrap_or_default();
            let format = if media_type.starts_with(BUNDLE_ARTIFACT_PREFIX) {
                Format::Bundle
            } else if media_type == SIMPLE_SIGNING_LAYER {
                Format::SimpleSigning
            } else if media_type == "application/vnd.dsse.envelope.v1+json" {
                Format::DsseEnvelope
            } else {
                continue;
            };
            let verdict = match format {
                Format::DsseEnvelope => Err(Rejection::Attestation {
                    predicate_type: annotations
                        .get("predicateType")
                        .cloned()
                        .unwrap_or_else(|| "unknown predicate".into()),
                }),
                _ if annotations.contains_key(CERTIFICATE_ANNOTATION) => Err(Rejection::Keyless),
                _ => {
                    reads += 1;
                    match self.blob(&repo, &layer_digest, PAYLOAD_LIMIT).await {
                        Err(e) => Err(Rejection::Unreadable(e.to_string())),
                        Ok(body) => judge(format, &body, &annotations, digest, keys),
                    }
                }
            };
            out.push(Candidate {
                location: m.location.clone(),
                manifest: m.manifest.digest.clone(),
                layer: layer_digest,
                format,
                verdict,
            });
        }
        (out, reads)
    }
}

/// The verdict on one fetched payload or bundle.
fn judge(
    format: Format,
    body: &[u8],
    annotations: &std::collections::HashMap<String, String>,
    digest: &Digest,
    keys: &[PublicKey],
) -> std::result::Result<(), Rejection> {
    match format {
        Format::SimpleSigning => {
            let Some(sig) = annotations.get(SIGNATURE_ANNOTATION) else {
                return Err(Rejection::Malformed(format!(
                    "no {SIGNATURE_ANNOTATION} annotation on the layer"
                )));
            };
            check::simple_signing(body, sig, digest, keys)
        }
        Format::Bundle => match check::bundle(body, digest, keys)? {
            Kind::Signature => Ok(()),
            Kind::Attestation { predicate_type } => Err(Rejection::Attestation { predicate_type }),
        },
        Format::DsseEnvelope => Err(Rejection::Attestation {
            predicate_type: "unknown predicate".into(),
        }),
    }
}
