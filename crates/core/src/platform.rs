//! Platforms (`os/arch[/variant]`) and the equivalences between their spellings.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A platform such as `linux/amd64` or `linux/arm/v7`.
///
/// The spelling is kept as given (so `linux/arm64/v8` prints as written), while
/// [`Platform::matches`] and `==` compare normalized forms: `arm64` ≡ `arm64/v8`,
/// `amd64` ≡ `amd64/v1`, `arm` ≡ `arm/v7`, `aarch64` ≡ `arm64`, `x86_64` ≡ `amd64`.
#[derive(Clone, Eq)]
pub struct Platform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

/// What is wrong with a platform text ([`Error::InvalidPlatform`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformProblem {
    /// Not two or three `/`-separated parts.
    Shape,
    /// A part is empty.
    EmptyComponent,
    /// A part has characters other than letters, digits, `_`, `-`, `.`.
    Characters,
}

impl fmt::Display for PlatformProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlatformProblem::Shape => "expected os/arch or os/arch/variant",
            PlatformProblem::EmptyComponent => "empty component",
            PlatformProblem::Characters => {
                "components may only hold letters, digits, '_', '-', '.'"
            }
        })
    }
}

impl Platform {
    /// Build a platform from its parts (an empty variant means none).
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
        }
    }

    /// Parse `os/arch` or `os/arch/variant`.
    pub fn parse(input: &str) -> Result<Self> {
        let invalid = |reason: PlatformProblem| Error::InvalidPlatform {
            input: input.to_string(),
            reason,
        };
        let parts: Vec<&str> = input.split('/').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(invalid(PlatformProblem::Shape));
        }
        for p in &parts {
            if p.is_empty() {
                return Err(invalid(PlatformProblem::EmptyComponent));
            }
            if !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            {
                return Err(invalid(PlatformProblem::Characters));
            }
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied()))
    }

    /// Parse a comma-separated list (`linux/amd64,linux/arm64`); blanks around items are ignored.
    pub fn parse_list(input: &str) -> Result<Vec<Self>> {
        input
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Platform::parse)
            .collect()
    }

    /// The operating system, e.g. `linux`.
    pub fn os(&self) -> &str {
        &self.os
    }

    /// The CPU architecture as written, e.g. `arm64`.
    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// The variant as written, e.g. `v8`.
    pub fn variant(&self) -> Option<&str> {
        self.variant.as_deref()
    }

    /// The normalized `(os, arch, variant)` triple used for comparisons.
    pub fn normalized(&self) -> (String, String, Option<String>) {
        let os = self.os.to_ascii_lowercase();
        let arch = match self.architecture.to_ascii_lowercase().as_str() {
            "aarch64" => "arm64".to_string(),
            "x86_64" | "x86-64" => "amd64".to_string(),
            "i386" | "i686" => "386".to_string(),
            other => other.to_string(),
        };
        let variant = self.variant.as_deref().map(str::to_ascii_lowercase);
        let variant = match (arch.as_str(), variant.as_deref()) {
            ("arm64", None | Some("v8" | "8")) => None,
            ("amd64", None | Some("v1")) => None,
            ("arm", None | Some("v7" | "7")) => Some("v7".to_string()),
            ("arm", Some(v)) if !v.starts_with('v') => Some(format!("v{v}")),
            _ => variant,
        };
        (os, arch, variant)
    }

    /// Whether two spellings name the same platform.
    pub fn matches(&self, other: &Platform) -> bool {
        self.normalized() == other.normalized()
    }
}

impl PartialEq for Platform {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other)
    }
}

impl std::hash::Hash for Platform {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.normalized().hash(state);
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Platform({self})")
    }
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Platform::parse(s)
    }
}

impl serde::Serialize for Platform {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Platform {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Platform::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn equivalent_spellings_match() {
        assert_eq!(p("linux/arm64"), p("linux/arm64/v8"));
        assert_eq!(p("linux/amd64"), p("linux/amd64/v1"));
        assert_eq!(p("linux/arm"), p("linux/arm/v7"));
        assert_eq!(p("linux/aarch64"), p("linux/arm64"));
        assert_ne!(p("linux/arm/v6"), p("linux/arm/v7"));
        assert_ne!(p("linux/amd64/v2"), p("linux/amd64"));
        assert_ne!(p("linux/arm64"), p("linux/amd64"));
        assert_ne!(p("windows/amd64"), p("linux/amd64"));
    }

    #[test]
    fn keeps_spelling() {
        assert_eq!(p("linux/arm64/v8").to_string(), "linux/arm64/v8");
        assert_eq!(p("linux/arm64").to_string(), "linux/arm64");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "linux/am d64",
        ] {
            let e = Platform::parse(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")));
        }
        let list = Platform::parse_list("linux/amd64, linux/arm64").unwrap();
        assert_eq!(list.len(), 2);
        assert!(Platform::parse_list("linux/amd64,bogus").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(s in "\\PC{0,40}") {
            if let Ok(pl) = Platform::parse(&s) {
                prop_assert_eq!(pl.to_string(), s);
            }
        }

        #[test]
        fn equality_is_consistent_with_hash(a in "linux/(amd64|arm64|arm|aarch64)(/v[5-8])?",
                                            b in "linux/(amd64|arm64|arm|aarch64)(/v[5-8])?") {
            use std::hash::{BuildHasher, RandomState};
            let (pa, pb) = (p(&a), p(&b));
            let st = RandomState::new();
            if pa == pb {
                prop_assert_eq!(st.hash_one(&pa), st.hash_one(&pb));
            }
            prop_assert_eq!(pa == pb, pb == pa);
        }
    }
}
