//! The auth layer: which scheme a registry wants (found out by one probing request while
//! unknown), its challenges, and bearer tokens — fetched single-flight through the same retry
//! loop as every other request, and cached per registry, scope and credential identity.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderValue};
use tokio::sync::OwnedMutexGuard;
use url::Url;

use super::Client;
use super::creds::{CredentialId, Found};
use super::endpoint::{Endpoint, host_key};
use super::wire::{
    Attempt, Fixed, Reply, Request, Wire, registry_detail, status_error, unauthorized,
};
use crate::challenge::{self, Challenge};
use crate::credentials::Credential;
use crate::detail::{CredentialsUsed, Refusal};
use crate::error::{Error, Result};
use crate::problem::{ChallengeProblem, InvalidProblem};

/// Largest token-server answer read.
const TOKEN_LIMIT: usize = 1024 * 1024;
/// Shortest token lifetime assumed (the distribution spec's default).
const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Longest token lifetime believed: a token is fetched again at least daily.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);
/// A token is renewed this long before it expires, so it never expires in flight.
const RENEW_EARLY: Duration = Duration::from_secs(5);

/// A lock held across awaits (single-flight for probes and token fetches).
pub(super) type AsyncLock = Arc<tokio::sync::Mutex<()>>;

/// How a registry wants to be authenticated, as learned from its answers.
#[derive(Debug, Clone)]
pub(super) enum AuthScheme {
    Anonymous,
    Basic,
    Bearer { realm: Url, service: Option<String> },
}

/// What a bearer token is cached under: the registry, the scope, and who asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct TokenKey {
    registry: String,
    scope: String,
    credential: CredentialId,
}

impl TokenKey {
    pub(super) fn new(registry: &str, scope: &str, credential: CredentialId) -> Self {
        TokenKey {
            registry: registry.to_string(),
            scope: scope.to_string(),
            credential,
        }
    }
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub(super) struct CachedToken {
    token: String,
    expires: Instant,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("token", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

/// The attempts of one registry request, as the wire's retry loop makes them: each sent with
/// the registry's current authorization. `probe` is held while the registry's scheme is
/// unknown; `auth_rounds` counts the challenges answered over the whole request; `reasked`
/// says whether a refused credential's store was already asked again for this request.
struct Authorized<'a> {
    client: &'a Client,
    ep: &'a Endpoint,
    scope: &'a str,
    probe: Option<OwnedMutexGuard<()>>,
    auth_rounds: u32,
    reasked: bool,
}

impl Authorized<'_> {
    /// A refusal of the credential sent: ask its store again at once (a helper's kept answer
    /// may be stale), once per request; after that the error stands, naming the credential.
    fn refused(&mut self, e: Error, sent: Option<&Found>) -> Result<()> {
        if !is_refusal(&e) {
            return Err(e);
        }
        if !self.reasked && sent.is_some() && self.client.forget_credential(&self.ep.key) {
            self.reasked = true;
            self.auth_rounds = 0;
            tracing::debug!(registry = %self.ep.key, "credential refused; asking its source again");
            return Ok(());
        }
        let used = match sent {
            Some(f) => f.used(),
            None => CredentialsUsed::NoneSent {
                searched: self.client.searched(),
            },
        };
        Err(naming_source(e, &used))
    }
}

impl Attempt for Authorized<'_> {
    /// Send with the current authorization, answering challenges (at most two per credential)
    /// on the way. `Err` is an authentication failure, final; `Ok` is the send's outcome for
    /// the retry loop to judge.
    async fn once(&mut self, wire: &Wire, req: &Request) -> Result<Result<Reply>> {
        let (client, ep, scope) = (self.client, self.ep, self.scope);
        loop {
            let (auth, sent) = match client.auth_header(ep, scope).await {
                Ok(a) => a,
                Err((e, found)) => {
                    self.refused(e, found.as_ref())?;
                    continue;
                }
            };
            let sent_auth = auth.is_some();
            let sent = sent.filter(|_| sent_auth);
            let outcome = wire.send_once(&ep.key, req, auth).await;
            match &outcome {
                Ok(reply) if reply.status == StatusCode::UNAUTHORIZED => {
                    self.auth_rounds += 1;
                    let handled = if self.auth_rounds > 2 {
                        Err(unauthorized(reply))
                    } else {
                        client.handle_challenge(ep, scope, reply, sent_auth).await
                    };
                    if let Err(e) = handled {
                        self.refused(e, sent.as_ref())?;
                    }
                    continue;
                }
                Ok(reply) if reply.status == StatusCode::FORBIDDEN => {
                    self.probe = None;
                    self.refused(status_error(reply), sent.as_ref())?;
                    continue;
                }
                // An answer without a challenge: this registry lets anonymous requests in.
                Ok(_) if self.probe.is_some() => {
                    client.set_scheme_if_unknown(&ep.key, AuthScheme::Anonymous);
                }
                _ => {}
            }
            self.probe = None;
            return Ok(outcome);
        }
    }
}

/// Whether an error is the registry refusing a credential (401/403).
fn is_refusal(e: &Error) -> bool {
    matches!(e, Error::Unauthorized { .. } | Error::Denied { .. })
}

/// A 401/403 error that says which credential was sent (its source, never the secret).
fn naming_source(e: Error, used: &CredentialsUsed) -> Error {
    match e {
        Error::Unauthorized { url, detail } => Error::Unauthorized {
            url,
            detail: detail.naming(used),
        },
        Error::Denied { url, detail } => Error::Denied {
            url,
            detail: detail.naming(used),
        },
        other => other,
    }
}

impl Client {
    /// Send a request to a registry with authentication and retries; returns the last reply
    /// read in full.
    pub(super) async fn execute(&self, ep: &Endpoint, scope: &str, req: Request) -> Result<Reply> {
        let mut attempt = Authorized {
            client: self,
            ep,
            scope,
            probe: self.probe_guard(&ep.key).await,
            auth_rounds: 0,
            reasked: false,
        };
        self.inner.wire.retrying(&mut attempt, &req).await
    }

    /// While a registry's auth scheme is unknown, let one request find it out before the
    /// others follow (so 500 parallel queries cause one 401 and one token request, not 500).
    async fn probe_guard(&self, key: &str) -> Option<OwnedMutexGuard<()>> {
        if self.scheme(key).is_some() {
            return None;
        }
        let lock = {
            let mut probes = self.inner.probes.lock();
            probes.entry(key.to_string()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        if self.scheme(key).is_some() {
            None
        } else {
            Some(guard)
        }
    }

    pub(super) fn scheme(&self, key: &str) -> Option<AuthScheme> {
        self.inner.auth.lock().get(key).cloned()
    }

    fn set_scheme(&self, key: &str, scheme: AuthScheme) {
        self.inner.auth.lock().insert(key.to_string(), scheme);
    }

    fn set_scheme_if_unknown(&self, key: &str, scheme: AuthScheme) {
        self.inner
            .auth
            .lock()
            .entry(key.to_string())
            .or_insert(scheme);
    }

    /// The `Authorization` to send and the credential it carries; on failure (a token server
    /// refusing the credential) the credential that was presented.
    async fn auth_header(
        &self,
        ep: &Endpoint,
        scope: &str,
    ) -> std::result::Result<(Option<HeaderValue>, Option<Found>), (Error, Option<Found>)> {
        match self.scheme(&ep.key) {
            None | Some(AuthScheme::Anonymous) => Ok((None, None)),
            Some(AuthScheme::Basic) => {
                let found = self.credentials(&ep.key).await.map_err(|e| (e, None))?;
                let header = match &found.credential {
                    Some(Credential::Basic { username, password }) => {
                        Some(basic_header(username, password))
                    }
                    _ => None,
                };
                Ok((header, Some(found)))
            }
            Some(AuthScheme::Bearer { realm, service }) => {
                let found = self.credentials(&ep.key).await.map_err(|e| (e, None))?;
                let token = match self
                    .token(ep, &realm, service.as_deref(), scope, &found)
                    .await
                {
                    Ok(t) => t,
                    Err(e) => return Err((e, Some(found))),
                };
                let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| {
                    let e = Error::Invalid {
                        what: "token",
                        url: realm.to_string(),
                        problem: InvalidProblem::TokenHeader(e),
                    };
                    (e, None)
                })?;
                v.set_sensitive(true);
                Ok((Some(v), Some(found)))
            }
        }
    }

    /// Learn from a 401: switch to the scheme its challenge names, or say why we cannot.
    async fn handle_challenge(
        &self,
        ep: &Endpoint,
        scope: &str,
        reply: &Reply,
        sent_auth: bool,
    ) -> Result<()> {
        let values: Vec<&str> = reply
            .headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let header_text = values.join(", ");
        let challenges = challenge::parse(&header_text).unwrap_or_default();
        if let Some(b) = challenges.iter().find(|c| c.scheme == "bearer") {
            return self
                .bearer_challenge(ep, scope, reply, sent_auth, b, &header_text)
                .await;
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            return self.basic_challenge(&ep.key, reply, sent_auth).await;
        }
        Err(Error::Unauthorized {
            url: reply.url.clone(),
            detail: if header_text.is_empty() {
                Refusal::NoChallenge(registry_detail(&reply.body))
            } else {
                Refusal::UnusableChallenge {
                    header: header_text,
                }
            },
        })
    }

    async fn bearer_challenge(
        &self,
        ep: &Endpoint,
        scope: &str,
        reply: &Reply,
        sent_auth: bool,
        challenge: &Challenge,
        header_text: &str,
    ) -> Result<()> {
        let key = &ep.key;
        let scheme = bearer_scheme(challenge, header_text)?;
        let had_token = sent_auth && matches!(self.scheme(key), Some(AuthScheme::Bearer { .. }));
        self.set_scheme(key, scheme);
        let token_key = TokenKey {
            registry: key.clone(),
            scope: scope.to_string(),
            credential: self.credentials(key).await?.id,
        };
        let removed = self.inner.tokens.lock().remove(&token_key);
        if had_token && removed.is_none() {
            // A token fetched just now was refused: more tries will not help.
            return Err(unauthorized(reply));
        }
        if had_token && challenge.param("error") == Some("insufficient_scope") {
            return Err(Error::Denied {
                url: reply.url.clone(),
                detail: Refusal::InsufficientScope {
                    scope: scope.to_string(),
                    words: registry_detail(&reply.body),
                },
            });
        }
        Ok(())
    }

    async fn basic_challenge(&self, key: &str, reply: &Reply, sent_auth: bool) -> Result<()> {
        if sent_auth && matches!(self.scheme(key), Some(AuthScheme::Basic)) {
            return Err(Error::Unauthorized {
                url: reply.url.clone(),
                detail: Refusal::BasicRejected {
                    registry: key.to_string(),
                },
            });
        }
        match self.credentials(key).await?.credential {
            Some(Credential::Basic { .. }) => {
                self.set_scheme(key, AuthScheme::Basic);
                Ok(())
            }
            _ => Err(Error::Unauthorized {
                url: reply.url.clone(),
                detail: Refusal::NoBasicCredentials {
                    registry: key.to_string(),
                },
            }),
        }
    }

    /// A bearer token for `scope`, presenting `found`: from the cache, else fetched once however
    /// many requests wait for it.
    async fn token(
        &self,
        ep: &Endpoint,
        realm: &Url,
        service: Option<&str>,
        scope: &str,
        found: &Found,
    ) -> Result<String> {
        let key = TokenKey {
            registry: ep.key.clone(),
            scope: scope.to_string(),
            credential: found.id.clone(),
        };
        if let Some(t) = self.cached_token(&key) {
            return Ok(t);
        }
        let lock = {
            let mut locks = self.inner.token_locks.lock();
            // A lock nobody holds or waits for is as good as a new one: drop it.
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(key.clone()).or_default().clone()
        };
        let _guard = lock.lock().await;
        if let Some(t) = self.cached_token(&key) {
            return Ok(t);
        }
        // Boxed: the token request's retry loop runs inside the registry request's.
        let (token, lifetime) =
            Box::pin(self.request_token(realm, service, scope, found.credential.as_ref())).await?;
        let now = Instant::now();
        let mut tokens = self.inner.tokens.lock();
        // Forget expired tokens (rotated secrets, scopes no longer used) as new ones come.
        tokens.retain(|_, t| t.expires > now);
        // A token never outlives the credential it was obtained with.
        let mut expires = token_expiry(now, lifetime);
        if let Some(at) = found.expires_at {
            let left = at
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            expires = expires.min(now + left);
        }
        tokens.insert(
            key,
            CachedToken {
                token: token.clone(),
                expires,
            },
        );
        Ok(token)
    }

    /// Ask the token server, through the same retry loop as every request.
    async fn request_token(
        &self,
        realm: &Url,
        service: Option<&str>,
        scope: &str,
        creds: Option<&Credential>,
    ) -> Result<(String, Duration)> {
        let (req, auth) = token_request(realm, service, scope, creds);
        let mut attempt = Fixed {
            host: host_key(realm),
            auth,
        };
        let reply = self.inner.wire.retrying(&mut attempt, &req).await?;
        if reply.status == StatusCode::UNAUTHORIZED || reply.status == StatusCode::FORBIDDEN {
            return Err(Error::Unauthorized {
                url: realm.to_string(),
                detail: Refusal::TokenRefused {
                    anonymous: creds.is_none(),
                    scope: scope.to_string(),
                    words: registry_detail(&reply.body),
                },
            });
        }
        if !reply.status.is_success() {
            return Err(status_error(&reply));
        }
        parse_token_answer(&reply.body, realm.as_str())
    }

    /// When the cached token under `key` stops being used, if there is one.
    pub(super) fn token_expiry(&self, key: &TokenKey) -> Option<Instant> {
        self.inner.tokens.lock().get(key).map(|t| t.expires)
    }

    fn cached_token(&self, key: &TokenKey) -> Option<String> {
        let tokens = self.inner.tokens.lock();
        tokens
            .get(key)
            .filter(|t| t.expires > Instant::now())
            .map(|t| t.token.clone())
    }
}

/// The scheme a Bearer challenge names: its realm (an http(s) URL) and service.
fn bearer_scheme(challenge: &Challenge, header_text: &str) -> Result<AuthScheme> {
    let realm = challenge.param("realm").ok_or_else(|| Error::Challenge {
        header: header_text.to_string(),
        problem: ChallengeProblem::NoRealm,
    })?;
    let realm = Url::parse(realm)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| Error::Challenge {
            header: header_text.to_string(),
            problem: ChallengeProblem::RealmNotHttp {
                realm: realm.to_string(),
            },
        })?;
    Ok(AuthScheme::Bearer {
        realm,
        service: challenge.param("service").map(str::to_string),
    })
}

/// The token request: the OAuth2 refresh grant (POST) for an identity token, else a GET with
/// basic credentials when there are any. Several scopes (a cross-repository mount) go as
/// repeated parameters.
fn token_request(
    realm: &Url,
    service: Option<&str>,
    scope: &str,
    creds: Option<&Credential>,
) -> (Request, Option<HeaderValue>) {
    if let Some(Credential::IdentityToken(refresh)) = creds {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "refresh_token");
        form.append_pair("refresh_token", refresh);
        form.append_pair("client_id", "ferry");
        if let Some(s) = service {
            form.append_pair("service", s);
        }
        for sc in scope.split(' ') {
            form.append_pair("scope", sc);
        }
        let req = Request::new(Method::POST, realm.clone())
            .body(
                Some("application/x-www-form-urlencoded".into()),
                form.finish().into(),
            )
            .limit(TOKEN_LIMIT);
        return (req, None);
    }
    let mut url = realm.clone();
    {
        let mut q = url.query_pairs_mut();
        if let Some(s) = service {
            q.append_pair("service", s);
        }
        for sc in scope.split(' ') {
            q.append_pair("scope", sc);
        }
    }
    let auth = match creds {
        Some(Credential::Basic { username, password }) => Some(basic_header(username, password)),
        _ => None,
    };
    (Request::new(Method::GET, url).limit(TOKEN_LIMIT), auth)
}

/// The token and its lifetime from a token server's JSON answer (`token` or `access_token`,
/// `expires_in` seconds). The lifetime is clamped to 60 s ..= 24 h whatever the server says: a
/// missing, negative, fractional, huge or non-numeric `expires_in` never fails the answer and
/// never overflows a clock.
fn parse_token_answer(body: &[u8], url: &str) -> Result<(String, Duration)> {
    #[derive(serde::Deserialize)]
    struct TokenAnswer {
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        access_token: Option<String>,
        #[serde(default)]
        expires_in: Option<serde_json::Value>,
    }
    let ans: TokenAnswer = serde_json::from_slice(body).map_err(|e| Error::Invalid {
        what: "token",
        url: url.to_string(),
        problem: InvalidProblem::Json(e),
    })?;
    let token = ans
        .token
        .filter(|t| !t.is_empty())
        .or(ans.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| Error::Invalid {
            what: "token",
            url: url.to_string(),
            problem: InvalidProblem::NoToken,
        })?;
    let secs = ans.expires_in.as_ref().and_then(expires_in_secs);
    let lifetime =
        Duration::from_secs(secs.unwrap_or(0)).clamp(MIN_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME);
    Ok((token, lifetime))
}

/// Whole seconds from an `expires_in` value: a number (fractions dropped, negatives and NaN as
/// 0, huge values saturating) or a string holding one; anything else is no answer.
fn expires_in_secs(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_i64().map(|i| u64::try_from(i).unwrap_or(0)))
            // `as` saturates: 1e300 → u64::MAX, -5.0 → 0, NaN → 0.
            .or_else(|| n.as_f64().map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f as u64),
        _ => None,
    }
}

/// When a token received at `now` with `lifetime` stops being used: a little early, so it
/// never expires in flight; `now` itself if the clock cannot go that far.
fn token_expiry(now: Instant, lifetime: Duration) -> Instant {
    now.checked_add(lifetime.saturating_sub(RENEW_EARLY))
        .unwrap_or(now)
}

/// `Authorization: Basic …`, marked sensitive so it never shows in logs.
pub(super) fn basic_header(user: &str, pass: &str) -> HeaderValue {
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let mut v = HeaderValue::from_str(&format!("Basic {enc}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    v.set_sensitive(true);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lifetime_of(expires_in: &str) -> Duration {
        let body = format!(r#"{{"token":"t","expires_in":{expires_in}}}"#);
        parse_token_answer(body.as_bytes(), "http://t/").unwrap().1
    }

    #[test]
    fn hostile_expires_in_values_are_clamped_not_fatal() {
        let day = MAX_TOKEN_LIFETIME;
        assert_eq!(lifetime_of("300"), Duration::from_secs(300));
        assert_eq!(lifetime_of("1"), MIN_TOKEN_LIFETIME);
        assert_eq!(lifetime_of("18446744073709551615"), day);
        assert_eq!(lifetime_of("18446744073709551616"), day);
        assert_eq!(lifetime_of("1e300"), day);
        assert_eq!(lifetime_of("-5"), MIN_TOKEN_LIFETIME);
        assert_eq!(lifetime_of("-9223372036854775808"), MIN_TOKEN_LIFETIME);
        assert_eq!(lifetime_of("299.9"), Duration::from_secs(299));
        assert_eq!(lifetime_of(r#""600""#), Duration::from_secs(600));
        assert_eq!(lifetime_of("null"), MIN_TOKEN_LIFETIME);
        assert_eq!(lifetime_of("{}"), MIN_TOKEN_LIFETIME);
        let e = parse_token_answer(br#"{"expires_in":300}"#, "http://t/").unwrap_err();
        assert!(e.to_string().contains("neither token"), "{e}");
    }

    proptest! {
        #[test]
        fn token_lifetime_stays_between_a_minute_and_a_day_for_any_expires_in(
            v in prop_oneof![
                any::<u64>().prop_map(|n| n.to_string()),
                any::<i64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_filter("JSON has no NaN/inf", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
                "[1-9][0-9]{19,299}",
                "-?[1-9][0-9]{0,29}\\.[0-9]{1,30}(e[+-]?[0-9]{1,2})?",
                "\\PC{0,30}".prop_map(|s| serde_json::Value::String(s).to_string()),
            ]
        ) {
            let body = format!(r#"{{"access_token":"t","expires_in":{v}}}"#);
            let (_, life) = parse_token_answer(body.as_bytes(), "http://t/").unwrap();
            prop_assert!((MIN_TOKEN_LIFETIME..=MAX_TOKEN_LIFETIME).contains(&life));
        }

        #[test]
        fn token_answers_of_any_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_token_answer(&body, "http://t/");
        }

        #[test]
        fn token_expiry_is_never_before_now_for_any_lifetime(secs in any::<u64>(), nanos in 0u32..1_000_000_000) {
            let now = Instant::now();
            let at = token_expiry(now, Duration::new(secs, nanos));
            prop_assert!(at >= now);
        }

        #[test]
        fn bearer_realms_are_accepted_only_as_http_urls(realm in "\\PC{0,60}|(https?|ftp)://[a-z0-9.]{1,20}(:[0-9]{1,25})?/[a-z]{0,10}") {
            let c = Challenge {
                scheme: "bearer".into(),
                params: [("realm".to_string(), realm.clone())].into_iter().collect(),
            };
            match bearer_scheme(&c, "h") {
                Ok(AuthScheme::Bearer { realm: u, .. }) => {
                    prop_assert!(matches!(u.scheme(), "http" | "https"));
                }
                Ok(other) => prop_assert!(false, "{other:?}"),
                Err(e) => prop_assert!(matches!(e, Error::Challenge { .. }), "{e:?}"),
            }
        }
    }
}
