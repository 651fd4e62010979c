//! `ferry-registry verify-signature`: read the keys, resolve the reference, let the crate find
//! and check the signatures, print every candidate with its verdict.

use std::path::PathBuf;

use clap::Args;
use ferry_cli::{Failure, RegistryArgs};
use ferry_core::exit;
use ferry_registry::signature::{Candidate, Identity, Location, Matcher, SignatureReport, Trust};
use serde_json::{Value, json};

use crate::output::Output;
use crate::parse_ref;

/// The flags of `verify-signature`.
#[derive(Args)]
pub struct VerifySignatureArgs {
    /// Reference (a tag is resolved to the digest it serves now).
    pub reference: String,
    /// PEM public key (cosign.pub); repeatable: any one of them may have signed.
    #[arg(long, value_name = "FILE", required_unless_present_any = ["certificate_identity", "certificate_identity_regexp", "certificate_oidc_issuer", "certificate_oidc_issuer_regexp"])]
    pub key: Vec<PathBuf>,
    /// Keyless: the certificate's identity (SAN: email or URI) must equal this.
    #[arg(
        long = "certificate-identity",
        value_name = "ID",
        conflicts_with_all = ["key", "certificate_identity_regexp"]
    )]
    pub certificate_identity: Option<String>,
    /// Keyless: the certificate's identity must match this regular expression (unanchored).
    #[arg(
        long = "certificate-identity-regexp",
        value_name = "REGEX",
        conflicts_with = "key"
    )]
    pub certificate_identity_regexp: Option<String>,
    /// Keyless: the certificate's OIDC issuer must equal this.
    #[arg(
        long = "certificate-oidc-issuer",
        value_name = "URL",
        conflicts_with_all = ["key", "certificate_oidc_issuer_regexp"]
    )]
    pub certificate_oidc_issuer: Option<String>,
    /// Keyless: the OIDC issuer must match this regular expression (unanchored).
    #[arg(
        long = "certificate-oidc-issuer-regexp",
        value_name = "REGEX",
        conflicts_with = "key"
    )]
    pub certificate_oidc_issuer_regexp: Option<String>,
    /// Keyless: the Sigstore trusted_root.json (Fulcio CAs, CT logs, Rekor logs) to verify
    /// against; default: the public-good root embedded in ferry (never fetched).
    #[arg(long = "trusted-root", value_name = "FILE", conflicts_with = "key")]
    pub trusted_root: Option<PathBuf>,
}

impl VerifySignatureArgs {
    /// What a signature must verify with: the keys, or the keyless identity.
    fn trust(&self) -> Result<Trust, Failure> {
        if !self.key.is_empty() {
            return Ok(ferry_cli::signing::read_keys(&self.key)?.into());
        }
        let fail = |e: ferry_registry::Error| Failure::usage(e.to_string());
        let matcher =
            |exact: &Option<String>, regexp: &Option<String>, field, flag| match (exact, regexp) {
                (Some(e), _) => Ok(Matcher::Exact(e.clone())),
                (None, Some(r)) => Matcher::regex(field, r).map_err(fail),
                (None, None) => Err(Failure::usage(format!(
                    "keyless verification needs {flag} or {flag}-regexp"
                ))),
            };
        let identity = Identity {
            subject: matcher(
                &self.certificate_identity,
                &self.certificate_identity_regexp,
                "--certificate-identity-regexp",
                "--certificate-identity",
            )?,
            issuer: matcher(
                &self.certificate_oidc_issuer,
                &self.certificate_oidc_issuer_regexp,
                "--certificate-oidc-issuer-regexp",
                "--certificate-oidc-issuer",
            )?,
        };
        let keyless = ferry_cli::signing::keyless(self.trusted_root.as_deref(), vec![identity])?;
        Ok(Trust {
            keys: Vec::new(),
            keyless: Some(keyless),
        })
    }
}

/// `promote --require-signature (--key FILE | --signature-policy FILE)`.
#[derive(Args)]
pub struct RequireSignature {
    /// Refuse (exit 1) unless the source digest carries a valid cosign signature.
    #[arg(long = "require-signature")]
    pub require_signature: bool,
    /// With --require-signature: a PEM public key that may have signed; repeatable.
    #[arg(long, value_name = "FILE", requires = "require_signature")]
    pub key: Vec<PathBuf>,
    /// With --require-signature: a signature policy document (YAML/JSON: `keys:`, `keyless:`,
    /// `trusted_root:`).
    #[arg(
        long = "signature-policy",
        value_name = "FILE",
        requires = "require_signature",
        conflicts_with = "key"
    )]
    pub signature_policy: Option<PathBuf>,
}

impl RequireSignature {
    /// What a signature must verify with, when one is required.
    pub fn trust(&self) -> Result<Option<Trust>, Failure> {
        if !self.require_signature {
            return Ok(None);
        }
        let keys = match &self.signature_policy {
            Some(f) => ferry_cli::signing::load_policy(f)?,
            None if self.key.is_empty() => {
                return Err(Failure::usage(
                    "--require-signature needs --key FILE or --signature-policy FILE",
                ));
            }
            None => ferry_cli::signing::read_keys(&self.key)?.into(),
        };
        Ok(Some(keys))
    }
}

/// Exit 0 when a valid signature exists, 1 when none is valid, 3 on errors.
pub async fn cmd_verify_signature(
    reg: &RegistryArgs,
    args: &VerifySignatureArgs,
    out: &mut Output,
) -> Result<u8, Failure> {
    let trust = args.trust()?;
    let r = parse_ref(&args.reference)?;
    let client = reg.client(None)?;
    let digest = match r.digest() {
        Some(d) => d.clone(),
        None => client.resolve(&r).await?.digest,
    };
    let pinned = r.with_digest(digest);
    let report = client.verify_signatures(&pinned, &trust).await?;
    render(out, &pinned.to_string(), &report);
    Ok(if report.valid() {
        exit::SUCCESS
    } else {
        exit::NEGATIVE
    })
}

fn render(out: &mut Output, reference: &str, report: &SignatureReport) {
    let valid = report.valid();
    if valid {
        out.text_line(&format!("{reference}: signed"));
    } else {
        out.text_line(&format!("{reference}: no valid signature"));
    }
    if report.candidates.is_empty() {
        out.text_line("  no signatures found");
    }
    for c in &report.candidates {
        let verdict = match &c.verdict {
            Ok(()) => match &c.signer {
                Some(who) => format!(
                    "valid, signed by {} (issuer {})",
                    who.identity.as_deref().unwrap_or("?"),
                    who.issuer.as_deref().unwrap_or("?")
                ),
                None => "valid".to_string(),
            },
            Err(why) => format!("invalid: {why}"),
        };
        out.text_line(&format!(
            "  {} {} ({}): {verdict}",
            location(&c.location),
            c.manifest,
            format_name(c)
        ));
    }
    out.github("signed", if valid { "true" } else { "false" });
    out.github("digest", &report.digest.to_string());
    let candidates: Vec<Value> = report.candidates.iter().map(candidate_json).collect();
    out.set_json(json!({
        "canonical": reference,
        "digest": report.digest.to_string(),
        "valid": valid,
        "referrers": report.referrers,
        "candidates": candidates,
    }));
}

fn candidate_json(c: &Candidate) -> Value {
    let (tag, location) = match &c.location {
        Location::CosignTag { tag } => (Some(tag.clone()), "cosign-tag"),
        Location::Referrers => (None, "referrers"),
        Location::ReferrersTag => (None, "referrers-tag"),
    };
    json!({
        "location": location,
        "tag": tag,
        "manifest": c.manifest.to_string(),
        "layer": c.layer.to_string(),
        "format": c.format,
        "signer": c.signer,
        "valid": c.verdict.is_ok(),
        "reason": c.verdict.as_ref().err().map(ToString::to_string),
    })
}

fn location(l: &Location) -> String {
    match l {
        Location::Referrers => "referrer".into(),
        Location::ReferrersTag => "referrer (tag schema)".into(),
        Location::CosignTag { tag } => format!("tag {tag}"),
    }
}

fn format_name(c: &Candidate) -> &'static str {
    match c.format {
        ferry_registry::signature::Format::SimpleSigning => "simple signing",
        ferry_registry::signature::Format::Bundle => "sigstore bundle",
        ferry_registry::signature::Format::DsseEnvelope => "DSSE envelope",
    }
}
