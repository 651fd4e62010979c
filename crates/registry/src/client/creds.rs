//! Which credential a client handle uses for a registry, and that credential's identity.
//!
//! A handle made by [`Client::with_credentials`] asks its own store first, then its parent's.
//! Stores are asked for every request they authenticate (on a blocking thread) and keep what
//! is expensive themselves — a helper's answer for its TTL, a config file until it changes — so
//! a rotated credential is used from the next request on. Bearer tokens are cached per
//! registry, scope and [`CredentialId`]: a token obtained with one credential is never sent for
//! a request made with another (a rotated one included), or anonymously.

use std::fmt;
use std::sync::Arc;

use ferry_core::Digest;

use super::Client;
use crate::credentials::{Credential, CredentialStore};
use crate::error::{CredentialProblem, Error, Result};
use crate::source::{CredentialSource, SourcedCredential};

/// Where one handle looks credentials up: its own store, then its parent's.
pub(super) struct CredentialChain {
    store: Arc<dyn CredentialStore>,
    parent: Option<Arc<CredentialChain>>,
}

impl fmt::Debug for CredentialChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialChain")
            .field("store", &self.store)
            .field("parent", &self.parent)
            .finish()
    }
}

impl CredentialChain {
    pub(super) fn new(store: Arc<dyn CredentialStore>, parent: Option<Arc<Self>>) -> Self {
        CredentialChain { store, parent }
    }

    /// What this level's store says for `registry` now (on a blocking thread: it may run a
    /// credential helper or read a file).
    async fn own(&self, registry: &str) -> Result<Option<SourcedCredential>> {
        let store = self.store.clone();
        let k = registry.to_string();
        tokio::task::spawn_blocking(move || store.lookup(&k))
            .await
            .map_err(|e| Error::Credentials {
                registry: registry.to_string(),
                problem: CredentialProblem::LookupPanicked(e),
            })?
    }
}

/// Who a request is made as: anonymous, or a credential known by a salted hash (the secret
/// itself is never kept in a cache key, never printed).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) enum CredentialId {
    Anonymous,
    Credential(Digest),
}

impl fmt::Debug for CredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialId::Anonymous => f.write_str("anonymous"),
            // A prefix of a salted hash: tells handles apart in a debug dump, reveals nothing.
            CredentialId::Credential(d) => {
                write!(f, "credential {}", d.hex().get(..12).unwrap_or_default())
            }
        }
    }
}

impl CredentialId {
    /// The identity of `credential` under this client's `salt`.
    pub(super) fn of(credential: Option<&Credential>, salt: &[u8]) -> Self {
        let Some(c) = credential else {
            return CredentialId::Anonymous;
        };
        let mut bytes = salt.to_vec();
        let mut field = |b: &[u8]| {
            bytes.extend_from_slice(&(b.len() as u64).to_be_bytes());
            bytes.extend_from_slice(b);
        };
        match c {
            Credential::Basic { username, password } => {
                field(b"basic");
                field(username.as_bytes());
                field(password.as_bytes());
            }
            Credential::IdentityToken(token) => {
                field(b"identity-token");
                field(token.as_bytes());
            }
        }
        CredentialId::Credential(Digest::sha256_of(&bytes))
    }
}

/// The credential a handle uses for one registry, its identity and where it came from.
#[derive(Clone)]
pub(super) struct Found {
    pub(super) credential: Option<Credential>,
    pub(super) id: CredentialId,
    pub(super) source: Option<CredentialSource>,
    pub(super) expires_at: Option<std::time::SystemTime>,
    /// For anonymous access: where the stores looked and found nothing.
    pub(super) searched: Vec<String>,
}

impl Found {
    /// How an error names this credential: its source, or anonymous and where ferry looked.
    pub(super) fn used(&self) -> crate::detail::CredentialsUsed {
        crate::detail::CredentialsUsed::Sent {
            source: self.source.clone(),
            searched: self.searched.clone(),
        }
    }
}

impl Client {
    /// A credential a store answered with, keyed by its identity.
    fn found(&self, c: SourcedCredential) -> Found {
        let id = CredentialId::of(Some(&c.secret), &self.inner.salt);
        Found {
            credential: Some(c.secret),
            id,
            source: Some(c.source),
            expires_at: c.expires_at,
            searched: Vec::new(),
        }
    }

    /// The credential this handle uses for `registry`: the first store along its chain that
    /// has one, else anonymous.
    pub(super) async fn credentials(&self, registry: &str) -> Result<Found> {
        let mut level = Some(&self.creds);
        while let Some(l) = level {
            if let Some(c) = l.own(registry).await? {
                return Ok(self.found(c));
            }
            level = l.parent.as_ref();
        }
        if let Some((cloud, name)) = self.cloud_for(registry)
            && let Some(c) = CredentialChain::new(cloud, None).own(&name).await?
        {
            return Ok(self.found(c));
        }
        Ok(Found {
            credential: None,
            id: CredentialId::Anonymous,
            source: None,
            expires_at: None,
            searched: self.searched(),
        })
    }

    /// The cloud store and the registry name it is asked for: the registry mirrored at
    /// `key` when `key` is a mirror's address, else `key` itself.
    fn cloud_for(&self, key: &str) -> Option<(Arc<dyn CredentialStore>, String)> {
        let cloud = self.inner.config.cloud.clone()?;
        let name = self
            .inner
            .config
            .mirrors
            .iter()
            .find(|(_, url)| {
                url::Url::parse(url).is_ok_and(|u| super::endpoint::host_key(&u) == key)
            })
            .map_or(key, |(registry, _)| registry.as_str());
        Some((cloud, name.to_string()))
    }

    /// Where every store along the chain looks, first to last.
    pub(super) fn searched(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut level = Some(&self.creds);
        while let Some(l) = level {
            out.extend(l.store.searched());
            level = l.parent.as_ref();
        }
        out
    }

    /// The registry refused the credential this handle used for `registry`: every store along
    /// the chain forgets what it kept. `true` when asking again may give another credential.
    pub(super) fn forget_credential(&self, registry: &str) -> bool {
        let mut again = false;
        let mut level = Some(&self.creds);
        while let Some(l) = level {
            again |= l.store.refused(registry);
            level = l.parent.as_ref();
        }
        if let Some((cloud, name)) = self.cloud_for(registry) {
            again |= cloud.refused(&name);
        }
        again
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn basic(u: &str, p: &str) -> Credential {
        Credential::Basic {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn identities_tell_credentials_apart_and_print_no_secret() {
        let salt = [7u8; 32];
        let a = CredentialId::of(Some(&basic("ns-a", "secret-a")), &salt);
        let b = CredentialId::of(Some(&basic("ns-b", "secret-b")), &salt);
        let a_new_password = CredentialId::of(Some(&basic("ns-a", "rotated")), &salt);
        let token = CredentialId::of(Some(&Credential::IdentityToken("secret-a".into())), &salt);
        assert_eq!(a, CredentialId::of(Some(&basic("ns-a", "secret-a")), &salt));
        for other in [&b, &a_new_password, &token, &CredentialId::Anonymous] {
            assert_ne!(&a, other);
        }
        // Another client (another salt) gives the same credential another identity.
        assert_ne!(
            a,
            CredentialId::of(Some(&basic("ns-a", "secret-a")), &[8u8; 32])
        );
        let dbg = format!("{a:?} {b:?} {token:?}");
        assert!(!dbg.contains("secret") && !dbg.contains("ns-a"), "{dbg}");
    }

    proptest! {
        #[test]
        fn identities_are_equal_exactly_when_credentials_are(
            u1 in "[a-z:]{0,6}", p1 in "[a-z:]{0,6}", u2 in "[a-z:]{0,6}", p2 in "[a-z:]{0,6}",
        ) {
            // Length-prefixed fields: ("a:", "b") and ("a", ":b") are different credentials.
            let salt = [1u8; 32];
            let (c1, c2) = (basic(&u1, &p1), basic(&u2, &p2));
            prop_assert_eq!(
                CredentialId::of(Some(&c1), &salt) == CredentialId::of(Some(&c2), &salt),
                c1 == c2
            );
        }
    }

    #[derive(Debug)]
    struct Counting(std::sync::atomic::AtomicUsize, Option<Credential>);

    impl CredentialStore for Counting {
        fn get(&self, _registry: &str) -> Result<Option<Credential>> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(self.1.clone())
        }
    }

    #[tokio::test]
    async fn handles_ask_their_own_store_first_then_the_base_and_see_new_answers() {
        let base = Arc::new(Counting(0.into(), Some(basic("base", "b"))));
        let extra = Arc::new(Counting(0.into(), Some(basic("extra", "e"))));
        let empty = Arc::new(Counting(0.into(), None));
        let client = Client::new(crate::ClientConfig {
            credentials: base.clone(),
            ..Default::default()
        })
        .unwrap();
        let with_extra = client.with_credentials(extra.clone());
        let found = with_extra.credentials("r.example").await.unwrap();
        assert_eq!(found.credential, Some(basic("extra", "e")));
        assert_eq!(found.source, Some(CredentialSource::Unnamed));
        // A handle whose store has nothing falls back to the base store.
        let h = client.with_credentials(empty.clone());
        let found = h.credentials("r.example").await.unwrap();
        assert_eq!(found.credential, Some(basic("base", "b")));
        let count = |s: &Counting| s.0.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!((count(&base), count(&extra), count(&empty)), (1, 1, 1));
        // Stores are asked again on every lookup: what they say now is what is used.
        h.credentials("r.example").await.unwrap();
        assert_eq!((count(&base), count(&empty)), (2, 2));
        let anon = Client::new(crate::ClientConfig::default()).unwrap();
        let found = anon.credentials("r.example").await.unwrap();
        assert!(found.used().to_string().contains("anonymous"));
        assert!(!anon.forget_credential("r.example"));
    }
}
