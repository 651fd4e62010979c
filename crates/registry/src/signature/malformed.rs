//! Why a signature candidate is not what cosign writes ([`Rejection::Malformed`]), or could not be
//! read ([`Rejection::Unreadable`]).

use std::fmt;
use std::sync::Arc;

use ferry_core::Digest;

#[cfg(doc)]
use super::Rejection;
use super::SIGNATURE_ANNOTATION;
use super::check::{IN_TOTO, SIMPLE_SIGNING_TYPE};

/// What is malformed about a payload, bundle or annotation ([`Rejection::Malformed`]). Equal
/// when their texts are.
#[derive(Debug, Clone)]
pub enum MalformedProblem {
    /// A simple-signing layer without its signature annotation.
    NoSignatureAnnotation,
    /// The signature annotation is not base64.
    SignatureBase64(base64::DecodeError),
    /// The simple-signing payload is not the JSON cosign writes.
    Payload(Arc<serde_json::Error>),
    /// The simple-signing payload's `critical.type` is another one.
    PayloadType {
        /// The type it names.
        kind: String,
    },
    /// The bundle is not JSON of a bundle's shape.
    Bundle(Arc<serde_json::Error>),
    /// The bundle is not UTF-8.
    BundleUtf8(std::str::Utf8Error),
    /// sigstore could not read the bundle.
    SigstoreBundle(Arc<sigstore_verify::types::Error>),
    /// The bundle's `mediaType` is not a Sigstore bundle's.
    BundleMediaType {
        /// The media type it names.
        media_type: String,
    },
    /// The bundle holds no DSSE envelope.
    NoDsseEnvelope,
    /// The DSSE envelope's payload is not an in-toto statement.
    DssePayloadType {
        /// The payload type it names.
        payload_type: String,
    },
    /// The DSSE payload is not base64.
    DssePayloadBase64(base64::DecodeError),
    /// The in-toto statement is not JSON of a statement's shape.
    Statement(Arc<serde_json::Error>),
    /// A keyless bundle for a digest that is not sha256.
    NotSha256(Digest),
}

impl fmt::Display for MalformedProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MalformedProblem::NoSignatureAnnotation => {
                write!(f, "no {SIGNATURE_ANNOTATION} annotation on the layer")
            }
            MalformedProblem::SignatureBase64(e) => {
                write!(f, "signature annotation is not base64: {e}")
            }
            MalformedProblem::Payload(e) => write!(f, "simple-signing payload: {e}"),
            MalformedProblem::PayloadType { kind } => {
                write!(f, "payload type {kind:?} is not {SIMPLE_SIGNING_TYPE:?}")
            }
            MalformedProblem::Bundle(e) => write!(f, "bundle: {e}"),
            MalformedProblem::BundleUtf8(e) => write!(f, "bundle is not UTF-8: {e}"),
            MalformedProblem::SigstoreBundle(e) => write!(f, "bundle: {e}"),
            MalformedProblem::BundleMediaType { media_type } => {
                write!(f, "bundle mediaType {media_type:?}")
            }
            MalformedProblem::NoDsseEnvelope => {
                f.write_str("bundle has no dsseEnvelope (a messageSignature signs a blob)")
            }
            MalformedProblem::DssePayloadType { payload_type } => {
                write!(f, "DSSE payloadType {payload_type:?} is not {IN_TOTO:?}")
            }
            MalformedProblem::DssePayloadBase64(e) => {
                write!(f, "DSSE payload is not base64: {e}")
            }
            MalformedProblem::Statement(e) => write!(f, "in-toto statement: {e}"),
            MalformedProblem::NotSha256(digest) => {
                write!(f, "{digest}: keyless bundles sign sha256 digests")
            }
        }
    }
}

impl PartialEq for MalformedProblem {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for MalformedProblem {}

/// Why a payload or bundle could not be fetched ([`Rejection::Unreadable`]): the client's error,
/// shared. Equal when their texts are.
pub type FetchFailure = ferry_core::Shared<crate::Error>;

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;
    use crate::signature::Rejection;

    fn json_error() -> Arc<serde_json::Error> {
        Arc::new(serde_json::from_str::<serde_json::Value>("[").unwrap_err())
    }

    #[test]
    fn malformed_problem_texts() {
        let j = json_error().to_string();
        let b64 = base64::engine::general_purpose::STANDARD
            .decode("!")
            .unwrap_err();
        let b = b64.to_string();
        let bytes = vec![b'a', 0xff];
        let utf8 = std::str::from_utf8(&bytes).unwrap_err();
        let u = utf8.to_string();
        let sig = sigstore_verify::types::Bundle::from_json("{}").unwrap_err();
        let s = sig.to_string();
        let digest = Digest::parse(&format!("sha512:{}", "a".repeat(128))).unwrap();
        let cases = [
            (
                MalformedProblem::NoSignatureAnnotation,
                "no dev.cosignproject.cosign/signature annotation on the layer".to_string(),
            ),
            (
                MalformedProblem::SignatureBase64(b64.clone()),
                format!("signature annotation is not base64: {b}"),
            ),
            (
                MalformedProblem::Payload(json_error()),
                format!("simple-signing payload: {j}"),
            ),
            (
                MalformedProblem::PayloadType { kind: "x".into() },
                "payload type \"x\" is not \"cosign container image signature\"".into(),
            ),
            (
                MalformedProblem::Bundle(json_error()),
                format!("bundle: {j}"),
            ),
            (
                MalformedProblem::BundleUtf8(utf8),
                format!("bundle is not UTF-8: {u}"),
            ),
            (
                MalformedProblem::SigstoreBundle(Arc::new(sig)),
                format!("bundle: {s}"),
            ),
            (
                MalformedProblem::BundleMediaType {
                    media_type: "a/b".into(),
                },
                "bundle mediaType \"a/b\"".into(),
            ),
            (
                MalformedProblem::NoDsseEnvelope,
                "bundle has no dsseEnvelope (a messageSignature signs a blob)".into(),
            ),
            (
                MalformedProblem::DssePayloadType {
                    payload_type: "text/plain".into(),
                },
                "DSSE payloadType \"text/plain\" is not \"application/vnd.in-toto+json\"".into(),
            ),
            (
                MalformedProblem::DssePayloadBase64(b64),
                format!("DSSE payload is not base64: {b}"),
            ),
            (
                MalformedProblem::Statement(json_error()),
                format!("in-toto statement: {j}"),
            ),
            (
                MalformedProblem::NotSha256(digest.clone()),
                format!("{digest}: keyless bundles sign sha256 digests"),
            ),
        ];
        for (problem, text) in cases {
            assert_eq!(problem.to_string(), text, "{problem:?}");
            assert_eq!(
                Rejection::Malformed(problem).to_string(),
                format!("malformed: {text}")
            );
        }
        assert_eq!(
            MalformedProblem::Payload(json_error()),
            MalformedProblem::Payload(json_error())
        );
    }

    #[test]
    fn fetch_failure_text() {
        let e = crate::Error::Timeout {
            url: "https://r.io/v2/a/blobs/sha256:1".into(),
            after: std::time::Duration::from_secs(3),
        };
        let text = e.to_string();
        let r = Rejection::Unreadable(FetchFailure::new(e));
        assert_eq!(r.to_string(), format!("cannot read it: {text}"));
        assert_eq!(r.clone(), r);
    }
}
