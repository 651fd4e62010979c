//! Google credentials files, as Application Default Credentials reads them: a service-account
//! key (`"type": "service_account"`) signs a JWT assertion (RS256; `iss` the account's email,
//! `scope` cloud-platform, `aud` the key's `token_uri`, one hour) and exchanges it at the
//! key's `token_uri` (RFC 7523 `jwt-bearer` grant); gcloud's user credentials
//! (`"authorized_user"`) use their refresh token there. Either answer is an access token with
//! `expires_in`. The file is read again at every login, so a rotated key is picked up.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::AccessToken;
use crate::cloud::post_form;
use crate::error::{CloudProblem, KeyFileProblem};
use crate::jwt::Rs256Key;
use crate::source::{CloudLogin, SourcedCredential};

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
        key: Rs256Key,
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
            let key =
                Rs256Key::from_pem(&field("private_key")?).map_err(KeyFileProblem::PrivateKey)?;
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

/// The signed JWT assertion of `client_email` for `token_uri` at `now` (Unix seconds).
fn assertion(
    key: &Rs256Key,
    key_id: Option<&str>,
    client_email: &str,
    token_uri: &str,
    now: u64,
) -> Result<String, KeyFileProblem> {
    let claims = json!({
        "iss": client_email,
        "scope": SCOPE,
        "aud": token_uri,
        "iat": now,
        "exp": now + ASSERTION_SECS,
    });
    key.sign(key_id, &claims).map_err(KeyFileProblem::Sign)
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
            let how = CloudLogin::GcpServiceAccount {
                email: client_email.clone(),
                key_file: path.to_path_buf(),
            };
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
            let how = CloudLogin::GcpUser {
                client_id: client_id.clone(),
                file: path.to_path_buf(),
            };
            t.into_credential(&token_uri, fetched, how)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::RsaKeyProblem;

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
        use base64::Engine as _;
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(b"not a key at all")
        );
        let text = json!({"type": "service_account", "client_email": "a@b", "private_key": pem});
        assert!(matches!(
            parse(&text.to_string()),
            Err(KeyFileProblem::PrivateKey(RsaKeyProblem::Rejected(_)))
        ));
    }

    proptest::proptest! {
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
