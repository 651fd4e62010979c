//! Why a registry's answer, an authentication challenge or a public key is unusable: the typed
//! payloads of [`Error::Invalid`](crate::Error::Invalid),
//! [`Error::Challenge`](crate::Error::Challenge) and
//! [`Error::PublicKey`](crate::Error::PublicKey).

use std::fmt;

use reqwest::header::{HeaderValue, InvalidHeaderValue};

/// Why a document or header from a registry could not be understood
/// ([`Error::Invalid`](crate::Error::Invalid)).
#[derive(Debug)]
pub enum InvalidProblem {
    /// It is not JSON of the expected shape (a tag list, a token answer, an image config, a
    /// referrers index).
    Json(serde_json::Error),
    /// A manifest that is not JSON at all.
    NotJson(serde_json::Error),
    /// A manifest's `schemaVersion` is missing or not 2.
    SchemaVersion(Option<u32>),
    /// A manifest with no `mediaType`, no `Content-Type` and neither `manifests` nor `config`.
    NoMediaType,
    /// An index that does not decode as an OCI image index.
    Index(serde_json::Error),
    /// An image manifest that does not decode as one.
    ImageManifest(serde_json::Error),
    /// A manifest media type ferry does not read.
    UnsupportedMediaType {
        /// The media type.
        media_type: String,
    },
    /// A manifest descriptor's digest does not parse.
    DescriptorDigest(Box<ferry_core::Error>),
    /// A referrers index entry's digest does not parse.
    ReferrerDigest {
        /// The digest as written.
        digest: String,
        /// Why it does not parse.
        source: Box<ferry_core::Error>,
    },
    /// An index lists more children than ferry follows.
    TooManyChildren {
        /// How many it lists.
        count: usize,
        /// How many ferry follows.
        limit: usize,
    },
    /// A `Docker-Content-Digest` header that is not a digest.
    NotADigest(HeaderValue),
    /// A `created` time that is not an RFC 3339 timestamp.
    Created {
        /// The time as written.
        created: String,
        /// The parser's words.
        source: humantime::TimestampError,
    },
    /// Tag list pagination leads back to a page already read.
    PaginationLoop,
    /// Tag list pagination goes on for more pages than ferry reads.
    TooManyPages {
        /// How many pages ferry reads.
        limit: usize,
    },
    /// A tag list's `Link` target does not resolve to a URL.
    LinkTarget {
        /// The target as sent.
        target: String,
        /// The parser's words.
        source: url::ParseError,
    },
    /// A token that cannot be sent in an `Authorization` header.
    TokenHeader(InvalidHeaderValue),
    /// A token answer with neither `token` nor `access_token`.
    NoToken,
    /// An upload session started (202) without a `Location`.
    MissingLocation,
    /// An upload session's `Location` does not resolve to a URL.
    Location {
        /// The header as sent.
        location: String,
        /// The parser's words.
        source: url::ParseError,
    },
    /// A referrers index without a `manifests` list.
    NoManifestsList,
    /// Signatures are verified for a digest, and the reference has none.
    NoDigest,
}

impl fmt::Display for InvalidProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidProblem::Json(e) => write!(f, "{e}"),
            InvalidProblem::NotJson(e) => write!(f, "not JSON: {e}"),
            InvalidProblem::SchemaVersion(v) => {
                write!(f, "schemaVersion {v:?} is not supported (only 2)")
            }
            InvalidProblem::NoMediaType => {
                f.write_str("no mediaType and neither manifests nor config")
            }
            InvalidProblem::Index(e) => write!(f, "bad index: {e}"),
            InvalidProblem::ImageManifest(e) => write!(f, "bad image manifest: {e}"),
            InvalidProblem::UnsupportedMediaType { media_type } => {
                write!(f, "unsupported media type {media_type:?}")
            }
            InvalidProblem::DescriptorDigest(e) => write!(f, "descriptor digest: {e}"),
            InvalidProblem::ReferrerDigest { digest, source } => {
                write!(f, "descriptor digest {digest:?}: {source}")
            }
            InvalidProblem::TooManyChildren { count, limit } => write!(
                f,
                "the index lists {count} manifests; ferry follows at most {limit}"
            ),
            InvalidProblem::NotADigest(v) => write!(f, "{v:?} is not a digest"),
            InvalidProblem::Created { created, source } => {
                write!(f, "created {created:?}: {source}")
            }
            InvalidProblem::PaginationLoop => {
                f.write_str("pagination loops back to a page already read")
            }
            InvalidProblem::TooManyPages { limit } => write!(f, "more than {limit} pages"),
            InvalidProblem::LinkTarget { target, source } => {
                write!(f, "bad Link target {target:?}: {source}")
            }
            InvalidProblem::TokenHeader(_) => f.write_str("token is not a valid header value"),
            InvalidProblem::NoToken => f.write_str("neither token nor access_token in the answer"),
            InvalidProblem::MissingLocation => f.write_str("202 without Location"),
            InvalidProblem::Location { location, source } => {
                write!(f, "bad Location {location:?}: {source}")
            }
            InvalidProblem::NoManifestsList => f.write_str("no manifests list"),
            InvalidProblem::NoDigest => {
                f.write_str("verifying signatures needs a digest (resolve the tag first)")
            }
        }
    }
}

/// Why a `WWW-Authenticate` challenge is unusable ([`Error::Challenge`](crate::Error::Challenge)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeProblem {
    /// A Bearer challenge names no realm.
    NoRealm,
    /// A Bearer challenge's realm is not an http(s) URL.
    RealmNotHttp {
        /// The realm as sent.
        realm: String,
    },
}

impl fmt::Display for ChallengeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChallengeProblem::NoRealm => f.write_str("Bearer challenge without realm"),
            ChallengeProblem::RealmNotHttp { realm } => {
                write!(f, "realm {realm:?} is not an http(s) URL")
            }
        }
    }
}

/// Why a public key is unusable ([`Error::PublicKey`](crate::Error::PublicKey)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    /// The text holds no PEM `PUBLIC KEY` block.
    NotPem,
    /// The key is neither ECDSA P-256 nor Ed25519.
    Unsupported,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyProblem::NotPem => {
                "no PEM \"PUBLIC KEY\" block (cosign.pub is one; a private key or a certificate is not)"
            }
            KeyProblem::Unsupported => {
                "not an ECDSA P-256 or Ed25519 public key (RSA and other curves are not supported)"
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_error() -> serde_json::Error {
        serde_json::from_str::<serde_json::Value>("{").unwrap_err()
    }

    fn digest_error() -> ferry_core::Error {
        ferry_core::Digest::parse("sha256:zz").unwrap_err()
    }

    fn url_error() -> url::ParseError {
        url::Url::parse("::").unwrap_err()
    }

    #[test]
    fn invalid_problem_texts() {
        let j = json_error().to_string();
        let d = digest_error().to_string();
        let u = url_error().to_string();
        let ts = humantime::parse_rfc3339("yesterday").unwrap_err();
        let ts_text = ts.to_string();
        let cases: Vec<(InvalidProblem, String)> = vec![
            (InvalidProblem::Json(json_error()), j.clone()),
            (
                InvalidProblem::NotJson(json_error()),
                format!("not JSON: {j}"),
            ),
            (
                InvalidProblem::SchemaVersion(Some(1)),
                "schemaVersion Some(1) is not supported (only 2)".into(),
            ),
            (
                InvalidProblem::SchemaVersion(None),
                "schemaVersion None is not supported (only 2)".into(),
            ),
            (
                InvalidProblem::NoMediaType,
                "no mediaType and neither manifests nor config".into(),
            ),
            (
                InvalidProblem::Index(json_error()),
                format!("bad index: {j}"),
            ),
            (
                InvalidProblem::ImageManifest(json_error()),
                format!("bad image manifest: {j}"),
            ),
            (
                InvalidProblem::UnsupportedMediaType {
                    media_type: "text/html".into(),
                },
                "unsupported media type \"text/html\"".into(),
            ),
            (
                InvalidProblem::DescriptorDigest(Box::new(digest_error())),
                format!("descriptor digest: {d}"),
            ),
            (
                InvalidProblem::ReferrerDigest {
                    digest: "sha256:zz".into(),
                    source: Box::new(digest_error()),
                },
                format!("descriptor digest \"sha256:zz\": {d}"),
            ),
            (
                InvalidProblem::TooManyChildren {
                    count: 1001,
                    limit: 1000,
                },
                "the index lists 1001 manifests; ferry follows at most 1000".into(),
            ),
            (
                InvalidProblem::NotADigest(HeaderValue::from_static("nope")),
                "\"nope\" is not a digest".into(),
            ),
            (
                InvalidProblem::Created {
                    created: "yesterday".into(),
                    source: ts,
                },
                format!("created \"yesterday\": {ts_text}"),
            ),
            (
                InvalidProblem::PaginationLoop,
                "pagination loops back to a page already read".into(),
            ),
            (
                InvalidProblem::TooManyPages { limit: 10_000 },
                "more than 10000 pages".into(),
            ),
            (
                InvalidProblem::LinkTarget {
                    target: "::".into(),
                    source: url_error(),
                },
                format!("bad Link target \"::\": {u}"),
            ),
            (
                InvalidProblem::TokenHeader(HeaderValue::from_str("a\nb").unwrap_err()),
                "token is not a valid header value".into(),
            ),
            (
                InvalidProblem::NoToken,
                "neither token nor access_token in the answer".into(),
            ),
            (
                InvalidProblem::MissingLocation,
                "202 without Location".into(),
            ),
            (
                InvalidProblem::Location {
                    location: "::".into(),
                    source: url_error(),
                },
                format!("bad Location \"::\": {u}"),
            ),
            (InvalidProblem::NoManifestsList, "no manifests list".into()),
            (
                InvalidProblem::NoDigest,
                "verifying signatures needs a digest (resolve the tag first)".into(),
            ),
        ];
        for (problem, text) in cases {
            assert_eq!(problem.to_string(), text, "{problem:?}");
        }
    }

    #[test]
    fn invalid_error_text() {
        let e = crate::Error::Invalid {
            what: "tag list",
            url: "https://r.io/v2/a/tags/list".into(),
            problem: InvalidProblem::TooManyPages { limit: 3 },
        };
        assert_eq!(
            e.to_string(),
            "invalid tag list from https://r.io/v2/a/tags/list: more than 3 pages"
        );
    }

    #[test]
    fn challenge_problem_texts() {
        assert_eq!(
            ChallengeProblem::NoRealm.to_string(),
            "Bearer challenge without realm"
        );
        assert_eq!(
            ChallengeProblem::RealmNotHttp {
                realm: "ftp://x".into()
            }
            .to_string(),
            "realm \"ftp://x\" is not an http(s) URL"
        );
        let e = crate::Error::Challenge {
            header: "Bearer".into(),
            problem: ChallengeProblem::NoRealm,
        };
        assert_eq!(
            e.to_string(),
            "cannot use authentication challenge \"Bearer\": Bearer challenge without realm"
        );
    }

    #[test]
    fn key_problem_texts() {
        assert_eq!(
            KeyProblem::NotPem.to_string(),
            "no PEM \"PUBLIC KEY\" block (cosign.pub is one; a private key or a certificate is not)"
        );
        assert_eq!(
            KeyProblem::Unsupported.to_string(),
            "not an ECDSA P-256 or Ed25519 public key (RSA and other curves are not supported)"
        );
        let e = crate::Error::PublicKey {
            name: "cosign.pub".into(),
            problem: KeyProblem::NotPem,
        };
        assert!(e.to_string().starts_with("public key cosign.pub: no PEM"));
    }
}
