//! What makes one signature valid: the cryptographic check against the keys, then the signed
//! payload naming exactly the digest asked about. Two formats: cosign's legacy "simple signing"
//! payload (the signature in the layer's `dev.cosignproject.cosign/signature` annotation) and
//! the Sigstore bundle v0.3 holding a DSSE envelope over an in-toto statement (cosign 3).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ferry_core::Digest;

use super::keys::PublicKey;
use super::{Kind, MalformedProblem, Rejection};

/// A candidate rejected as not what cosign writes.
fn malformed(problem: MalformedProblem) -> Rejection {
    Rejection::Malformed(problem)
}

/// What a Sigstore bundle's signature is checked with.
#[derive(Debug)]
pub(super) enum Material {
    /// A public key (cosign's keyed bundles carry a key hint): the policy's keys.
    Key,
    /// A certificate (keyless): the bundle, parsed for sigstore-verify.
    Certificate(Box<sigstore_verify::types::Bundle>),
}

/// Whether a bundle is keyed or keyless; a keyless one is parsed whole.
pub(super) fn bundle_material(body: &[u8]) -> Result<Material, Rejection> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        verification_material: Option<serde_json::Map<String, serde_json::Value>>,
    }
    let head: Head = serde_json::from_slice(body)
        .map_err(|e| malformed(MalformedProblem::Bundle(Arc::new(e))))?;
    let vm = head.verification_material.unwrap_or_default();
    if !vm.contains_key("certificate") && !vm.contains_key("x509CertificateChain") {
        return Ok(Material::Key);
    }
    let text = std::str::from_utf8(body).map_err(|e| malformed(MalformedProblem::BundleUtf8(e)))?;
    sigstore_verify::types::Bundle::from_json(text)
        .map(|b| Material::Certificate(Box::new(b)))
        .map_err(|e| malformed(MalformedProblem::SigstoreBundle(Arc::new(e))))
}

/// The `type` of a cosign simple-signing payload.
pub(super) const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";
/// DSSE payload type of an in-toto statement.
pub(super) const IN_TOTO: &str = "application/vnd.in-toto+json";
/// The predicate type cosign 3 gives an image signature (anything else is an attestation).
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// Check a simple-signing payload and its base64 signature.
pub(super) fn simple_signing(
    payload: &[u8],
    signature_b64: &str,
    digest: &Digest,
    keys: &[PublicKey],
) -> Result<(), Rejection> {
    let signature = STANDARD
        .decode(signature_b64.trim())
        .map_err(|e| malformed(MalformedProblem::SignatureBase64(e)))?;
    signed_by_any(payload, &signature, keys)?;
    #[derive(serde::Deserialize)]
    struct Payload {
        critical: Critical,
    }
    #[derive(serde::Deserialize)]
    struct Critical {
        #[serde(rename = "type")]
        kind: String,
        image: Image,
    }
    #[derive(serde::Deserialize)]
    struct Image {
        #[serde(rename = "docker-manifest-digest")]
        digest: String,
    }
    let p: Payload = serde_json::from_slice(payload)
        .map_err(|e| malformed(MalformedProblem::Payload(Arc::new(e))))?;
    if p.critical.kind != SIMPLE_SIGNING_TYPE {
        return Err(malformed(MalformedProblem::PayloadType {
            kind: p.critical.kind,
        }));
    }
    if p.critical.image.digest != digest.to_string() {
        return Err(Rejection::OtherDigest {
            signed: vec![p.critical.image.digest],
        });
    }
    Ok(())
}

/// Check a Sigstore bundle (v0.3 media type) holding a DSSE envelope. Returns whether it is a
/// signature or an attestation (by the statement's predicate type) once it verified.
pub(super) fn bundle(body: &[u8], digest: &Digest, keys: &[PublicKey]) -> Result<Kind, Rejection> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Bundle {
        media_type: String,
        dsse_envelope: Option<Envelope>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Envelope {
        payload: String,
        payload_type: String,
        signatures: Vec<Sig>,
    }
    #[derive(serde::Deserialize)]
    struct Sig {
        sig: String,
    }
    let b: Bundle = serde_json::from_slice(body)
        .map_err(|e| malformed(MalformedProblem::Bundle(Arc::new(e))))?;
    if !b
        .media_type
        .starts_with("application/vnd.dev.sigstore.bundle")
    {
        return Err(malformed(MalformedProblem::BundleMediaType {
            media_type: b.media_type,
        }));
    }
    let env = b
        .dsse_envelope
        .ok_or_else(|| malformed(MalformedProblem::NoDsseEnvelope))?;
    if env.payload_type != IN_TOTO {
        return Err(malformed(MalformedProblem::DssePayloadType {
            payload_type: env.payload_type,
        }));
    }
    let payload = STANDARD
        .decode(&env.payload)
        .map_err(|e| malformed(MalformedProblem::DssePayloadBase64(e)))?;
    let pae = pae(&env.payload_type, &payload);
    let mut verified = false;
    for s in &env.signatures {
        let Ok(sig) = STANDARD.decode(&s.sig) else {
            continue;
        };
        if signed_by_any(&pae, &sig, keys).is_ok() {
            verified = true;
            break;
        }
    }
    if !verified {
        return Err(Rejection::BadSignature);
    }
    statement(&payload, digest)
}

/// The in-toto statement of a verified envelope must name `digest` among its subjects.
pub(super) fn statement(payload: &[u8], digest: &Digest) -> Result<Kind, Rejection> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Statement {
        #[serde(default)]
        subject: Vec<Subject>,
        predicate_type: String,
    }
    #[derive(serde::Deserialize)]
    struct Subject {
        #[serde(default)]
        digest: std::collections::BTreeMap<String, String>,
    }
    let st: Statement = serde_json::from_slice(payload)
        .map_err(|e| malformed(MalformedProblem::Statement(Arc::new(e))))?;
    let alg = digest.algorithm().as_str();
    let named = st
        .subject
        .iter()
        .any(|s| s.digest.get(alg).is_some_and(|h| *h == digest.hex()));
    if !named {
        let signed = st
            .subject
            .iter()
            .flat_map(|s| s.digest.iter().map(|(a, h)| format!("{a}:{h}")))
            .collect();
        return Err(Rejection::OtherDigest { signed });
    }
    Ok(if st.predicate_type == COSIGN_SIGN_PREDICATE {
        Kind::Signature
    } else {
        Kind::Attestation {
            predicate_type: st.predicate_type,
        }
    })
}

fn signed_by_any(message: &[u8], signature: &[u8], keys: &[PublicKey]) -> Result<(), Rejection> {
    if keys.iter().any(|k| k.verifies(message, signature)) {
        Ok(())
    } else {
        Err(Rejection::BadSignature)
    }
}

/// DSSE's pre-authentication encoding: `DSSEv1 <len> <type> <len> <body>`.
pub(super) fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::EncodePublicKey as _;

    fn key() -> (p256::ecdsa::SigningKey, PublicKey) {
        let sk = p256::ecdsa::SigningKey::from_slice(&[5; 32]).unwrap();
        let pem = sk
            .verifying_key()
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .unwrap();
        (sk, PublicKey::from_pem("k.pub", &pem).unwrap())
    }

    fn sign(sk: &p256::ecdsa::SigningKey, m: &[u8]) -> String {
        let sig: p256::ecdsa::DerSignature = sk.sign(m);
        STANDARD.encode(sig.as_bytes())
    }

    fn bundle_of(sk: &p256::ecdsa::SigningKey, statement: &str) -> Vec<u8> {
        let sig = sign(sk, &pae(IN_TOTO, statement.as_bytes()));
        format!(
            r#"{{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{{"payload":"{}","payloadType":"{IN_TOTO}","signatures":[{{"sig":"{sig}"}}]}}}}"#,
            STANDARD.encode(statement)
        )
        .into_bytes()
    }

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(pae("t", b"ab"), b"DSSEv1 1 t 2 ab".to_vec());
    }

    #[test]
    fn simple_signing_checks_key_type_and_exact_digest() {
        let (sk, k) = key();
        let d = Digest::sha256_of(b"image");
        let other = Digest::sha256_of(b"other");
        let payload = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"{SIMPLE_SIGNING_TYPE}"}},"optional":null}}"#
        );
        let sig = sign(&sk, payload.as_bytes());
        assert_eq!(
            simple_signing(payload.as_bytes(), &sig, &d, std::slice::from_ref(&k)),
            Ok(())
        );
        assert!(matches!(
            simple_signing(payload.as_bytes(), &sig, &other, std::slice::from_ref(&k)),
            Err(Rejection::OtherDigest { .. })
        ));
        let mut tampered = payload.clone().into_bytes();
        tampered.push(b' ');
        assert_eq!(
            simple_signing(&tampered, &sig, &d, std::slice::from_ref(&k)),
            Err(Rejection::BadSignature)
        );
        assert!(matches!(
            simple_signing(payload.as_bytes(), "%%", &d, &[k]),
            Err(Rejection::Malformed(_))
        ));
    }

    #[test]
    fn a_bundle_is_a_signature_only_with_cosigns_predicate_and_this_digest() {
        let (sk, k) = key();
        let d = Digest::sha256_of(b"image");
        let st = |pred: &str, hex: &str| {
            format!(
                r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"digest":{{"sha256":"{hex}"}}}}],"predicateType":"{pred}","predicate":{{}}}}"#
            )
        };
        let ok = bundle_of(&sk, &st(COSIGN_SIGN_PREDICATE, d.hex()));
        assert_eq!(
            bundle(&ok, &d, std::slice::from_ref(&k)),
            Ok(Kind::Signature)
        );
        let att = bundle_of(&sk, &st("https://slsa.dev/provenance/v1", d.hex()));
        assert!(matches!(
            bundle(&att, &d, std::slice::from_ref(&k)),
            Ok(Kind::Attestation { .. })
        ));
        let other = bundle_of(
            &sk,
            &st(COSIGN_SIGN_PREDICATE, Digest::sha256_of(b"x").hex()),
        );
        assert!(matches!(
            bundle(&other, &d, &[k]),
            Err(Rejection::OtherDigest { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_as_a_payload_or_bundle_are_rejected_never_a_panic(
            b in proptest::collection::vec(0u8..=255, 0..400),
            sig in "[A-Za-z0-9+/=]{0,120}",
        ) {
            let (_, k) = key();
            let d = Digest::sha256_of(b"image");
            proptest::prop_assert!(simple_signing(&b, &sig, &d, std::slice::from_ref(&k)).is_err());
            proptest::prop_assert!(bundle(&b, &d, &[k]).is_err());
        }
    }
}
