//! Checks the fakes of cloud token services share (the cloud_* and real_cloud_logins tests):
//! AWS SigV4 signatures re-verified with the SDK's own signer, and Google service-account JWT
//! assertions verified with the key's public key, as the services document them.

use std::time::SystemTime;

use base64::Engine as _;
use serde_json::{Value, json};
use wiremock::Request;

/// `X-Amz-Date` (`20261205T201500Z`) as a time.
fn amz_date(s: &str) -> Option<SystemTime> {
    let t = format!(
        "{}-{}-{}T{}:{}:{}Z",
        s.get(0..4)?,
        s.get(4..6)?,
        s.get(6..8)?,
        s.get(9..11)?,
        s.get(11..13)?,
        s.get(13..15)?
    );
    humantime::parse_rfc3339(&t).ok()
}

/// The access key id of `req`'s SigV4 `Authorization` header.
pub fn signing_key_id(req: &Request) -> Option<String> {
    let auth = req.headers.get("authorization")?.to_str().ok()?;
    let cred = auth.split("Credential=").nth(1)?;
    Some(cred.split('/').next()?.to_string())
}

/// Whether `req` carries a valid SigV4 signature by `key_id`/`secret` (and `session_token`)
/// for service `ecr` in eu-west-1: the signature is computed again from the request and
/// compared.
pub fn signature_ok(
    req: &Request,
    key_id: &str,
    secret: &str,
    session_token: Option<&str>,
) -> bool {
    let header = |n: &str| req.headers.get(n).and_then(|v| v.to_str().ok());
    let Some(auth) = header("authorization") else {
        return false;
    };
    let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return false;
    };
    let field = |name: &str| {
        rest.split(", ")
            .find_map(|p| p.strip_prefix(name).map(str::to_string))
    };
    let (Some(cred), Some(signed), Some(sig)) = (
        field("Credential="),
        field("SignedHeaders="),
        field("Signature="),
    ) else {
        return false;
    };
    let scope: Vec<&str> = cred.split('/').collect();
    if scope.len() != 5 || scope[0] != key_id || scope[2] != "eu-west-1" || scope[3] != "ecr" {
        return false;
    }
    if header("x-amz-security-token") != session_token
        || (session_token.is_some() && !signed.split(';').any(|h| h == "x-amz-security-token"))
    {
        return false;
    }
    let Some(time) = header("x-amz-date").and_then(amz_date) else {
        return false;
    };
    let names: Vec<&str> = signed.split(';').collect();
    let headers: Vec<(&str, &str)> = names
        .iter()
        .filter_map(|n| header(n).map(|v| (*n, v)))
        .collect();
    let identity = aws_credential_types::Credentials::new(
        key_id,
        secret,
        session_token.map(str::to_string),
        None,
        "test",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-1")
        .name("ecr")
        .time(time)
        .settings(aws_sigv4::http_request::SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = aws_sigv4::http_request::SignableRequest::new(
        req.method.as_str(),
        req.url.as_str(),
        headers.into_iter(),
        aws_sigv4::http_request::SignableBody::Bytes(&req.body),
    )
    .unwrap();
    let (_, expected) = aws_sigv4::http_request::sign(signable, &params)
        .unwrap()
        .into_parts();
    expected == sig
}

// ---- Google ----

pub const EMAIL: &str = "ferry-reader@acme-prod.iam.gserviceaccount.com";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Why the fake token endpoint refused a token request.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejected {
    /// A form field is missing or wrong.
    Form(&'static str),
    /// The JWT's header is not RS256 with a known `kid`.
    Header(&'static str),
    /// The signature does not verify with the key's public key.
    Signature,
    /// A claim is missing or wrong.
    Claim(&'static str),
    /// The account is disabled.
    Disabled,
}

/// A service-account key made at test time.
pub struct Key {
    pub id: String,
    pub pem: String,
    pub public: Vec<u8>,
}

pub fn new_key(id: &str) -> Key {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair;
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    Key {
        id: id.to_string(),
        pem: format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        ),
        public: key.public_key().as_ref().to_vec(),
    }
}

/// A service-account key file as the Cloud console downloads it.
pub fn write_key_file(path: &std::path::Path, key: &Key, token_uri: &str) {
    let file = json!({
        "type": "service_account",
        "project_id": "acme-prod",
        "private_key_id": key.id,
        "private_key": key.pem,
        "client_email": EMAIL,
        "client_id": "113370000000000000000",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    });
    std::fs::write(path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
}

pub fn b64url_json(part: &str) -> Option<Value> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The checks of Google's token endpoint on a `jwt-bearer` grant, as documented for
/// service-account assertions.
pub fn check_assertion(keys: &[(String, Vec<u8>)], aud: &str, jwt: &str) -> Result<(), Rejected> {
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err(Rejected::Form("assertion is not a JWS"));
    };
    let h = b64url_json(header).ok_or(Rejected::Header("not base64url JSON"))?;
    if h["alg"] != "RS256" || h["typ"] != "JWT" {
        return Err(Rejected::Header("alg RS256, typ JWT"));
    }
    let (_, public) = keys
        .iter()
        .find(|(id, _)| h["kid"] == id.as_str())
        .ok_or(Rejected::Header("unknown kid"))?;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Rejected::Signature)?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
        .verify(format!("{header}.{claims}").as_bytes(), &sig)
        .map_err(|_| Rejected::Signature)?;
    let c = b64url_json(claims).ok_or(Rejected::Claim("not base64url JSON"))?;
    if c["iss"] != EMAIL {
        return Err(Rejected::Claim("iss"));
    }
    if c["aud"] != aud {
        return Err(Rejected::Claim("aud"));
    }
    let scopes = c["scope"].as_str().unwrap_or_default();
    if !scopes
        .split(' ')
        .any(|x| x == "https://www.googleapis.com/auth/cloud-platform")
    {
        return Err(Rejected::Claim("scope"));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (Some(iat), Some(exp)) = (c["iat"].as_u64(), c["exp"].as_u64()) else {
        return Err(Rejected::Claim("iat/exp"));
    };
    if iat > now + 60 || exp <= now || exp - iat > 3600 {
        return Err(Rejected::Claim("iat/exp window"));
    }
    Ok(())
}
