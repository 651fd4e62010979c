//! A signature policy document: which keys or keyless identities an image must be signed by.
//! YAML or JSON (JSON is YAML):
//!
//! ```yaml
//! # ferry-signature-policy.yaml
//! keys:                      # PEM public keys (cosign.pub); relative to this file
//!   - keys/release.pub
//!   - /etc/ferry/keys/ci.pub
//! keyless:                   # each: subject or subject_regexp, and issuer or issuer_regexp
//!   - issuer: https://token.actions.githubusercontent.com
//!     subject: https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main
//! trusted_root: trusted_root.json   # for keyless; default: the embedded public-good root
//! ```

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

use super::keyless::{Identity, Keyless, Matcher};
use super::{PublicKey, Trust};
use crate::error::{Error, Result};

/// One keyless identity: the certificate's OIDC issuer and subject (exact or regex).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeylessIdentity {
    /// `issuer`.
    pub issuer: Option<String>,
    /// `issuer_regexp`.
    pub issuer_regexp: Option<String>,
    /// `subject`.
    pub subject: Option<String>,
    /// `subject_regexp`.
    pub subject_regexp: Option<String>,
}

/// A parsed signature policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignaturePolicy {
    /// PEM public key files (resolved against the document's directory).
    pub keys: Vec<PathBuf>,
    /// Keyless identities.
    pub keyless: Vec<KeylessIdentity>,
    /// A Sigstore `trusted_root.json`.
    pub trusted_root: Option<PathBuf>,
}

/// What is wrong with a signature policy document ([`Error::SignaturePolicy`]).
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyProblem {
    /// Neither YAML nor JSON.
    Syntax(yaml_rust2::ScanError),
    /// The document is not a mapping.
    NotAMapping,
    /// `keys:` or `keyless:` is not a list.
    NotAList {
        /// `keys` or `keyless`.
        field: &'static str,
    },
    /// A `keys:` entry is not a file path.
    KeyNotAPath,
    /// `trusted_root:` is not a file path.
    TrustedRootNotAPath,
    /// A field the document does not have.
    UnknownField {
        /// The field as written (`?` when not a string).
        field: String,
    },
    /// No keys and no keyless identities.
    Empty,
    /// A `keyless:` entry is not a mapping.
    KeylessNotAMapping,
    /// A `keyless:` field whose value is not a string.
    KeylessNotAString {
        /// The field as written.
        field: String,
    },
    /// A `keyless:` entry without exactly one of `field` and `field_regexp`.
    KeylessIncomplete {
        /// `subject` or `issuer`.
        field: &'static str,
    },
    /// A `keyless:` regular expression that does not compile.
    KeylessPattern {
        /// `subject_regexp` or `issuer_regexp`.
        field: &'static str,
        /// The pattern.
        pattern: String,
        /// Why.
        reason: regex::Error,
    },
    /// A `keyless:` field other than issuer, issuer_regexp, subject, subject_regexp.
    KeylessUnknownField {
        /// The field as written (`?` when not a string).
        field: String,
    },
}

impl std::fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyProblem::Syntax(e) => write!(f, "{e}"),
            PolicyProblem::NotAMapping => {
                f.write_str("expected a mapping with keys:, keyless:, trusted_root:")
            }
            PolicyProblem::NotAList { field } => write!(f, "{field}: expected a list"),
            PolicyProblem::KeyNotAPath => f.write_str("keys: entries are file paths"),
            PolicyProblem::TrustedRootNotAPath => f.write_str("trusted_root: a file path"),
            PolicyProblem::UnknownField { field } => write!(f, "unknown field {field:?}"),
            PolicyProblem::Empty => f.write_str("lists no keys and no keyless identities"),
            PolicyProblem::KeylessNotAMapping => {
                f.write_str("keyless: entries are mappings (issuer, subject, …)")
            }
            PolicyProblem::KeylessNotAString { field } => {
                write!(f, "keyless: {field:?} must be a string")
            }
            PolicyProblem::KeylessIncomplete { field } => {
                write!(
                    f,
                    "keyless: each entry needs one of {field} and {field}_regexp"
                )
            }
            PolicyProblem::KeylessPattern {
                field,
                pattern,
                reason,
            } => write!(f, "keyless: {field} {pattern:?}: {reason}"),
            PolicyProblem::KeylessUnknownField { field } => {
                write!(f, "keyless: unknown field {field:?}")
            }
        }
    }
}

/// A YAML key as written, for errors.
fn key_name(k: &Yaml) -> String {
    k.as_str().unwrap_or("?").to_string()
}

impl SignaturePolicy {
    /// Parse the document `text` read from `file` (named in errors; relative paths in it are
    /// resolved against its directory).
    pub fn parse(file: &Path, text: &str) -> Result<SignaturePolicy> {
        let bad = |reason: PolicyProblem| Error::SignaturePolicy {
            file: file.to_path_buf(),
            reason,
        };
        let docs = YamlLoader::load_from_str(text).map_err(|e| bad(PolicyProblem::Syntax(e)))?;
        let doc = docs.into_iter().next().unwrap_or(Yaml::Null);
        let Yaml::Hash(map) = &doc else {
            return Err(bad(PolicyProblem::NotAMapping));
        };
        let base = file.parent().unwrap_or(Path::new("."));
        let mut policy = SignaturePolicy {
            keys: Vec::new(),
            keyless: Vec::new(),
            trusted_root: None,
        };
        for (k, v) in map {
            match k.as_str() {
                Some("keys") => {
                    for item in list(v, "keys").map_err(&bad)? {
                        let p = item
                            .as_str()
                            .ok_or_else(|| bad(PolicyProblem::KeyNotAPath))?;
                        policy.keys.push(base.join(p));
                    }
                }
                Some("keyless") => {
                    for item in list(v, "keyless").map_err(&bad)? {
                        policy.keyless.push(identity(item).map_err(&bad)?);
                    }
                }
                Some("trusted_root") => {
                    let p = v
                        .as_str()
                        .ok_or_else(|| bad(PolicyProblem::TrustedRootNotAPath))?;
                    policy.trusted_root = Some(base.join(p));
                }
                _ => return Err(bad(PolicyProblem::UnknownField { field: key_name(k) })),
            }
        }
        if policy.keys.is_empty() && policy.keyless.is_empty() {
            return Err(bad(PolicyProblem::Empty));
        }
        for id in &policy.keyless {
            id.matchers().map_err(&bad)?;
        }
        Ok(policy)
    }

    /// Read and parse the document `file`.
    pub fn load(file: &Path) -> Result<SignaturePolicy> {
        let text = crate::error::read_verification_file("signature policy", file)?;
        SignaturePolicy::parse(file, &text)
    }

    /// What the policy trusts: its keys, read, and its keyless identities under its trusted
    /// root (the embedded public-good root when it names none).
    pub fn trust(&self) -> Result<Trust> {
        let keyless = if self.keyless.is_empty() {
            None
        } else {
            Some(Keyless::from_root_file(
                self.trusted_root.as_deref(),
                self.identities(),
            )?)
        };
        Ok(Trust {
            keys: self
                .keys
                .iter()
                .map(|k| PublicKey::read(k))
                .collect::<Result<_>>()?,
            keyless,
        })
    }

    /// The keyless identities as matchers (checked by [`SignaturePolicy::parse`]).
    pub fn identities(&self) -> Vec<Identity> {
        self.keyless
            .iter()
            .filter_map(|id| id.matchers().ok())
            .collect()
    }
}

fn list<'y>(v: &'y Yaml, field: &'static str) -> std::result::Result<&'y [Yaml], PolicyProblem> {
    match v {
        Yaml::Array(a) => Ok(a),
        _ => Err(PolicyProblem::NotAList { field }),
    }
}

/// One of an exact value and a regexp, as a matcher.
fn matcher(
    field: &'static str,
    regexp_field: &'static str,
    exact: &Option<String>,
    regexp: &Option<String>,
) -> std::result::Result<Matcher, PolicyProblem> {
    match (exact, regexp) {
        (Some(e), None) => Ok(Matcher::Exact(e.clone())),
        (None, Some(r)) => regex::Regex::new(r).map(Matcher::Regex).map_err(|reason| {
            PolicyProblem::KeylessPattern {
                field: regexp_field,
                pattern: r.clone(),
                reason,
            }
        }),
        _ => Err(PolicyProblem::KeylessIncomplete { field }),
    }
}

impl KeylessIdentity {
    /// The identity as matchers: exactly one of subject/subject_regexp and of
    /// issuer/issuer_regexp.
    fn matchers(&self) -> std::result::Result<Identity, PolicyProblem> {
        Ok(Identity {
            subject: matcher(
                "subject",
                "subject_regexp",
                &self.subject,
                &self.subject_regexp,
            )?,
            issuer: matcher("issuer", "issuer_regexp", &self.issuer, &self.issuer_regexp)?,
        })
    }
}

fn identity(item: &Yaml) -> std::result::Result<KeylessIdentity, PolicyProblem> {
    let Yaml::Hash(m) = item else {
        return Err(PolicyProblem::KeylessNotAMapping);
    };
    let mut id = KeylessIdentity::default();
    for (k, v) in m {
        let value = v
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| PolicyProblem::KeylessNotAString { field: key_name(k) })?;
        match k.as_str() {
            Some("issuer") => id.issuer = Some(value),
            Some("issuer_regexp") => id.issuer_regexp = Some(value),
            Some("subject") => id.subject = Some(value),
            Some("subject_regexp") => id.subject_regexp = Some(value),
            _ => return Err(PolicyProblem::KeylessUnknownField { field: key_name(k) }),
        }
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loaded_policy_reads_its_keys_next_to_it_and_names_an_unreadable_one() {
        use p256::pkcs8::EncodePublicKey as _;
        let dir = tempfile::tempdir().unwrap();
        let sk = p256::ecdsa::SigningKey::from_slice(&[7; 32]).unwrap();
        let pem = sk
            .verifying_key()
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .unwrap();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        std::fs::write(dir.path().join("keys/release.pub"), pem).unwrap();
        let file = dir.path().join("policy.yaml");
        std::fs::write(&file, "keys: [keys/release.pub]\n").unwrap();
        let trust = Trust::from_policy_file(&file).unwrap();
        assert_eq!(trust.keys.len(), 1);
        assert!(trust.keyless.is_none());
        std::fs::write(&file, "keys: [keys/gone.pub]\n").unwrap();
        let e = Trust::from_policy_file(&file).unwrap_err();
        assert!(
            matches!(&e, Error::VerificationFile { what: "key", path, .. } if path.ends_with("keys/gone.pub")),
            "{e}"
        );
        let e = Trust::from_policy_file(&dir.path().join("none.yaml")).unwrap_err();
        assert!(
            e.to_string().starts_with("cannot read signature policy "),
            "{e}"
        );
    }

    #[test]
    fn yaml_and_json_documents_resolve_key_paths_against_their_directory() {
        let f = Path::new("/etc/ferry/policy.yaml");
        let p = SignaturePolicy::parse(f, "keys:\n  - release.pub\n  - /abs/ci.pub\n").unwrap();
        assert_eq!(
            p.keys,
            vec![
                PathBuf::from("/etc/ferry/release.pub"),
                PathBuf::from("/abs/ci.pub")
            ]
        );
        let j = SignaturePolicy::parse(f, r#"{"keys": ["release.pub"], "keyless": [{"issuer": "https://i", "subject_regexp": "^x$"}], "trusted_root": "tr.json"}"#).unwrap();
        assert_eq!(j.keyless[0].issuer.as_deref(), Some("https://i"));
        assert_eq!(j.trusted_root, Some(PathBuf::from("/etc/ferry/tr.json")));
    }

    #[test]
    fn malformed_documents_name_the_file_and_the_problem() {
        let f = Path::new("p.yaml");
        for (text, want) in [
            ("keys: release.pub", "expected a list"),
            ("kees: [a]", "unknown field"),
            ("{}", "no keys"),
            ("- a", "mapping"),
            ("keys: [1]", "file paths"),
            ("keys: [a\n", ""),
            (
                "keyless: [{issuer: i}]",
                "one of subject and subject_regexp",
            ),
            (
                "keyless: [{issuer: i, subject: s, subject_regexp: r}]",
                "one of subject",
            ),
            (
                "keyless: [{issuer_regexp: '(', subject: s}]",
                "issuer_regexp",
            ),
        ] {
            let e = SignaturePolicy::parse(f, text).unwrap_err().to_string();
            assert!(e.contains("p.yaml") && e.contains(want), "{text}: {e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_text_as_a_policy_never_panics(s in "(?s).{0,200}") {
            let _ = SignaturePolicy::parse(Path::new("p"), &s);
        }
    }
}
