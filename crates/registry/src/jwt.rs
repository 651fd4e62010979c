//! RS256 JSON Web Tokens (RFC 7515/7519) signed with an RSA private key read from PEM: the JWT
//! assertion of a Google service-account key ([`crate::gcp`]) and `ferry-deploy`'s GitHub App
//! JWT use this one signer. PEM is read with the `pem` crate; signing is aws-lc-rs (the crypto
//! library rustls uses here).

use std::fmt;

use aws_lc_rs::error::{KeyRejected, Unspecified};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// An RSA private key that signs RS256 JWTs. `Debug` never shows the key.
pub struct Rs256Key(RsaKeyPair);

impl fmt::Debug for Rs256Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rs256Key(<redacted>)")
    }
}

/// Why a PEM text is not a usable RSA private key. Never holds the key's text.
#[derive(Debug)]
pub enum RsaKeyProblem {
    /// No `BEGIN PRIVATE KEY` (PKCS#8) or `BEGIN RSA PRIVATE KEY` (PKCS#1) block.
    NotPem,
    /// A PEM block, but not an RSA key the signer accepts.
    Rejected(KeyRejected),
}

impl fmt::Display for RsaKeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RsaKeyProblem::NotPem => {
                f.write_str("not a PEM RSA private key (BEGIN RSA PRIVATE KEY / BEGIN PRIVATE KEY)")
            }
            RsaKeyProblem::Rejected(e) => write!(f, "not a usable RSA key: {e}"),
        }
    }
}

impl Rs256Key {
    /// The first PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`) block of
    /// `pem`; text around it is ignored.
    pub fn from_pem(pem: &str) -> Result<Rs256Key, RsaKeyProblem> {
        let blocks = pem::parse_many(pem).map_err(|_| RsaKeyProblem::NotPem)?;
        let key = blocks
            .iter()
            .find_map(|b| match b.tag() {
                "PRIVATE KEY" => Some(RsaKeyPair::from_pkcs8(b.contents())),
                "RSA PRIVATE KEY" => Some(RsaKeyPair::from_der(b.contents())),
                _ => None,
            })
            .ok_or(RsaKeyProblem::NotPem)?;
        key.map(Rs256Key).map_err(RsaKeyProblem::Rejected)
    }

    /// The compact JWT of `claims`: header `{"alg":"RS256","typ":"JWT"}` (with `kid` when
    /// given), both parts base64url without padding, then the RS256 signature over them.
    pub fn sign(&self, key_id: Option<&str>, claims: &Value) -> Result<String, Unspecified> {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = key_id {
            header["kid"] = kid.into();
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.0.public_modulus_len()];
        self.0.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut signature,
        )?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use base64::engine::general_purpose::STANDARD;

    fn pem(label: &str, der: &[u8]) -> String {
        pem_wrapped(label, der, 64)
    }

    /// `der` as a PEM block with lines of `width` characters, CRLF, text around it.
    fn pem_wrapped(label: &str, der: &[u8], width: usize) -> String {
        let body: Vec<String> = STANDARD
            .encode(der)
            .as_bytes()
            .chunks(width)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        format!(
            "junk before\r\n-----BEGIN {label}-----\r\n{}\r\n-----END {label}-----\r\n",
            body.join("\r\n")
        )
    }

    #[test]
    fn a_pkcs8_key_signs_a_jwt_its_public_key_verifies() {
        let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der = AsDer::<Pkcs8V1Der>::as_der(&key).unwrap();
        let signer = Rs256Key::from_pem(&pem("PRIVATE KEY", der.as_ref())).unwrap();
        let jwt = signer.sign(Some("k1"), &json!({"iss": "me"})).unwrap();
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let (header, claims) = input.split_once('.').unwrap();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}));
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(claims, json!({"iss": "me"}));
        let public = key.public_key().as_ref().to_vec();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
            .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap())
            .unwrap();
    }

    #[test]
    fn other_pem_and_non_keys_are_refused_without_echoing_them() {
        let ec = "-----BEGIN EC PRIVATE KEY-----\nc2VjcmV0\n-----END EC PRIVATE KEY-----";
        assert!(matches!(Rs256Key::from_pem(ec), Err(RsaKeyProblem::NotPem)));
        assert!(matches!(
            Rs256Key::from_pem("sekrit"),
            Err(RsaKeyProblem::NotPem)
        ));
        let junk = pem("PRIVATE KEY", b"not a key at all");
        let e = Rs256Key::from_pem(&junk).unwrap_err();
        assert!(matches!(e, RsaKeyProblem::Rejected(_)));
        assert!(!e.to_string().contains("bm90IGEga2V5"), "{e}");
    }

    /// One PKCS#8 key for the property tests (generating one takes a while).
    fn pkcs8() -> &'static [u8] {
        static KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        KEY.get_or_init(|| {
            let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
            AsDer::<Pkcs8V1Der>::as_der(&key).unwrap().as_ref().to_vec()
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        #[test]
        fn a_key_wrapped_at_any_line_width_is_read(width in 1usize..100) {
            let signer = Rs256Key::from_pem(&pem_wrapped("PRIVATE KEY", pkcs8(), width));
            proptest::prop_assert!(signer.is_ok());
        }

        #[test]
        fn any_text_or_pem_wrapped_bytes_is_a_key_or_a_problem_never_a_panic(
            text in "\\PC{0,200}",
            der in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            label in "(PRIVATE KEY|RSA PRIVATE KEY|PUBLIC KEY)",
        ) {
            let _ = Rs256Key::from_pem(&text);
            let _ = Rs256Key::from_pem(&pem(&label, &der));
        }
    }
}
