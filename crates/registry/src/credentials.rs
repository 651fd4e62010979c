//! Registry credentials: Docker's `config.json` (`auths`, `credHelpers`, `credsStore`) and the
//! `docker-credential-*` helper protocol.
//!
//! The library never reads environment variables: the caller says where the config directory is
//! (ferry's binaries use `$DOCKER_CONFIG`, else `~/.docker`).

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::error::{CredentialProblem, EntryProblem, Error, Result};
use crate::source::{CredentialSource, DEFAULT_CREDENTIAL_TTL, SourcedCredential};
use ferry_core::sync::Lock;

/// Credentials for one registry. `Debug` never prints secrets.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// User name and password (or access token used as a password).
    Basic {
        /// User name.
        username: String,
        /// Password or personal access token.
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken` in config.json, or a helper's `<token>` user).
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

/// Where the client gets credentials from: the IO seam for credentials.
///
/// `get` and `lookup` may block (they may run a helper program or read a file); the client
/// calls them on a blocking thread for every request it authenticates, so a store that is
/// expensive to ask keeps its own answers as long as they are good (a [`DockerConfig`] keeps a
/// helper's answer for its TTL; a [`crate::DockerConfigFile`] re-reads its file only when it
/// changed).
pub trait CredentialStore: Send + Sync + fmt::Debug {
    /// Credentials for `registry` (a host with optional port, e.g. `docker.io`,
    /// `127.0.0.1:5000`), or `None` for anonymous access.
    fn get(&self, registry: &str) -> Result<Option<Credential>>;

    /// The credential for `registry` with where it came from and when it expires. The default
    /// wraps [`CredentialStore::get`] with an unnamed source.
    fn lookup(&self, registry: &str) -> Result<Option<SourcedCredential>> {
        Ok(self
            .get(registry)?
            .map(|secret| SourcedCredential::new(CredentialSource::Unnamed, secret)))
    }

    /// The registry refused the credential this store gave for `registry`: forget any answer
    /// kept for it. `true` when asking again may give another credential (a helper is asked
    /// anew), `false` when it would give the same one.
    fn refused(&self, registry: &str) -> bool {
        let _ = registry;
        false
    }

    /// Where this store looked, said when it had nothing for a registry that then refused
    /// anonymous access ("ServiceAccount ns/sa: secret regcred not found"). Never a secret.
    fn searched(&self) -> Option<String> {
        None
    }
}

/// No credentials at all: anonymous access everywhere.
#[derive(Debug, Default, Clone)]
pub struct Anonymous;

impl CredentialStore for Anonymous {
    fn get(&self, _registry: &str) -> Result<Option<Credential>> {
        Ok(None)
    }
}

/// Fixed credentials per registry (for tools that hold their own secrets, and for tests).
#[derive(Default, Clone)]
pub struct StaticCredentials(pub HashMap<String, Credential>);

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl CredentialStore for StaticCredentials {
    fn get(&self, registry: &str) -> Result<Option<Credential>> {
        Ok(self.0.get(registry).cloned())
    }

    fn lookup(&self, registry: &str) -> Result<Option<SourcedCredential>> {
        Ok(self
            .get(registry)?
            .map(|secret| SourcedCredential::new(CredentialSource::Static, secret)))
    }
}

/// Several stores asked in order; the first that has credentials for a registry wins.
#[derive(Debug, Clone, Default)]
pub struct ChainCredentials(pub Vec<std::sync::Arc<dyn CredentialStore>>);

impl CredentialStore for ChainCredentials {
    fn get(&self, registry: &str) -> Result<Option<Credential>> {
        Ok(self.lookup(registry)?.map(|c| c.secret))
    }

    fn lookup(&self, registry: &str) -> Result<Option<SourcedCredential>> {
        for store in &self.0 {
            if let Some(c) = store.lookup(registry)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    fn refused(&self, registry: &str) -> bool {
        // Every store forgets (no short-circuit): the one that answered is among them.
        let mut again = false;
        for store in &self.0 {
            again |= store.refused(registry);
        }
        again
    }

    fn searched(&self) -> Option<String> {
        let all: Vec<String> = self.0.iter().filter_map(|s| s.searched()).collect();
        (!all.is_empty()).then(|| all.join("; "))
    }
}

/// Docker Hub's key in config.json.
pub const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// A helper's answer for one registry and when it was given; the mutex around it makes
/// concurrent lookups of one registry run the helper once.
type HelperSlot = Arc<std::sync::Mutex<Option<(Instant, Option<Credential>)>>>;

/// The parsed content of a Docker `config.json`. Credential helpers' answers are kept for the
/// helper TTL ([`DockerConfig::with_helper_ttl`], default 10 minutes), then asked again; clones
/// share those answers.
#[derive(Clone)]
pub struct DockerConfig {
    path: Option<PathBuf>,
    origin: String,
    auths: HashMap<String, AuthEntry>,
    cred_helpers: HashMap<String, String>,
    creds_store: Option<String>,
    helper_dir: Option<PathBuf>,
    helper_ttl: Duration,
    helper_answers: Arc<Lock<HashMap<String, HelperSlot>>>,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            path: None,
            origin: "config.json".into(),
            auths: HashMap::new(),
            cred_helpers: HashMap::new(),
            creds_store: None,
            helper_dir: None,
            helper_ttl: DEFAULT_CREDENTIAL_TTL,
            helper_answers: Arc::default(),
        }
    }
}

#[derive(Clone, Default, serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(serde::Deserialize)]
struct RawConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerConfig")
            .field("path", &self.path)
            .field("auths", &self.auths.keys().collect::<Vec<_>>())
            .field("cred_helpers", &self.cred_helpers)
            .field("creds_store", &self.creds_store)
            .finish()
    }
}

impl DockerConfig {
    /// Load `DIR/config.json`. A missing file is an empty configuration (anonymous access);
    /// an unreadable or malformed one is an error naming the file.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        match std::fs::read(&path) {
            Ok(bytes) => Self::parse(&bytes, Some(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(Error::Credentials {
                registry: "*".into(),
                problem: CredentialProblem::Read { path, source },
            }),
        }
    }

    /// Parse the content of a config.json (a pull secret's `.dockerconfigjson`, say). A
    /// malformed one is [`Error::Credentials`] with [`CredentialProblem::Parse`].
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        Self::parse(bytes, None)
    }

    fn parse(bytes: &[u8], path: Option<PathBuf>) -> Result<Self> {
        let raw: RawConfig = match serde_json::from_slice(bytes) {
            Ok(raw) => raw,
            Err(source) => {
                return Err(Error::Credentials {
                    registry: "*".into(),
                    problem: CredentialProblem::Parse { path, source },
                });
            }
        };
        Ok(DockerConfig {
            origin: path
                .as_ref()
                .map_or_else(|| "config.json".into(), |p| p.display().to_string()),
            path,
            auths: raw.auths,
            cred_helpers: raw.cred_helpers,
            creds_store: raw.creds_store.filter(|s| !s.is_empty()),
            ..DockerConfig::default()
        })
    }

    /// Name what this configuration came from in sources and errors (`secret NS/NAME`).
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = origin.into();
        self
    }

    /// Use a credential helper's answer for at most `ttl` before asking it again.
    pub fn with_helper_ttl(mut self, ttl: Duration) -> Self {
        self.helper_ttl = ttl;
        self
    }

    /// A helper's answer for `registry`: the one kept if it is younger than the TTL, else the
    /// helper's new answer (one run however many ask at once).
    fn helper_answer_cached(&self, helper: &str, registry: &str) -> Result<Option<Credential>> {
        let slot = self
            .helper_answers
            .lock()
            .entry(registry.to_string())
            .or_default()
            .clone();
        let mut kept = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((asked, answer)) = kept.as_ref()
            && asked.elapsed() < self.helper_ttl
        {
            return Ok(answer.clone());
        }
        let answer = self.run_helper(helper, registry)?;
        tracing::debug!(
            registry,
            helper,
            found = answer.is_some(),
            "asked credential helper"
        );
        *kept = Some((Instant::now(), answer.clone()));
        Ok(answer)
    }

    fn sourced_lookup(&self, registry: &str) -> Result<Option<SourcedCredential>> {
        if let Some(helper) = self.helper_for(registry) {
            let helper = helper.to_string();
            if let Some(c) = self.helper_answer_cached(&helper, registry)? {
                let source = CredentialSource::Helper {
                    name: helper,
                    origin: self.origin.clone(),
                };
                return Ok(Some(SourcedCredential::new(source, c)));
            }
        }
        let Some((key, entry)) = self.auth_entry(registry) else {
            return Ok(None);
        };
        let secret = decode_entry(entry).map_err(|problem| Error::Credentials {
            registry: registry.into(),
            problem: CredentialProblem::Entry {
                path: self.path.clone(),
                problem,
            },
        })?;
        let source = CredentialSource::ConfigFile {
            origin: self.origin.clone(),
            key: key.to_string(),
        };
        Ok(secret.map(|s| SourcedCredential::new(source, s)))
    }

    /// Look for `docker-credential-*` helpers in `dir` instead of `$PATH` (tests, sandboxes).
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dir = Some(dir.into());
        self
    }

    fn helper_for(&self, registry: &str) -> Option<&str> {
        let keys = lookup_keys(registry);
        for (k, v) in &self.cred_helpers {
            if keys.iter().any(|key| hostname_of(k) == hostname_of(key)) {
                return Some(v);
            }
        }
        self.creds_store.as_deref()
    }

    fn auth_entry(&self, registry: &str) -> Option<(&str, &AuthEntry)> {
        let keys = lookup_keys(registry);
        // Exact keys first (in preference order), then keys that normalize to the same host.
        for key in &keys {
            if let Some((k, e)) = self.auths.get_key_value(key.as_str()) {
                return Some((k, e));
            }
        }
        self.auths.iter().find_map(|(k, e)| {
            keys.iter()
                .any(|key| hostname_of(k) == hostname_of(key))
                .then_some((k.as_str(), e))
        })
    }

    fn run_helper(&self, helper: &str, registry: &str) -> Result<Option<Credential>> {
        let program = format!("docker-credential-{helper}");
        let program = match &self.helper_dir {
            Some(d) => d.join(&program),
            None => PathBuf::from(program),
        };
        let server = helper_server_url(registry);
        let child = Command::new(&program)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(
                    helper = %program.display(),
                    registry,
                    "credential helper not installed; continuing anonymously"
                );
                return Ok(None);
            }
            Err(source) => {
                return Err(Error::Credentials {
                    registry: registry.into(),
                    problem: CredentialProblem::HelperStart { program, source },
                });
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(server.as_bytes());
        }
        let out = match child.wait_with_output() {
            Ok(out) => out,
            Err(source) => {
                return Err(Error::Credentials {
                    registry: registry.into(),
                    problem: CredentialProblem::HelperWait { program, source },
                });
            }
        };
        helper_answer(program, registry, &out).map_err(|problem| Error::Credentials {
            registry: registry.into(),
            problem,
        })
    }
}

/// What a `docker-credential-* get` run said: credentials, none ("credentials not found", an
/// empty secret), or what is wrong with its answer.
fn helper_answer(
    program: PathBuf,
    registry: &str,
    out: &std::process::Output,
) -> std::result::Result<Option<Credential>, CredentialProblem> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // The helper protocol says "credentials not found in native keychain" on stdout.
        let msg = format!(
            "{}{}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        if msg.to_ascii_lowercase().contains("credentials not found") {
            tracing::debug!(registry, "credential helper has no credentials");
            return Ok(None);
        }
        return Err(CredentialProblem::HelperFailed {
            program,
            status: out.status,
            output: msg,
        });
    }
    #[derive(serde::Deserialize)]
    struct HelperAnswer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let ans: HelperAnswer = serde_json::from_str(&stdout)
        .map_err(|source| CredentialProblem::HelperAnswer { program, source })?;
    if ans.secret.is_empty() {
        return Ok(None);
    }
    if ans.username == "<token>" {
        Ok(Some(Credential::IdentityToken(ans.secret)))
    } else {
        Ok(Some(Credential::Basic {
            username: ans.username,
            password: ans.secret,
        }))
    }
}

impl CredentialStore for DockerConfig {
    fn get(&self, registry: &str) -> Result<Option<Credential>> {
        Ok(self.sourced_lookup(registry)?.map(|c| c.secret))
    }

    fn lookup(&self, registry: &str) -> Result<Option<SourcedCredential>> {
        self.sourced_lookup(registry)
    }

    /// A helper's kept answer is dropped, so the next lookup asks the helper again; an `auths`
    /// entry would give the same credential again.
    fn refused(&self, registry: &str) -> bool {
        if self.helper_for(registry).is_none() {
            return false;
        }
        let slot = self.helper_answers.lock().get(registry).cloned();
        slot.is_some_and(|slot| {
            slot.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
                .is_some()
        })
    }

    fn searched(&self) -> Option<String> {
        Some(self.origin.clone())
    }
}

fn decode_entry(e: &AuthEntry) -> std::result::Result<Option<Credential>, EntryProblem> {
    if let Some(tok) = e.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::IdentityToken(tok.to_string())));
    }
    if let Some(auth) = e.auth.as_deref().filter(|a| !a.is_empty()) {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(EntryProblem::Base64)?;
        let text = String::from_utf8(raw).map_err(|_| EntryProblem::NotUtf8)?;
        let (user, pass) = text.split_once(':').ok_or(EntryProblem::NoColon)?;
        return Ok(Some(Credential::Basic {
            username: user.to_string(),
            password: pass.to_string(),
        }));
    }
    match (&e.username, &e.password) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credential::Basic {
            username: u.clone(),
            password: p.clone(),
        })),
        _ => Ok(None),
    }
}

/// Keys under which config.json may hold credentials for `registry`.
fn lookup_keys(registry: &str) -> Vec<String> {
    if is_docker_hub(registry) {
        vec![
            DOCKER_HUB_CONFIG_KEY.to_string(),
            "docker.io".to_string(),
            "index.docker.io".to_string(),
            "registry-1.docker.io".to_string(),
        ]
    } else {
        vec![
            registry.to_string(),
            format!("https://{registry}"),
            format!("http://{registry}"),
        ]
    }
}

/// Whether a registry name is Docker Hub under any of its names.
pub fn is_docker_hub(registry: &str) -> bool {
    matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

/// What a credential helper is asked for.
fn helper_server_url(registry: &str) -> String {
    if is_docker_hub(registry) {
        DOCKER_HUB_CONFIG_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// Docker's `ConvertToHostname`: strip scheme and path; Docker Hub names become one.
fn hostname_of(key: &str) -> String {
    let s = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = s.split('/').next().unwrap_or_default();
    if is_docker_hub(host) {
        "docker.io".to_string()
    } else {
        host.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn debug_never_prints_secrets() {
        let c = Credential::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("<redacted>"));
        let t = format!("{:?}", Credential::IdentityToken("tok-secret".into()));
        assert!(!t.contains("tok-secret"));
        let cfg = DockerConfig::from_json(
            format!(r#"{{"auths":{{"r.io":{{"auth":"{}"}}}}}}"#, b64("a:s3cret")).as_bytes(),
        )
        .unwrap();
        assert!(!format!("{cfg:?}").contains(&b64("a:s3cret")));
    }

    #[test]
    fn docker_hub_aliases_are_all_looked_up() {
        for key in [
            "https://index.docker.io/v1/",
            "docker.io",
            "index.docker.io",
            "https://index.docker.io/v1",
        ] {
            let json = format!(r#"{{"auths":{{"{key}":{{"auth":"{}"}}}}}}"#, b64("me:pw"));
            let cfg = DockerConfig::from_json(json.as_bytes()).unwrap();
            assert_eq!(
                cfg.get("docker.io").unwrap(),
                Some(Credential::Basic {
                    username: "me".into(),
                    password: "pw".into()
                }),
                "key {key}"
            );
        }
    }

    #[test]
    fn entries_by_host_with_scheme_and_fields() {
        let json = format!(
            r#"{{"auths":{{
                "https://ghcr.io":{{"auth":"{}"}},
                "127.0.0.1:5000":{{"username":"u","password":"p"}},
                "quay.io":{{"identitytoken":"refresh"}},
                "empty.io":{{}}
            }}}}"#,
            b64("g:tok")
        );
        let cfg = DockerConfig::from_json(json.as_bytes()).unwrap();
        assert!(
            matches!(cfg.get("ghcr.io").unwrap(), Some(Credential::Basic { username, .. }) if username == "g")
        );
        assert!(
            matches!(cfg.get("127.0.0.1:5000").unwrap(), Some(Credential::Basic { password, .. }) if password == "p")
        );
        assert_eq!(
            cfg.get("quay.io").unwrap(),
            Some(Credential::IdentityToken("refresh".into()))
        );
        assert_eq!(cfg.get("empty.io").unwrap(), None);
        assert_eq!(cfg.get("other.io").unwrap(), None);
        assert_eq!(cfg.get("docker.io").unwrap(), None);
    }

    #[test]
    fn malformed_auth_names_the_problem() {
        let cfg = DockerConfig::from_json(br#"{"auths":{"r.io":{"auth":"!!notbase64"}}}"#).unwrap();
        let e = cfg.get("r.io").unwrap_err().to_string();
        assert!(e.contains("r.io") && e.contains("base64"), "{e}");
        let cfg = DockerConfig::from_json(
            format!(r#"{{"auths":{{"r.io":{{"auth":"{}"}}}}}}"#, b64("nocolon")).as_bytes(),
        )
        .unwrap();
        assert!(
            cfg.get("r.io")
                .unwrap_err()
                .to_string()
                .contains("user:password")
        );
        assert!(DockerConfig::from_json(b"{not json").is_err());
    }

    proptest::proptest! {
        #[test]
        fn config_json_parsing_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Ok(cfg) = DockerConfig::from_json(&bytes) {
                let _ = cfg.get("docker.io");
            }
        }

        #[test]
        fn auth_entries_never_panic(auth in "[A-Za-z0-9+/=:!]{0,40}", user in "[a-z]{0,5}", pass in "[a-z]{0,5}") {
            let json = format!(r#"{{"auths":{{"r.io":{{"auth":"{auth}","username":"{user}","password":"{pass}"}}}}}}"#);
            let cfg = DockerConfig::from_json(json.as_bytes()).unwrap();
            let _ = cfg.get("r.io");
        }
    }

    #[test]
    fn chains_ask_in_order() {
        let a = DockerConfig::from_json(
            format!(r#"{{"auths":{{"r.io":{{"auth":"{}"}}}}}}"#, b64("a:1")).as_bytes(),
        )
        .unwrap();
        let b = DockerConfig::from_json(
            format!(
                r#"{{"auths":{{"r.io":{{"auth":"{}"}},"s.io":{{"auth":"{}"}}}}}}"#,
                b64("b:2"),
                b64("b:3")
            )
            .as_bytes(),
        )
        .unwrap();
        let chain = ChainCredentials(vec![std::sync::Arc::new(a), std::sync::Arc::new(b)]);
        assert!(
            matches!(chain.get("r.io").unwrap(), Some(Credential::Basic { username, .. }) if username == "a")
        );
        assert!(
            matches!(chain.get("s.io").unwrap(), Some(Credential::Basic { password, .. }) if password == "3")
        );
        assert_eq!(chain.get("t.io").unwrap(), None);
    }

    #[test]
    fn missing_config_file_is_anonymous_and_bad_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DockerConfig::load_dir(dir.path()).unwrap();
        assert_eq!(cfg.get("docker.io").unwrap(), None);
        std::fs::write(dir.path().join("config.json"), "{broken").unwrap();
        let e = DockerConfig::load_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
    }

    #[test]
    fn missing_helper_does_not_break_anonymous_access() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = DockerConfig::from_json(br#"{"credsStore":"ferry-does-not-exist"}"#)
            .unwrap()
            .with_helper_dir(dir.path());
        assert_eq!(cfg.get("docker.io").unwrap(), None);
    }

    #[cfg(unix)]
    fn write_helper(dir: &Path, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn helpers_per_registry_and_default_store() {
        let dir = tempfile::tempdir().unwrap();
        // Echo the server URL it was asked for back as the user name, so the test can see it.
        write_helper(
            dir.path(),
            "echo",
            "#!/bin/sh\nread server\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"%s\",\"Secret\":\"s\"}' \"$server\" \"$server\"\n",
        );
        write_helper(
            dir.path(),
            "token",
            "#!/bin/sh\ncat >/dev/null\necho '{\"Username\":\"<token>\",\"Secret\":\"refresh-tok\"}'\n",
        );
        write_helper(
            dir.path(),
            "none",
            "#!/bin/sh\ncat >/dev/null\necho 'credentials not found in native keychain'\nexit 1\n",
        );
        write_helper(
            dir.path(),
            "broken",
            "#!/bin/sh\ncat >/dev/null\necho boom >&2\nexit 1\n",
        );
        let cfg = DockerConfig::from_json(
            br#"{"credsStore":"echo","credHelpers":{"quay.io":"token","none.io":"none","broken.io":"broken"}}"#,
        )
        .unwrap()
        .with_helper_dir(dir.path());
        assert_eq!(
            cfg.get("docker.io").unwrap(),
            Some(Credential::Basic {
                username: DOCKER_HUB_CONFIG_KEY.into(),
                password: "s".into()
            })
        );
        assert!(
            matches!(cfg.get("ghcr.io").unwrap(), Some(Credential::Basic { username, .. }) if username == "ghcr.io")
        );
        assert_eq!(
            cfg.get("quay.io").unwrap(),
            Some(Credential::IdentityToken("refresh-tok".into()))
        );
        assert_eq!(cfg.get("none.io").unwrap(), None);
        let e = cfg.get("broken.io").unwrap_err().to_string();
        assert!(e.contains("broken.io") && e.contains("boom"), "{e}");
    }
}
