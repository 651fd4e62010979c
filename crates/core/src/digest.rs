//! Content digests (`algorithm:hex`), parsed strictly and able to verify bytes.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

use crate::error::{Error, Result};

/// A supported digest algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, 64 hex characters. What every registry uses.
    Sha256,
    /// SHA-384, 96 hex characters.
    Sha384,
    /// SHA-512, 128 hex characters.
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as it appears in a digest string.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Number of hex characters of an encoded digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha384 => 96,
            Algorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha384" => Some(Algorithm::Sha384),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

/// A content digest such as `sha256:e3b0c442…`.
///
/// Parsing is strict, like `opencontainers/go-digest`: the algorithm must be one of
/// [`Algorithm`], the hex part must be lowercase and exactly as long as the algorithm demands.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// What is wrong with a digest text ([`Error::InvalidDigest`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestProblem {
    /// No `:` between algorithm and hex.
    NotAlgorithmHex,
    /// Nothing before the `:`.
    EmptyAlgorithm,
    /// An algorithm other than sha256, sha384, sha512.
    UnsupportedAlgorithm,
    /// The hex part has the wrong length for its algorithm.
    HexLength {
        /// The algorithm named.
        algorithm: Algorithm,
        /// How many characters the hex part has.
        got: usize,
    },
    /// The hex part has characters other than `0-9a-f`.
    HexCharacters,
}

impl fmt::Display for DigestProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigestProblem::NotAlgorithmHex => f.write_str("expected algorithm:hex"),
            DigestProblem::EmptyAlgorithm => f.write_str("empty algorithm"),
            DigestProblem::UnsupportedAlgorithm => {
                f.write_str("unsupported algorithm (sha256, sha384, sha512 are)")
            }
            DigestProblem::HexLength { algorithm, got } => write!(
                f,
                "{} needs {} hex characters, got {got}",
                algorithm.as_str(),
                algorithm.hex_len()
            ),
            DigestProblem::HexCharacters => f.write_str("hex part must be lowercase 0-9a-f"),
        }
    }
}

impl Digest {
    /// Parse `algorithm:hex`.
    pub fn parse(input: &str) -> Result<Self> {
        let invalid = |reason: DigestProblem| Error::InvalidDigest {
            input: input.to_string(),
            reason,
        };
        let (alg, hex) = input
            .split_once(':')
            .ok_or_else(|| invalid(DigestProblem::NotAlgorithmHex))?;
        if alg.is_empty() {
            return Err(invalid(DigestProblem::EmptyAlgorithm));
        }
        let algorithm = Algorithm::from_name(alg)
            .ok_or_else(|| invalid(DigestProblem::UnsupportedAlgorithm))?;
        if hex.len() != algorithm.hex_len() {
            return Err(invalid(DigestProblem::HexLength {
                algorithm,
                got: hex.len(),
            }));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid(DigestProblem::HexCharacters));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }

    /// The SHA-256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        Self::compute(Algorithm::Sha256, bytes)
    }

    /// The digest of `bytes` under `algorithm`.
    pub fn compute(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let hex = match algorithm {
            Algorithm::Sha256 => to_hex(&sha2::Sha256::digest(bytes)),
            Algorithm::Sha384 => to_hex(&sha2::Sha384::digest(bytes)),
            Algorithm::Sha512 => to_hex(&sha2::Sha512::digest(bytes)),
        };
        Digest { algorithm, hex }
    }

    /// Whether `bytes` hash to this digest (using this digest's algorithm).
    pub fn verifies(&self, bytes: &[u8]) -> bool {
        Self::compute(self.algorithm, bytes) == *self
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn empty_input_hashes_to_known_digest() {
        assert_eq!(Digest::sha256_of(b"").to_string(), EMPTY);
        assert!(Digest::parse(EMPTY).unwrap().verifies(b""));
        assert!(!Digest::parse(EMPTY).unwrap().verifies(b"x"));
    }

    #[test]
    fn rejects_malformed_digests() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
            "sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            let err = Digest::parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn sha384_and_sha512_round_trip() {
        for alg in [Algorithm::Sha384, Algorithm::Sha512] {
            let d = Digest::compute(alg, b"ferry");
            assert_eq!(d.hex().len(), alg.hex_len());
            assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_display_round_trips(s in "\\PC{0,140}") {
            if let Ok(d) = Digest::parse(&s) {
                prop_assert_eq!(d.to_string(), s);
            }
        }

        #[test]
        fn computed_digest_verifies_its_bytes_only(a in proptest::collection::vec(any::<u8>(), 0..256),
                                                   b in proptest::collection::vec(any::<u8>(), 0..256)) {
            let d = Digest::sha256_of(&a);
            prop_assert!(d.verifies(&a));
            prop_assert_eq!(d.verifies(&b), a == b);
            prop_assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        }
    }
}
