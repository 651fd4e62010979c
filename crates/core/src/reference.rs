//! Image references, parsed and normalized exactly like Docker's `distribution/reference`
//! (`ParseNormalizedNamed`), so that ferry and `docker pull` agree on every input.
//!
//! Why not `oci_spec::distribution::Reference`? It resolves the registry with its own
//! heuristics and does not reproduce distribution's error cases (64-hex identifiers, the
//! lowercase check that only looks at the repository part, uppercase-domain detection), and the
//! issue that introduced this module demands agreement on every input, valid or not. The
//! grammar below is distribution's regular-expression grammar verbatim, evaluated with
//! `regex-lite`, whose leftmost-first semantics are those of Go's `regexp`.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

use crate::digest::{Digest, DigestProblem};
use crate::error::{Error, Result};

/// The registry that a reference without a domain refers to.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The legacy name of Docker Hub, normalized to [`DEFAULT_REGISTRY`].
pub const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
/// The repository prefix of Docker Hub's official images.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag used when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest a name (registry and repository) may be.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

const ALPHANUMERIC: &str = "[a-z0-9]+";
const SEPARATOR: &str = "(?:[._]|__|[-]+)";
const DOMAIN_NAME_COMPONENT: &str = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
// ASCII, as in distribution/reference (Go's `\w`): the `regex` crate's `\w` is Unicode, which
// would accept tags no registry takes and costs ~30 ms to compile (most of a detect run).
const TAG: &str = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
const DIGEST: &str = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}";
const IPV6: &str = r"\[(?:[a-fA-F0-9:]+)\]";

fn domain_and_port() -> String {
    let domain_name = format!(r"{DOMAIN_NAME_COMPONENT}(?:\.{DOMAIN_NAME_COMPONENT})*");
    format!("(?:{domain_name}|{IPV6})(?::[0-9]+)?")
}

fn remote_name() -> String {
    let path_component = format!("{ALPHANUMERIC}(?:{SEPARATOR}{ALPHANUMERIC})*");
    format!("{path_component}(?:/{path_component})*")
}

static REFERENCE_RE: LazyLock<Regex> = LazyLock::new(|| {
    let name = format!("(?:{}/)?{}", domain_and_port(), remote_name());
    Regex::new(&format!("^({name})(?::({TAG}))?(?:@({DIGEST}))?$")).expect("reference grammar")
});

static NAME_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        "^(?:({})/)?({})$",
        domain_and_port(),
        remote_name()
    ))
    .expect("name grammar")
});

/// A parsed, normalized image reference: `[registry/]repository[:tag][@digest]`.
///
/// Construct it with [`Reference::parse`] (or `str::parse`). The [`Display`](fmt::Display)
/// form is the canonical one: fully qualified, with `:latest` added only when there is neither a
/// tag nor a digest, and with both tag and digest kept when both were given.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// What is wrong with a reference text ([`Error::InvalidReference`]); displayed in the words
/// `distribution/reference` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceProblem {
    /// 64 hex characters: an image id.
    ImageId,
    /// The repository part before any tag has upper-case letters.
    UppercaseRepository {
        /// That part.
        repository: String,
    },
    /// The reference only matches the grammar once lower-cased.
    Uppercase,
    /// The text is empty.
    Empty,
    /// The name is fine but the tag after its `:` is not (`acme/app::1`: the tag `:1`).
    Tag {
        /// The tag as given, without the `:` before it.
        tag: String,
        /// The reference with the tag's stray characters left out, when that one is valid.
        example: Option<String>,
    },
    /// Anything else the grammar refuses.
    Format,
    /// The name is longer than [`NAME_TOTAL_LENGTH_MAX`] characters.
    NameTooLong,
    /// The digest after `@` is invalid.
    Digest(DigestProblem),
}

impl fmt::Display for ReferenceProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReferenceProblem::ImageId => f.write_str(
                "a 64-character hexadecimal string is an image id, not a repository name",
            ),
            ReferenceProblem::UppercaseRepository { repository } => {
                write!(f, "repository name ({repository}) must be lowercase")
            }
            ReferenceProblem::Uppercase => f.write_str("repository name must be lowercase"),
            ReferenceProblem::Empty => {
                f.write_str("repository name must have at least one component")
            }
            ReferenceProblem::Tag { tag, example } => {
                write!(
                    f,
                    "the tag {tag:?} after ':' is not valid: a tag starts with a letter, digit or '_' \
                     and has at most 128 letters, digits, '_', '.' or '-'"
                )?;
                match example {
                    Some(e) => write!(f, " (for example {e})"),
                    None => Ok(()),
                }
            }
            ReferenceProblem::Format => f.write_str("invalid reference format"),
            ReferenceProblem::NameTooLong => write!(
                f,
                "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
            ),
            ReferenceProblem::Digest(d) => write!(f, "digest: {d}"),
        }
    }
}

impl Reference {
    /// Parse and normalize a reference the way `docker pull` does.
    pub fn parse(input: &str) -> Result<Self> {
        let invalid = |reason: ReferenceProblem| Error::InvalidReference {
            input: input.to_string(),
            reason,
        };
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(invalid(ReferenceProblem::ImageId));
        }
        let (domain, remainder) = split_docker_domain(input);
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_lowercase() != remote {
            return Err(invalid(ReferenceProblem::UppercaseRepository {
                repository: remote.to_string(),
            }));
        }
        let full = format!("{domain}/{remainder}");
        let Some(caps) = REFERENCE_RE.captures(&full) else {
            if REFERENCE_RE.is_match(&full.to_lowercase()) {
                return Err(invalid(ReferenceProblem::Uppercase));
            }
            if input.is_empty() {
                return Err(invalid(ReferenceProblem::Empty));
            }
            return Err(invalid(bad_tag(input).unwrap_or(ReferenceProblem::Format)));
        };
        let name = caps.get(1).map_or("", |m| m.as_str());
        if name.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(invalid(ReferenceProblem::NameTooLong));
        }
        let (registry, repository) = match NAME_RE.captures(name) {
            Some(n) => (
                n.get(1).map_or("", |m| m.as_str()).to_string(),
                n.get(2).map_or("", |m| m.as_str()).to_string(),
            ),
            None => (String::new(), name.to_string()),
        };
        let tag = caps.get(2).map(|m| m.as_str().to_string());
        let digest = match caps.get(3) {
            Some(m) => Some(Digest::parse(m.as_str()).map_err(|e| match e {
                Error::InvalidDigest { reason, .. } => invalid(ReferenceProblem::Digest(reason)),
                other => other,
            })?),
            None => None,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The registry domain (with port), e.g. `docker.io`, `ghcr.io`, `127.0.0.1:5000`.
    ///
    /// Empty only for the rare names distribution accepts without a valid domain (a first
    /// component like `foo_bar.com` that contains a dot but is no host name).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry, e.g. `library/python`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The fully qualified name without tag or digest, e.g. `docker.io/library/python`.
    pub fn name(&self) -> String {
        if self.registry.is_empty() {
            self.repository.clone()
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// The tag as written, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest as written, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The tag or, when there is neither tag nor digest, `latest`.
    pub fn tag_or_default(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t),
            (None, None) => Some(DEFAULT_TAG),
            (None, Some(_)) => None,
        }
    }

    /// What to ask the registry's manifest endpoint for: the digest when there is one (it is
    /// exact), else the tag (or `latest`).
    pub fn manifest_selector(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The same repository with another tag (any digest is dropped: it would contradict the tag).
    pub fn with_tag(&self, tag: &str) -> Result<Self> {
        Reference::parse(&format!("{}:{tag}", self.name()))
    }

    /// The same reference with `digest` attached (tag kept).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The repository alone: no tag, no digest (a key for "this repository's tags").
    pub fn repository_only(&self) -> Self {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// The same reference without a digest.
    pub fn without_digest(&self) -> Self {
        Reference {
            digest: None,
            ..self.clone()
        }
    }

    /// Whether two references name the same repository (tag and digest ignored).
    pub fn same_repository(&self, other: &Reference) -> bool {
        self.registry == other.registry && self.repository == other.repository
    }

    /// The short form Docker prints: `docker.io/` and `library/` dropped, no `:latest` added.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// The short name: `python` for `docker.io/library/python`, `acme/etl` for
    /// `docker.io/acme/etl`, the full name elsewhere.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }
}

static TAG_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^{TAG}$")).expect("tag grammar"));

/// [`ReferenceProblem::Tag`] when the tag is what breaks a refused reference: the text after the
/// first `:` of the last path component (before any `@digest`), with a valid name before it.
fn bad_tag(input: &str) -> Option<ReferenceProblem> {
    let name_and_tag = input.split_once('@').map_or(input, |(n, _)| n);
    let component = name_and_tag.rfind('/').map_or(0, |i| i + 1);
    let colon = component + name_and_tag[component..].find(':')?;
    let (name, tag) = (&name_and_tag[..colon], &name_and_tag[colon + 1..]);
    if TAG_RE.is_match(tag) || Reference::parse(name).is_err() {
        return None;
    }
    let kept: String = tag
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .skip_while(|c| matches!(c, '.' | '-'))
        .take(128)
        .collect();
    let example = format!("{name}:{kept}");
    Some(ReferenceProblem::Tag {
        tag: tag.to_string(),
        example: (!kept.is_empty() && Reference::parse(&example).is_ok()).then_some(example),
    })
}

/// distribution's `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (&str, std::borrow::Cow<'_, str>) {
    use std::borrow::Cow;
    let Some((maybe_domain, rest)) = name.split_once('/') else {
        return (
            DEFAULT_REGISTRY,
            Cow::Owned(format!("{OFFICIAL_REPO_PREFIX}{name}")),
        );
    };
    let (domain, remote) = if maybe_domain == "localhost"
        || maybe_domain.contains(['.', ':'])
        || maybe_domain.to_lowercase() != maybe_domain
    {
        if maybe_domain == LEGACY_DEFAULT_REGISTRY {
            (DEFAULT_REGISTRY, rest)
        } else {
            (maybe_domain, rest)
        }
    } else {
        return (DEFAULT_REGISTRY, Cow::Borrowed(name));
    };
    if domain == DEFAULT_REGISTRY && !remote.contains('/') {
        (
            domain,
            Cow::Owned(format!("{OFFICIAL_REPO_PREFIX}{remote}")),
        )
    } else {
        (domain, Cow::Borrowed(remote))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.registry.is_empty() {
            write!(f, "{}/", self.registry)?;
        }
        f.write_str(&self.repository)?;
        match (&self.tag, &self.digest) {
            (Some(t), Some(d)) => write!(f, ":{t}@{d}"),
            (Some(t), None) => write!(f, ":{t}"),
            (None, Some(d)) => write!(f, "@{d}"),
            (None, None) => write!(f, ":{DEFAULT_TAG}"),
        }
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn canon(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    /// Cases taken from the behaviour of distribution/reference's `ParseNormalizedNamed`
    /// (normalize_test.go and reference_test.go describe these inputs).
    #[test]
    fn normalizes_like_distribution() {
        let cases: &[(&str, &str)] = &[
            ("ubuntu", "docker.io/library/ubuntu:latest"),
            ("ubuntu:22.04", "docker.io/library/ubuntu:22.04"),
            ("library/ubuntu", "docker.io/library/ubuntu:latest"),
            ("docker.io/ubuntu", "docker.io/library/ubuntu:latest"),
            ("index.docker.io/ubuntu", "docker.io/library/ubuntu:latest"),
            (
                "index.docker.io/library/python",
                "docker.io/library/python:latest",
            ),
            ("foo/bar", "docker.io/foo/bar:latest"),
            ("foo/bar/baz", "docker.io/foo/bar/baz:latest"),
            ("localhost/foo", "localhost/foo:latest"),
            ("localhost:5000/foo", "localhost:5000/foo:latest"),
            ("localhost:5000", "docker.io/library/localhost:5000"),
            ("127.0.0.1:5000/a/b:v1", "127.0.0.1:5000/a/b:v1"),
            ("ghcr.io/acme/etl:1.2.3", "ghcr.io/acme/etl:1.2.3"),
            ("[::1]:5000/foo", "[::1]:5000/foo:latest"),
            ("Foo/bar", "Foo/bar:latest"),
            ("a.b-c.d/e__f.g-h", "a.b-c.d/e__f.g-h:latest"),
            ("foo---bar/x", "docker.io/foo---bar/x:latest"),
            (
                &format!("foo/bar:t@{D}"),
                &format!("docker.io/foo/bar:t@{D}"),
            ),
            (&format!("foo@{D}"), &format!("docker.io/library/foo@{D}")),
        ];
        for (input, want) in cases {
            assert_eq!(&canon(input), want, "input {input}");
        }
    }

    #[test]
    fn a_tag_is_ascii_as_in_distribution() {
        // Go's `\w` (distribution's grammar) is ASCII; the `regex` crate's is Unicode.
        for bad in ["acme/app:vé", "acme/app:é1", "acme/app:1٣", "acme/app:ǅ"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(canon("acme/app:_A.z-9"), "docker.io/acme/app:_A.z-9");
    }

    #[test]
    fn an_invalid_tag_is_named_with_a_valid_example() {
        let msg = |s: &str| {
            Reference::parse(s)
                .map(|r| r.to_string())
                .unwrap_err()
                .to_string()
        };
        let rule = "a tag starts with a letter, digit or '_' and has at most 128 letters, digits, '_', '.' or '-'";
        assert_eq!(
            msg("acme/app::1"),
            format!(
                r#"invalid reference "acme/app::1": the tag ":1" after ':' is not valid: {rule} (for example acme/app:1)"#
            )
        );
        assert_eq!(
            msg("localhost:5000/app:-x@sha256:abc"),
            format!(
                r#"invalid reference "localhost:5000/app:-x@sha256:abc": the tag "-x" after ':' is not valid: {rule} (for example localhost:5000/app:x)"#
            )
        );
        assert_eq!(
            msg("app:"),
            format!(r#"invalid reference "app:": the tag "" after ':' is not valid: {rule}"#)
        );
        // Not the tag's fault: the name before it is already wrong.
        assert_eq!(
            msg("a b:1"),
            r#"invalid reference "a b:1": invalid reference format"#
        );
    }

    #[test]
    fn splits_parts() {
        let r = Reference::parse("localhost:5000/etl/weather:v2").unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "etl/weather");
        assert_eq!(r.tag(), Some("v2"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.name(), "localhost:5000/etl/weather");
        let r = Reference::parse("python").unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.tag_or_default(), Some("latest"));
        assert_eq!(r.manifest_selector(), "latest");
        let r = Reference::parse(&format!("python:3@{D}")).unwrap();
        assert_eq!(r.manifest_selector(), D);
    }

    #[test]
    fn rejects_what_distribution_rejects() {
        let long = format!("{}/{}", "a".repeat(128), "b".repeat(128));
        let bad: &[&str] = &[
            "",
            ":",
            "Ubuntu",
            "foo/Bar",
            "docker.io/library/Foo",
            "ubuntu:",
            "ubuntu@",
            "ubuntu:-tag",
            "ubuntu:.tag",
            "-foo",
            "foo-",
            "foo//bar",
            "foo/",
            "/foo",
            "a:b:c",
            "foo@sha256:abc",
            "foo@md5:d41d8cd98f00b204e9800998ecf8427e",
            "foo@sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "foo bar",
            "foo:tag with space",
            &long,
        ];
        for b in bad {
            let err = Reference::parse(b).unwrap_err();
            assert!(err.to_string().contains(&format!("{b:?}")), "{err}");
        }
        let tag129 = format!("foo:{}", "a".repeat(129));
        assert!(Reference::parse(&tag129).is_err());
        let tag128 = format!("foo:{}", "a".repeat(128));
        assert!(Reference::parse(&tag128).is_ok());
    }

    #[test]
    fn familiar_forms() {
        let f = |s: &str| Reference::parse(s).unwrap().familiar();
        assert_eq!(f("docker.io/library/python:3.12"), "python:3.12");
        assert_eq!(f("docker.io/acme/etl"), "acme/etl");
        assert_eq!(f("docker.io/library/a/b"), "library/a/b");
        assert_eq!(f("ghcr.io/acme/etl:1"), "ghcr.io/acme/etl:1");
    }

    #[test]
    fn tag_and_digest_edits() {
        let r = Reference::parse(&format!("python:3.11@{D}")).unwrap();
        assert_eq!(
            r.with_tag("3.12").unwrap().to_string(),
            "docker.io/library/python:3.12"
        );
        assert_eq!(
            r.without_digest().to_string(),
            "docker.io/library/python:3.11"
        );
        assert!(r.same_repository(&Reference::parse("index.docker.io/library/python").unwrap()));
        assert!(!r.same_repository(&Reference::parse("pythonista").unwrap()));
        assert!(!r.same_repository(&Reference::parse("ghcr.io/acme/python").unwrap()));
    }

    fn component() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,2}"
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,300}") {
            let _ = Reference::parse(&s);
        }

        #[test]
        fn canonical_form_is_a_fixed_point(s in "[a-zA-Z0-9._:/@-]{0,80}") {
            if let Ok(r) = Reference::parse(&s) {
                let c = r.to_string();
                let again = Reference::parse(&c).unwrap();
                prop_assert_eq!(again.to_string(), c);
                prop_assert_eq!(again.name(), r.name());
                prop_assert_eq!(again.digest(), r.digest());
                prop_assert_eq!(again.tag_or_default(), r.tag_or_default());
            }
        }

        #[test]
        fn generated_valid_references_round_trip(
            domain in proptest::option::of("[a-z]{1,8}\\.[a-z]{2,4}(:[0-9]{1,5})?"),
            path in proptest::collection::vec(component(), 1..4),
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
        ) {
            // Without a domain, a first component with a dot would itself be read as a domain.
            prop_assume!(domain.is_some() || !path[0].contains('.') || path.len() == 1);
            let mut s = String::new();
            if let Some(d) = &domain { s.push_str(d); s.push('/'); }
            s.push_str(&path.join("/"));
            if let Some(t) = &tag { s.push(':'); s.push_str(t); }
            let r = Reference::parse(&s).unwrap();
            prop_assert_eq!(r.tag(), tag.as_deref());
            if let Some(d) = &domain {
                prop_assert_eq!(r.registry(), d.as_str());
                prop_assert_eq!(r.repository(), path.join("/"));
            } else {
                prop_assert_eq!(r.registry(), "docker.io");
            }
            prop_assert_eq!(Reference::parse(&r.familiar()).unwrap(), r);
        }
    }
}
