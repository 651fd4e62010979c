//! Google credentials files, as Application Default Credentials reads them: a service-account
//! key (`"type": "service_account"`) signs a JWT assertion (RS256; `iss` the account's email,
//! `scope` cloud-platform, `aud` the key's `token_uri`, one hour) and exchanges it at the
//! key's `token_uri` (RFC 7523 `jwt-bearer` grant); gcloud's user credentials
//! (`"authorized_user"`) use their refresh token there. Either answer is an access token with
//! `expires_in`. The file is read again at every login, so a rotated key is picked up.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::AccessToken;
use crate::cloud::post_form;
use crate::error::{CloudProblem, KeyFileProblem};
use crate::source::SourcedCredential;

/// Google's OAuth token endpoint, for files that name no `token_uri` (gcloud's user files).
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The scope asked for: Artifact Registry accepts cloud-platform (docker-credential-gcr asks
/// for the same).
pub(crate) const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The grant of a JWT assertion (RFC 7523).
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime of an assertion: Google accepts at most one hour.
const ASSERTION_SECS: u64 = 3600;

/// A parsed credentials file. No `Debug`: it holds the key and secrets.
enum KeyFile {
    ServiceAccount {
        client_email: String,
        key_id: Option<String>,
        key: RsaKeyPair,
        token_uri: String,
    },
    AuthorizedUser {
        client_id: String,
        client_secret: String,
        refresh_token: String,
        token_uri: String,
    },
}

/// Parse a credentials file's text. Errors name fields, never values.
fn parse(text: &str) -> Result<KeyFile, KeyFileProblem> {
    let v: Value = serde_json::from_str(text).map_err(KeyFileProblem::NotJson)?;
    let text_of = |name: &str| {
        v.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let token_uri = text_of("token_uri").unwrap_or_else(|| GOOGLE_TOKEN_URI.to_string());
    match v.get("type").and_then(Value::as_str).unwrap_or_default() {
        "service_account" => {
            let field = |field| {
                text_of(field).ok_or(KeyFileProblem::Field {
                    field,
                    kind: "service_account",
                })
            };
            let client_email = field("client_email")?;
            let key = rsa_key(&field("private_key")?)?;
            Ok(KeyFile::ServiceAccount {
                client_email,
                key_id: text_of("private_key_id"),
                key,
                token_uri,
            })
        }
        "authorized_user" => {
            let field = |field| {
                text_of(field).ok_or(KeyFileProblem::Field {
                    field,
                    kind: "authorized_user",
                })
            };
            Ok(KeyFile::AuthorizedUser {
                client_id: field("client_id")?,
                client_secret: field("client_secret")?,
                refresh_token: field("refresh_token")?,
                token_uri,
            })
        }
        other => Err(KeyFileProblem::UnsupportedType {
            kind: other.chars().take(40).collect(),
        }),
    }
}

/// The DER bytes of the first PEM block labelled `label` in `pem`.
fn pem_block(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let rest = &pem[pem.find(&begin)? + begin.len()..];
    let body: String = rest[..rest.find(&end)?]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD.decode(body).ok().filter(|der| !der.is_empty())
}

/// An RSA key from PEM: PKCS#8 (`BEGIN PRIVATE KEY`, what Google issues) or PKCS#1.
fn rsa_key(pem: &str) -> Result<RsaKeyPair, KeyFileProblem> {
    if let Some(der) = pem_block(pem, "PRIVATE KEY") {
        RsaKeyPair::from_pkcs8(&der).map_err(KeyFileProblem::PrivateKeyRejected)
    } else if let Some(der) = pem_block(pem, "RSA PRIVATE KEY") {
        RsaKeyPair::from_der(&der).map_err(KeyFileProblem::PrivateKeyRejected)
    } else {
        Err(KeyFileProblem::PrivateKeyNotPem)
    }
}

/// The signed JWT assertion of `client_email` for `token_uri` at `now` (Unix seconds).
fn assertion(
    key: &RsaKeyPair,
    key_id: Option<&str>,
    client_email: &str,
    token_uri: &str,
    now: u64,
) -> Result<String, KeyFileProblem> {
    let mut header = json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = key_id {
        header["kid"] = kid.into();
    }
    let claims = json!({
        "iss": client_email,
        "scope": SCOPE,
        "aud": token_uri,
        "iat": now,
        "exp": now + ASSERTION_SECS,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .map_err(KeyFileProblem::Sign)?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// An access token for the credentials file at `path`.
pub(super) async fn token(
    http: &reqwest::Client,
    path: &Path,
) -> Result<SourcedCredential, CloudProblem> {
    let bad = |problem| CloudProblem::KeyFile {
        path: path.to_path_buf(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(KeyFileProblem::Read(e)))?;
    let file = parse(&text).map_err(bad)?;
    let fetched = SystemTime::now();
    let now = fetched
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let refused = |e| bad(KeyFileProblem::TokenRequest(Box::new(e)));
    match file {
        KeyFile::ServiceAccount {
            client_email,
            key_id,
            key,
            token_uri,
        } => {
            let jwt =
                assertion(&key, key_id.as_deref(), &client_email, &token_uri, now).map_err(bad)?;
            let form = [("grant_type", JWT_BEARER), ("assertion", jwt.as_str())];
            let t: AccessToken = post_form(http, &token_uri, &form).await.map_err(refused)?;
            let how = format!(
                "access token of service account {client_email}, key file {}",
                path.display()
            );
            t.into_credential(&token_uri, fetched, how)
        }
        KeyFile::AuthorizedUser {
            client_id,
            client_secret,
            refresh_token,
            token_uri,
        } => {
            let form = [
                ("grant_type", "refresh_token"),
                ("client_id", client_id.as_str()),
                ("client_secret", client_secret.as_str()),
                ("refresh_token", refresh_token.as_str()),
            ];
            let t: AccessToken = post_form(http, &token_uri, &form).await.map_err(refused)?;
            let how = format!(
                "access token of gcloud user credentials (client {client_id}), file {}",
                path.display()
            );
            t.into_credential(&token_uri, fetched, how)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_other_types_and_missing_fields_are_named_without_values() {
        let e = parse(r#"{"type":"external_account","audience":"x"}"#).err();
        assert!(
            matches!(&e, Some(KeyFileProblem::UnsupportedType { kind }) if kind == "external_account")
        );
        let e = parse(r#"[1,2]"#).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("no \"type\"")));
        let e = parse(r#"{"type":"service_account","private_key":"sekrit"}"#).err();
        assert!(matches!(
            e,
            Some(KeyFileProblem::Field {
                field: "client_email",
                ..
            })
        ));
        let e = parse(r#"{"type":"service_account","client_email":"a@b","private_key":"sekrit"}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("not a PEM private key") && !e.contains("sekrit"),
            "{e}"
        );
        let e = parse(r#"{"type":"authorized_user","client_id":"c","refresh_token":"r"}"#).err();
        assert!(matches!(
            e,
            Some(KeyFileProblem::Field {
                field: "client_secret",
                ..
            })
        ));
        let e = parse("{\"type\": \"service_account\", \"private_key\": \"sekrit")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("not a JSON") && !e.contains("sekrit"), "{e}");
    }

    #[test]
    fn pem_that_is_not_an_rsa_key_is_rejected() {
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(b"not a key at all")
        );
        assert!(matches!(
            rsa_key(&pem),
            Err(KeyFileProblem::PrivateKeyRejected(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn pem_blocks_round_trip_any_bytes(der in proptest::collection::vec(proptest::num::u8::ANY, 1..300), width in 1usize..80) {
            let b64 = STANDARD.encode(&der);
            let lines: Vec<String> = b64.as_bytes().chunks(width).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
            let pem = format!("junk\n-----BEGIN PRIVATE KEY-----\r\n{}\r\n-----END PRIVATE KEY-----\n", lines.join("\r\n"));
            proptest::prop_assert_eq!(pem_block(&pem, "PRIVATE KEY"), Some(der));
        }

        #[test]
        fn credentials_file_parsing_never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn service_account_shaped_files_never_panic(email in "\\PC{0,20}", key in "\\PC{0,60}", kind in "(service_account|authorized_user|x)") {
            let text = json!({"type": kind, "client_email": email, "private_key": key,
                "client_id": email, "client_secret": key, "refresh_token": key}).to_string();
            let _ = parse(&text);
        }
    }
}
