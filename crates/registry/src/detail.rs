//! What a registry said in an error answer ([`RegistryWords`]), and why it refused a request
//! ([`Refusal`]): the typed `detail` of [`Error::NotFound`](crate::Error::NotFound),
//! [`Error::Status`](crate::Error::Status), [`Error::Unauthorized`](crate::Error::Unauthorized)
//! and [`Error::Denied`](crate::Error::Denied).

use std::fmt;

use crate::source::CredentialSource;

/// How much of a body that is not the registry's JSON errors is kept.
const BODY_CHARS: usize = 200;

/// One entry of a registry's `{"errors":[{"code","message"}]}` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryErrorItem {
    /// Its `code` (`MANIFEST_UNKNOWN`, `DENIED`…), empty when absent.
    pub code: String,
    /// Its `message`, empty when absent.
    pub message: String,
}

/// What a registry said in an error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryWords {
    /// Its `errors` list (never empty).
    Errors(Vec<RegistryErrorItem>),
    /// The start of a body that is not such a list, trimmed.
    Body(String),
    /// An empty body.
    Nothing,
    /// No body at all where one was expected (a 404 without details).
    Http404,
}

impl RegistryWords {
    /// The registry's error code and message (`{"errors":[{"code","message"}]}`), else the start
    /// of the body.
    pub fn of(body: &[u8]) -> RegistryWords {
        #[derive(serde::Deserialize)]
        struct Errors {
            errors: Vec<Item>,
        }
        #[derive(serde::Deserialize)]
        struct Item {
            #[serde(default)]
            code: String,
            #[serde(default)]
            message: String,
        }
        if let Ok(e) = serde_json::from_slice::<Errors>(body)
            && !e.errors.is_empty()
        {
            let items = e.errors.into_iter();
            return RegistryWords::Errors(
                items
                    .map(|i| RegistryErrorItem {
                        code: i.code,
                        message: i.message,
                    })
                    .collect(),
            );
        }
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            RegistryWords::Nothing
        } else {
            RegistryWords::Body(text.chars().take(BODY_CHARS).collect())
        }
    }
}

impl fmt::Display for RegistryWords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryWords::Errors(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|i| format!("{}: {}", i.code, i.message))
                    .collect();
                f.write_str(&parts.join("; "))
            }
            RegistryWords::Body(text) => f.write_str(text),
            RegistryWords::Nothing => f.write_str("no details"),
            RegistryWords::Http404 => f.write_str("HTTP 404"),
        }
    }
}

/// Why a registry or its token server refused a request (401/403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The registry's own words.
    Registry(RegistryWords),
    /// A 401 without `WWW-Authenticate`.
    NoChallenge(RegistryWords),
    /// A 401 whose `WWW-Authenticate` names neither Bearer nor Basic.
    UnusableChallenge {
        /// The header(s) as sent.
        header: String,
    },
    /// A fresh token lacks the scope asked for.
    InsufficientScope {
        /// The scope asked for.
        scope: String,
        /// The registry's words.
        words: RegistryWords,
    },
    /// The registry rejected the user and password sent.
    BasicRejected {
        /// The registry.
        registry: String,
    },
    /// The registry asks for basic authentication and none is configured.
    NoBasicCredentials {
        /// The registry.
        registry: String,
    },
    /// The token server refused the token request.
    TokenRefused {
        /// Whether it was asked anonymously.
        anonymous: bool,
        /// The scope asked for.
        scope: String,
        /// The token server's words.
        words: RegistryWords,
    },
    /// A refusal, and which credential the refused request was sent with.
    Naming {
        /// The refusal.
        refusal: Box<Refusal>,
        /// What was sent.
        used: CredentialsUsed,
    },
}

impl Refusal {
    /// This refusal naming what was sent, unless it already does.
    pub(crate) fn naming(self, used: &CredentialsUsed) -> Refusal {
        match self {
            Refusal::Naming { .. } => self,
            refusal => Refusal::Naming {
                refusal: Box::new(refusal),
                used: used.clone(),
            },
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Registry(words) => write!(f, "{words}"),
            Refusal::NoChallenge(words) => write!(f, "401 without WWW-Authenticate ({words})"),
            Refusal::UnusableChallenge { header } => write!(f, "unusable challenge {header:?}"),
            Refusal::InsufficientScope { scope, words } => {
                write!(f, "insufficient scope for {scope}: {words}")
            }
            Refusal::BasicRejected { registry } => {
                write!(f, "credentials for {registry} were rejected")
            }
            Refusal::NoBasicCredentials { registry } => write!(
                f,
                "registry requires basic authentication and no user/password is configured for {registry}"
            ),
            Refusal::TokenRefused {
                anonymous,
                scope,
                words,
            } => write!(
                f,
                "token server refused {} for scope {scope}: {words}",
                if *anonymous {
                    "anonymous access"
                } else {
                    "the configured credentials"
                }
            ),
            Refusal::Naming { refusal, used } => write!(f, "{refusal}; {used}"),
        }
    }
}

/// Which credential a refused request was sent with (its source, never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsUsed {
    /// What the credential stores answered: a credential and its source, or (no source)
    /// anonymous access and where the stores looked.
    Sent {
        /// Where the credential came from; `None` for anonymous access.
        source: Option<CredentialSource>,
        /// For anonymous access: where the stores looked and found nothing.
        searched: Vec<String>,
    },
    /// No credential was sent; the stores looked in these places (maybe none).
    NoneSent {
        /// Where the stores looked.
        searched: Vec<String>,
    },
}

impl fmt::Display for CredentialsUsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsUsed::Sent { source, searched } => {
                write!(f, "used {}", crate::source::describe(source.as_ref()))?;
                if source.is_none() && !searched.is_empty() {
                    write!(f, "; looked in {}", searched.join("; "))?;
                }
                Ok(())
            }
            CredentialsUsed::NoneSent { searched } if searched.is_empty() => {
                f.write_str("no credentials were sent")
            }
            CredentialsUsed::NoneSent { searched } => write!(
                f,
                "no credentials were sent (none found in {})",
                searched.join("; ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_words_texts() {
        assert_eq!(
            RegistryWords::of(
                br#"{"errors":[{"code":"DENIED","message":"no"},{"code":"X","message":"y"}]}"#
            )
            .to_string(),
            "DENIED: no; X: y"
        );
        assert_eq!(RegistryWords::of(b"").to_string(), "no details");
        assert_eq!(RegistryWords::of(b"  \n").to_string(), "no details");
        assert_eq!(RegistryWords::of(b" oops ").to_string(), "oops");
        assert_eq!(
            RegistryWords::of(br#"{"errors":[]}"#).to_string(),
            r#"{"errors":[]}"#
        );
        assert_eq!(RegistryWords::of(&[b'x'; 300]).to_string(), "x".repeat(200));
        assert_eq!(RegistryWords::Http404.to_string(), "HTTP 404");
    }

    #[test]
    fn refusal_texts() {
        let words = || RegistryWords::Body("nope".into());
        let cases = [
            (Refusal::Registry(words()), "nope".to_string()),
            (
                Refusal::NoChallenge(words()),
                "401 without WWW-Authenticate (nope)".into(),
            ),
            (
                Refusal::UnusableChallenge {
                    header: "Negotiate".into(),
                },
                "unusable challenge \"Negotiate\"".into(),
            ),
            (
                Refusal::InsufficientScope {
                    scope: "repository:a:pull".into(),
                    words: words(),
                },
                "insufficient scope for repository:a:pull: nope".into(),
            ),
            (
                Refusal::BasicRejected {
                    registry: "r.io".into(),
                },
                "credentials for r.io were rejected".into(),
            ),
            (
                Refusal::NoBasicCredentials {
                    registry: "r.io".into(),
                },
                "registry requires basic authentication and no user/password is configured for r.io"
                    .into(),
            ),
            (
                Refusal::TokenRefused {
                    anonymous: true,
                    scope: "s".into(),
                    words: words(),
                },
                "token server refused anonymous access for scope s: nope".into(),
            ),
            (
                Refusal::TokenRefused {
                    anonymous: false,
                    scope: "s".into(),
                    words: words(),
                },
                "token server refused the configured credentials for scope s: nope".into(),
            ),
        ];
        for (refusal, text) in cases {
            assert_eq!(refusal.to_string(), text, "{refusal:?}");
        }
        let used = CredentialsUsed::NoneSent { searched: vec![] };
        let named = Refusal::Registry(words()).naming(&used);
        assert_eq!(named.to_string(), "nope; no credentials were sent");
        let other = CredentialsUsed::NoneSent {
            searched: vec!["a".into()],
        };
        assert_eq!(named.clone().naming(&other), named, "named once");
    }

    #[test]
    fn credentials_used_texts() {
        let searched = vec!["/root/.docker/config.json".to_string(), "env".to_string()];
        let cases = [
            (
                CredentialsUsed::NoneSent { searched: vec![] },
                "no credentials were sent".to_string(),
            ),
            (
                CredentialsUsed::NoneSent {
                    searched: searched.clone(),
                },
                "no credentials were sent (none found in /root/.docker/config.json; env)".into(),
            ),
            (
                CredentialsUsed::Sent {
                    source: None,
                    searched: vec![],
                },
                "used anonymous (no credentials configured for this registry)".into(),
            ),
            (
                CredentialsUsed::Sent {
                    source: None,
                    searched,
                },
                "used anonymous (no credentials configured for this registry); looked in /root/.docker/config.json; env"
                    .into(),
            ),
        ];
        for (used, text) in cases {
            assert_eq!(used.to_string(), text, "{used:?}");
        }
    }
}
