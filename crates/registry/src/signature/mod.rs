//! cosign signatures: finding them and checking them with public keys.
//!
//! [`Client::signature_manifests`] finds the manifests that carry signatures (and, when asked,
//! attestations) of one digest: its referrers (OCI 1.1 Referrers API, else the referrers tag
//! schema) with a cosign artifact type, and cosign's own `sha256-<hex>.sig` (and `.att`) tags.
//! [`Client::verify_signatures`] checks every signature found against a [`Trust`] — public
//! keys ([`PublicKey`]) and/or keyless identities under a Sigstore trusted root ([`Keyless`])
//! — and reports each candidate with why it failed; [`SignatureReport::valid`] says whether one
//! was good. For an image index the index digest's signature is what counts: a signed child
//! does not sign its index.
//!
//! What is checked, per candidate: with keys, the signature over the exact signed bytes with
//! one of the keys, then that the signed payload names the digest asked about (no transparency
//! log, like `cosign verify --key … --insecure-ignore-tlog`); keyless, a Sigstore bundle's
//! certificate chain, SCT, Rekor entry and signature with sigstore-verify, then the signer's
//! identity and issuer (see [`keyless`](Keyless)).

mod carry;
mod check;
mod keyless;
mod keys;
mod malformed;
mod merge;
mod policy;

use ferry_core::{Digest, Reference};
use futures::{StreamExt, TryStreamExt, stream};

use crate::client::{Client, Referrer, ReferrersSource};
use crate::error::{Error, Result};
use crate::manifest::{FetchedManifest, ManifestContent};
use crate::problem::InvalidProblem;

pub use carry::SignaturesCopied;
pub use check::COSIGN_SIGN_PREDICATE;
pub use keyless::{CertificateClaims, Identity, Keyless, KeylessFailure, Matcher, RootSource};
pub use keys::PublicKey;
pub use malformed::{FetchFailure, MalformedProblem};
pub use merge::MergeProblem;
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
        /// The digest(s) the payload names, as written (`sha256:…`).
        signed: Vec<String>,
    },
    /// The payload, bundle or annotation is not what cosign writes.
    Malformed(MalformedProblem),
    /// A keyless signature (certificate) that is not valid under the keyless identities.
    Keyless(KeylessFailure),
    /// A signature made with a key, and the check lists no public keys.
    NoKeys,
    /// A verified attestation, or an attestation not checked: not a signature.
    Attestation {
        /// Its predicate type, when read.
        predicate_type: String,
    },
    /// The payload or bundle could not be fetched.
    Unreadable(FetchFailure),
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::BadSignature => {
                f.write_str("the signature does not verify with any given key")
            }
            Rejection::OtherDigest { signed } => {
                let signed = signed.join(", ");
                write!(f, "the signed payload names {signed}, not this digest")
            }
            Rejection::Malformed(m) => write!(f, "malformed: {m}"),
            Rejection::Keyless(why) => write!(f, "{why}"),
            Rejection::NoKeys => {
                f.write_str("signed with a key, and this check lists no public keys")
            }
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
    /// A keyless signature's signer, when its certificate verified.
    pub signer: Option<CertificateClaims>,
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
    /// HTTP requests the check sent to the registry: the referrers listing (two the first
    /// time on a registry without the Referrers API, one afterwards), cosign's `.sig` tag, each signature manifest found through referrers,
    /// each payload or bundle blob read (token requests aside).
    pub requests: usize,
}

impl SignatureReport {
    /// Whether at least one candidate is a valid signature of the digest.
    pub fn valid(&self) -> bool {
        self.candidates.iter().any(|c| c.verdict.is_ok())
    }

    /// Each rejected candidate: its manifest and why (empty when none was).
    pub fn rejected(&self) -> Rejections {
        let rejected = self.candidates.iter().filter_map(|c| {
            let why = c.verdict.as_ref().err()?;
            Some((c.manifest.clone(), why.clone()))
        });
        Rejections(rejected.collect())
    }
}

/// Rejected signature candidates, each its manifest digest and why; reads
/// `manifest: why; manifest: why`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rejections(pub Vec<(Digest, Rejection)>);

impl Rejections {
    /// Whether no candidate was rejected.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Rejections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (manifest, why)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{manifest}: {why}")?;
        }
        Ok(())
    }
}

/// What a signature must verify with: any one of the public keys, or (keyless) a certificate
/// naming one of the identities under the trusted root.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Public keys (cosign.pub).
    pub keys: Vec<PublicKey>,
    /// Keyless identities and their trusted root.
    pub keyless: Option<Keyless>,
}

impl Trust {
    /// What the signature policy document `file` trusts ([`SignaturePolicy::load`], then
    /// [`SignaturePolicy::trust`]).
    pub fn from_policy_file(file: &std::path::Path) -> crate::error::Result<Trust> {
        SignaturePolicy::load(file)?.trust()
    }
}

impl From<Vec<PublicKey>> for Trust {
    fn from(keys: Vec<PublicKey>) -> Trust {
        Trust {
            keys,
            keyless: None,
        }
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
        let (source, found, _) = self
            .signature_manifests_counted(reference, digest, wanted)
            .await?;
        Ok((source, found))
    }

    /// [`Client::signature_manifests`] and the requests it sent.
    async fn signature_manifests_counted(
        &self,
        reference: &Reference,
        digest: &Digest,
        wanted: Wanted,
    ) -> Result<(ReferrersSource, Vec<SignatureManifest>, usize)> {
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
        // One round: the referrers listing (the tag schema straight away once the registry is
        // known to have no Referrers API) and cosign's tags, concurrently.
        let (referrers, tags) = futures::join!(self.referrers_counted(&repo, digest), tags);
        let (source, referrers, mut requests) = referrers?;
        requests += if wanted.attestations { 2 } else { 1 };
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
        requests += found.len();
        found.extend(tags?.into_iter().flatten());
        Ok((source, found, requests))
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

    /// Find `reference`'s signatures and check each against `trust`. `reference` must carry a
    /// digest (resolve a tag first): that digest is the one the payload must name.
    pub async fn verify_signatures(
        &self,
        reference: &Reference,
        trust: &Trust,
    ) -> Result<SignatureReport> {
        let digest = reference.digest().cloned().ok_or_else(|| Error::Invalid {
            what: "reference",
            url: reference.to_string(),
            problem: InvalidProblem::NoDigest,
        })?;
        let (referrers, manifests, mut requests) = self
            .signature_manifests_counted(reference, &digest, Wanted::default())
            .await?;
        let mut candidates = Vec::new();
        for m in &manifests {
            let (found, reads) = self.check_manifest(reference, &digest, m, trust).await;
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
        trust: &Trust,
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
            let (verdict, signer) = match format {
                Format::DsseEnvelope => (
                    Err(Rejection::Attestation {
                        predicate_type: annotations
                            .get("predicateType")
                            .cloned()
                            .unwrap_or_else(|| "unknown predicate".into()),
                    }),
                    None,
                ),
                _ if annotations.contains_key(CERTIFICATE_ANNOTATION) => {
                    let why = match trust.keyless {
                        Some(_) => KeylessFailure::LegacyFormat,
                        None => KeylessFailure::NotConfigured,
                    };
                    (Err(Rejection::Keyless(why)), None)
                }
                _ => {
                    reads += 1;
                    match self.blob(&repo, &layer_digest, PAYLOAD_LIMIT).await {
                        Err(e) => (Err(Rejection::Unreadable(FetchFailure::new(e))), None),
                        Ok(body) => judge(format, &body, &annotations, digest, trust),
                    }
                }
            };
            out.push(Candidate {
                location: m.location.clone(),
                manifest: m.manifest.digest.clone(),
                layer: layer_digest,
                format,
                signer,
                verdict,
            });
        }
        (out, reads)
    }
}

/// The verdict on one fetched payload or bundle, and a keyless signer when its certificate
/// verified.
fn judge(
    format: Format,
    body: &[u8],
    annotations: &std::collections::HashMap<String, String>,
    digest: &Digest,
    trust: &Trust,
) -> (
    std::result::Result<(), Rejection>,
    Option<CertificateClaims>,
) {
    let keys = |r: std::result::Result<Kind, Rejection>| match r {
        Ok(Kind::Signature) => Ok(()),
        Ok(Kind::Attestation { predicate_type }) => Err(Rejection::Attestation { predicate_type }),
        Err(e) => Err(e),
    };
    match format {
        Format::SimpleSigning => {
            let Some(sig) = annotations.get(SIGNATURE_ANNOTATION) else {
                let why = MalformedProblem::NoSignatureAnnotation;
                return (Err(Rejection::Malformed(why)), None);
            };
            if trust.keys.is_empty() {
                return (Err(Rejection::NoKeys), None);
            }
            (check::simple_signing(body, sig, digest, &trust.keys), None)
        }
        Format::Bundle => match check::bundle_material(body) {
            Err(e) => (Err(e), None),
            Ok(check::Material::Key) if trust.keys.is_empty() => (Err(Rejection::NoKeys), None),
            Ok(check::Material::Key) => (keys(check::bundle(body, digest, &trust.keys)), None),
            Ok(check::Material::Certificate(bundle)) => match &trust.keyless {
                None => (Err(Rejection::Keyless(KeylessFailure::NotConfigured)), None),
                Some(k) => match k.verify(&bundle, digest) {
                    Ok((kind, claims)) => (keys(Ok(kind)), Some(claims)),
                    Err(e) => (Err(e), None),
                },
            },
        },
        Format::DsseEnvelope => (
            Err(Rejection::Attestation {
                predicate_type: "unknown predicate".into(),
            }),
            None,
        ),
    }
}
