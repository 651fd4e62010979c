//! Keyless (Fulcio certificate) signatures, checked with sigstore-verify (sigstore-rust) against
//! a Sigstore trusted root, offline: the certificate chain to one of the root's Fulcio CAs at
//! the signing time, its embedded SCT from one of the root's CT logs, the Rekor entry (signed
//! entry timestamp, inclusion proof and checkpoint, and that the entry describes this bundle),
//! the DSSE signature with the certificate's key, and that the statement names the digest.
//! ferry then matches the certificate's identity (SAN) and OIDC issuer against the policy's
//! identities — exact, or a regular expression searched anywhere in the value (unanchored), as
//! cosign's `--certificate-identity-regexp` does with Go's `regexp.MatchString`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_core::Digest;
use sigstore_verify::trust_root::{SIGSTORE_PRODUCTION_TRUSTED_ROOT, TrustedRoot};
use sigstore_verify::types::{Bundle, SignatureContent};
use sigstore_verify::{VerificationPolicy, Verifier};

use super::{Kind, MalformedProblem, Rejection};
use crate::error::{Error, Result};

/// How one certificate field must read.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Exactly this value.
    Exact(String),
    /// A value this regular expression matches somewhere (unanchored, like cosign).
    Regex(regex::Regex),
}

impl Matcher {
    /// A regular expression; `field` names the flag or policy field in the error.
    pub fn regex(field: &'static str, pattern: &str) -> Result<Matcher> {
        regex::Regex::new(pattern)
            .map(Matcher::Regex)
            .map_err(|source| Error::IdentityPattern {
                field,
                pattern: pattern.to_string(),
                source,
            })
    }

    /// Whether `value` satisfies it.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(s) => s == value,
            Matcher::Regex(r) => r.is_match(value),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matcher::Exact(s) => write!(f, "{s:?}"),
            Matcher::Regex(r) => write!(f, "matching /{}/", r.as_str()),
        }
    }
}

/// One signer a keyless policy accepts: the certificate's identity and its OIDC issuer.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate's identity (its SAN: an email, or a URI such as a workflow's).
    pub subject: Matcher,
    /// The OIDC issuer that vouched for it (Fulcio's issuer extension).
    pub issuer: Matcher,
}

/// Where a trusted root came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSource {
    /// A `trusted_root.json` file.
    File(PathBuf),
    /// The Sigstore public-good root embedded in sigstore-verify (as released with it).
    Embedded,
}

impl std::fmt::Display for RootSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootSource::File(p) => write!(f, "{}", p.display()),
            RootSource::Embedded => f.write_str("the embedded Sigstore public-good root"),
        }
    }
}

/// Keyless verification: identities, under a trusted root.
#[derive(Clone)]
pub struct Keyless {
    verifier: Arc<Verifier>,
    source: RootSource,
    identities: Vec<Identity>,
}

impl std::fmt::Debug for Keyless {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyless")
            .field("root", &self.source.to_string())
            .field("identities", &self.identities)
            .finish()
    }
}

/// The signer a keyless signature's certificate names (claims, verified only with the chain).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertificateClaims {
    /// The SAN (email or URI).
    pub identity: Option<String>,
    /// The OIDC issuer.
    pub issuer: Option<String>,
}

/// Why a keyless signature is not valid.
#[derive(Debug, Clone)]
pub enum KeylessFailure {
    /// The check has no keyless identities (it verifies with keys only).
    NotConfigured,
    /// A legacy keyless signature (certificate in a `.sig` layer annotation), not a bundle.
    LegacyFormat,
    /// sigstore-verify refused the bundle (chain, SCT, log entry, signature, binding).
    Verification(Arc<sigstore_verify::Error>),
    /// Verified, but no identity of the policy names this signer.
    Identity(CertificateClaims),
}

impl PartialEq for KeylessFailure {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (KeylessFailure::NotConfigured, KeylessFailure::NotConfigured)
            | (KeylessFailure::LegacyFormat, KeylessFailure::LegacyFormat) => true,
            (KeylessFailure::Verification(a), KeylessFailure::Verification(b)) => Arc::ptr_eq(a, b),
            (KeylessFailure::Identity(a), KeylessFailure::Identity(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for KeylessFailure {}

impl std::fmt::Display for KeylessFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeylessFailure::NotConfigured => f.write_str(
                "keyless signature (certificate); this check has no keyless identities \
                 (--certificate-identity…/--certificate-oidc-issuer…, or keyless: in the policy)",
            ),
            KeylessFailure::LegacyFormat => f.write_str(
                "legacy keyless signature (certificate in a layer annotation): only Sigstore \
                 bundles are verified keyless",
            ),
            KeylessFailure::Verification(e) => write!(f, "keyless verification failed: {e}"),
            KeylessFailure::Identity(c) => write!(
                f,
                "signed by {} (issuer {}), which no given identity matches",
                c.identity.as_deref().unwrap_or("no identity"),
                c.issuer.as_deref().unwrap_or("none")
            ),
        }
    }
}

impl Keyless {
    /// Keyless checking for `identities` under the trusted root `json` read from `source`.
    pub fn new(json: &str, source: RootSource, identities: Vec<Identity>) -> Result<Keyless> {
        let bad = |e: sigstore_verify::Error| Error::TrustedRoot {
            name: source.to_string(),
            source: Box::new(e),
        };
        let root = TrustedRoot::from_json(json).map_err(|e| bad(e.into()))?;
        let verifier = Verifier::new(&root).map_err(bad)?;
        Ok(Keyless {
            verifier: Arc::new(verifier),
            source,
            identities,
        })
    }

    /// Keyless checking under the trusted root in `file`, or, without one, the Sigstore
    /// public-good root embedded in sigstore-verify (never fetched).
    pub fn from_root_file(file: Option<&Path>, identities: Vec<Identity>) -> Result<Keyless> {
        match file {
            None => Keyless::embedded(identities),
            Some(f) => {
                let json = crate::error::read_verification_file("trusted root", f)?;
                Keyless::new(&json, RootSource::File(f.to_path_buf()), identities)
            }
        }
    }

    /// Keyless checking under the Sigstore public-good root embedded in sigstore-verify.
    pub fn embedded(identities: Vec<Identity>) -> Result<Keyless> {
        Keyless::new(
            SIGSTORE_PRODUCTION_TRUSTED_ROOT,
            RootSource::Embedded,
            identities,
        )
    }

    /// Where the trusted root came from.
    pub fn source(&self) -> &RootSource {
        &self.source
    }

    /// Verify a Sigstore bundle with a certificate for `digest`: what it is (signature or
    /// attestation) and whom it names, or why it is not valid.
    pub(super) fn verify(
        &self,
        bundle: &Bundle,
        digest: &Digest,
    ) -> std::result::Result<(Kind, CertificateClaims), Rejection> {
        let hash = sigstore_verify::types::Sha256Hash::from_hex(digest.hex())
            .map_err(|_| Rejection::Malformed(MalformedProblem::NotSha256(digest.clone())))?;
        // Every cryptographic check; no identity yet (ferry matches regexps itself, below).
        let policy = VerificationPolicy::any_identity();
        let result = self
            .verifier
            .verify(hash, bundle, &policy)
            .map_err(|e| Rejection::Keyless(KeylessFailure::Verification(Arc::new(e))))?;
        let claims = CertificateClaims {
            identity: result.identity().map(|s| s.as_str().to_string()),
            issuer: result.issuer().map(str::to_string),
        };
        let SignatureContent::DsseEnvelope(env) = &bundle.content else {
            return Err(Rejection::Malformed(MalformedProblem::NoDsseEnvelope));
        };
        let kind = super::check::statement(env.payload.as_bytes(), digest)?;
        let named = self.identities.iter().any(|id| {
            claims
                .identity
                .as_deref()
                .is_some_and(|s| id.subject.matches(s))
                && claims
                    .issuer
                    .as_deref()
                    .is_some_and(|s| id.issuer.matches(s))
        });
        if !named {
            return Err(Rejection::Keyless(KeylessFailure::Identity(claims)));
        }
        Ok((kind, claims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexps_search_unanchored_like_cosign_and_exact_means_equal() {
        let m = Matcher::regex("r", "acme/app/").unwrap();
        assert!(m.matches("https://github.com/acme/app/.github/workflows/r.yml@refs/heads/main"));
        assert!(!m.matches("https://github.com/acme/other"));
        let anchored = Matcher::regex("r", "^https://github\\.com/acme/").unwrap();
        assert!(!anchored.matches("x https://github.com/acme/"));
        assert!(Matcher::Exact("a".into()).matches("a"));
        assert!(!Matcher::Exact("a".into()).matches("ab"));
        let e = Matcher::regex("--certificate-identity-regexp", "(")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--certificate-identity-regexp") && e.contains("\"(\""),
            "{e}"
        );
    }

    #[test]
    fn the_embedded_root_loads_and_a_bad_root_names_its_file() {
        assert!(Keyless::embedded(Vec::new()).is_ok());
        let e = Keyless::new(
            "{\"mediaType\": 1}",
            RootSource::File("tr.json".into()),
            Vec::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("tr.json"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn any_text_as_a_trusted_root_is_an_error_or_a_root_never_a_panic(s in "(?s).{0,300}") {
            let _ = Keyless::new(&s, RootSource::File("t".into()), Vec::new());
        }
    }
}
