//! Public keys that cosign signatures are checked against: PEM (SPKI) ECDSA P-256 — what
//! `cosign generate-key-pair` writes — and Ed25519 (`cosign import-key-pair` accepts it).

use ed25519_dalek::pkcs8::DecodePublicKey as _;
use p256::ecdsa::signature::Verifier as _;

use crate::error::{Error, Result};
use crate::problem::KeyProblem;

/// One public key a signature may be made with.
#[derive(Clone)]
pub struct PublicKey {
    /// Where the key came from (a file name), for messages.
    name: String,
    key: KeyKind,
}

#[derive(Clone)]
enum KeyKind {
    /// ECDSA over P-256 with SHA-256 (cosign's default). Signatures are ASN.1 DER.
    P256(p256::ecdsa::VerifyingKey),
    /// Ed25519 over the message itself.
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({}, {})", self.name, self.algorithm())
    }
}

impl PublicKey {
    /// Read and parse the PEM public key file `path` (named in errors and reports).
    pub fn read(path: &std::path::Path) -> Result<PublicKey> {
        let pem = crate::error::read_verification_file("key", path)?;
        PublicKey::from_pem(&path.display().to_string(), &pem)
    }

    /// Parse a PEM `PUBLIC KEY` block (SubjectPublicKeyInfo). `name` names the source (a file)
    /// in errors and reports.
    pub fn from_pem(name: &str, pem: &str) -> Result<PublicKey> {
        let bad = |problem: KeyProblem| Error::PublicKey {
            name: name.to_string(),
            problem,
        };
        if !pem.contains("-----BEGIN PUBLIC KEY-----") {
            return Err(bad(KeyProblem::NotPem));
        }
        let key = if let Ok(k) = p256::PublicKey::from_public_key_pem(pem.trim()) {
            KeyKind::P256(k.into())
        } else if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(pem.trim()) {
            KeyKind::Ed25519(k)
        } else {
            return Err(bad(KeyProblem::Unsupported));
        };
        Ok(PublicKey {
            name: name.to_string(),
            key,
        })
    }

    /// The name given at parse time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ecdsa-p256` or `ed25519`.
    pub fn algorithm(&self) -> &'static str {
        match self.key {
            KeyKind::P256(_) => "ecdsa-p256",
            KeyKind::Ed25519(_) => "ed25519",
        }
    }

    /// Whether `signature` (raw bytes, already base64-decoded) signs `message` with this key.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.key {
            KeyKind::P256(k) => {
                // cosign writes ASN.1 DER and checks with Go's ecdsa.VerifyASN1: DER only, so
                // ferry accepts exactly what cosign accepts.
                p256::ecdsa::DerSignature::from_bytes(signature)
                    .is_ok_and(|sig| k.verify(message, &sig).is_ok())
            }
            KeyKind::Ed25519(k) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| k.verify_strict(message, &sig).is_ok()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::EncodePublicKey as _;

    fn p256_pair(seed: u8) -> (p256::ecdsa::SigningKey, String) {
        let sk = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap();
        let pem = sk
            .verifying_key()
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .unwrap();
        (sk, pem)
    }

    #[test]
    fn p256_der_signature_verifies_and_a_changed_message_does_not() {
        let (sk, pem) = p256_pair(7);
        let key = PublicKey::from_pem("cosign.pub", &pem).unwrap();
        assert_eq!(key.algorithm(), "ecdsa-p256");
        let sig: p256::ecdsa::DerSignature = sk.sign(b"payload");
        assert!(key.verifies(b"payload", sig.as_bytes()));
        assert!(!key.verifies(b"payload!", sig.as_bytes()));
        let other = PublicKey::from_pem("other.pub", &p256_pair(8).1).unwrap();
        assert!(!other.verifies(b"payload", sig.as_bytes()));
    }

    #[test]
    fn ed25519_key_verifies_its_signature() {
        use ed25519_dalek::pkcs8::EncodePublicKey as _;
        let sk = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let pem = sk
            .verifying_key()
            .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .unwrap();
        let key = PublicKey::from_pem("ed.pub", &pem).unwrap();
        assert_eq!(key.algorithm(), "ed25519");
        let sig = ed25519_dalek::Signer::sign(&sk, b"m");
        assert!(key.verifies(b"m", &sig.to_bytes()));
        assert!(!key.verifies(b"n", &sig.to_bytes()));
    }

    #[test]
    fn a_private_key_or_garbage_is_a_clear_error_naming_the_file() {
        let e = PublicKey::from_pem(
            "cosign.key",
            "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nxx\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("cosign.key") && e.contains("PUBLIC KEY"), "{e}");
        let e = PublicKey::from_pem(
            "k.pub",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("k.pub") && e.contains("P-256"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_text_as_a_key_never_panics(s in ".{0,400}") {
            let _ = PublicKey::from_pem("x", &format!("-----BEGIN PUBLIC KEY-----\n{s}\n-----END PUBLIC KEY-----\n"));
        }
        #[test]
        fn arbitrary_signature_bytes_never_verify_or_panic(sig in proptest::collection::vec(0u8..=255, 0..100)) {
            let (_, pem) = p256_pair(9);
            let key = PublicKey::from_pem("k", &pem).unwrap();
            proptest::prop_assert!(!key.verifies(b"payload", &sig));
        }
    }
}
