//! The error type of `ferry-registry`.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use ferry_core::{Digest, Platform};

use crate::ratelimit::RateLimit;

/// Everything that can go wrong while talking to a registry.
///
/// Variants carry the URL, reference or digest involved so that a message names it. Use
/// [`Error::is_negative`] to tell "the registry answered no" (exit 1) from operational failures
/// (exit 3).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A reference, digest or platform did not parse.
    #[error(transparent)]
    Core(#[from] ferry_core::Error),

    /// The registry says the manifest, tag, blob or repository does not exist.
    #[error("{what} not found: {reference} ({detail})")]
    NotFound {
        /// What was looked up: `manifest`, `blob`, `repository`.
        what: &'static str,
        /// The reference or digest looked up.
        reference: String,
        /// The registry's own words (error code and message) when it sent any.
        detail: crate::detail::RegistryWords,
    },

    /// The image exists but has no manifest for the requested platform.
    #[error(
        "{reference} has no manifest for platform {platform} (it has: {})",
        listed(available)
    )]
    PlatformNotFound {
        /// The reference looked up.
        reference: String,
        /// The platform asked for.
        platform: Platform,
        /// The platforms it does have.
        available: Vec<Platform>,
    },

    /// The registry refused our credentials, or demanded credentials we do not have.
    #[error("authentication failed for {url}: {detail}")]
    Unauthorized {
        /// The URL that was refused.
        url: String,
        /// What the registry or the token server said, and which credential was sent.
        detail: crate::detail::Refusal,
    },

    /// The registry refused access with 403.
    #[error("access denied to {url}: {detail}")]
    Denied {
        /// The URL that was refused.
        url: String,
        /// What the registry said, and which credential was sent.
        detail: crate::detail::Refusal,
    },

    /// Still rate limited (429) after waiting as long as the retry budget allows.
    #[error("rate limited by {url}{}{}", retry_after.map(|d| format!(" (Retry-After {}s)", d.as_secs())).unwrap_or_default(), rate_limit.as_ref().map(|r| format!(" [{r}]")).unwrap_or_default())]
    RateLimited {
        /// The URL that answered 429.
        url: String,
        /// What `Retry-After` asked for, if it was sent.
        retry_after: Option<Duration>,
        /// The rate-limit headers of the last answer.
        rate_limit: Option<RateLimit>,
    },

    /// Any other unexpected HTTP status (after retries for 5xx and 408).
    #[error("{method} {url} answered HTTP {status}: {detail}")]
    Status {
        /// Request method.
        method: String,
        /// Request URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// The registry's error code and message, or the start of the body.
        detail: crate::detail::RegistryWords,
    },

    /// The connection failed (after retries).
    #[error("request to {url} failed: {source}")]
    Transport {
        /// Request URL.
        url: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },

    /// The request (including reading its body) took longer than the configured timeout.
    #[error("request to {url} timed out after {after:?}")]
    Timeout {
        /// Request URL.
        url: String,
        /// The timeout that expired.
        after: Duration,
    },

    /// The content did not hash to the digest it was asked for or announced with.
    #[error("digest mismatch for {url}: expected {expected}, content hashes to {actual}")]
    DigestMismatch {
        /// Request URL.
        url: String,
        /// The digest requested or announced in `Docker-Content-Digest`.
        expected: Digest,
        /// The digest of the bytes received.
        actual: Digest,
    },

    /// The body was larger than allowed.
    #[error("response from {url} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Request URL.
        url: String,
        /// The cap in bytes.
        limit: usize,
    },

    /// The manifest or another JSON document from the registry could not be understood.
    #[error("invalid {what} from {url}: {problem}")]
    Invalid {
        /// What was being decoded (`manifest`, `tag list`, `token`, `image config`…).
        what: &'static str,
        /// Where it came from.
        url: String,
        /// Why it is invalid.
        problem: crate::problem::InvalidProblem,
    },

    /// A `WWW-Authenticate` header could not be parsed or used.
    #[error("cannot use authentication challenge {header:?}: {problem}")]
    Challenge {
        /// The header value.
        header: String,
        /// Why it is unusable.
        problem: crate::problem::ChallengeProblem,
    },

    /// Docker's config.json or a credential helper failed.
    #[error("credentials for {registry}: {problem}")]
    Credentials {
        /// The registry whose credentials were looked up (`*` for a whole config.json).
        registry: String,
        /// What went wrong.
        problem: CredentialProblem,
    },

    /// A public key for signature verification could not be used.
    #[error("public key {name}: {problem}")]
    PublicKey {
        /// Where the key came from (a file name).
        name: String,
        /// Why it is unusable.
        problem: crate::problem::KeyProblem,
    },

    /// A file signature verification needs (a public key, a trusted root, a signature policy)
    /// cannot be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    VerificationFile {
        /// `key`, `trusted root` or `signature policy`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// A signature policy document is unusable.
    #[error("signature policy {}: {reason}", file.display())]
    SignaturePolicy {
        /// The document.
        file: PathBuf,
        /// What is wrong.
        reason: crate::signature::PolicyProblem,
    },

    /// A Sigstore trusted root (`trusted_root.json`) is unusable.
    #[error("trusted root {name}: {source}")]
    TrustedRoot {
        /// The file (or "the embedded Sigstore public-good root").
        name: String,
        /// What sigstore-verify found wrong with it.
        #[source]
        source: Box<sigstore_verify::Error>,
    },

    /// cosign's signature tag in the destination of a copy cannot be merged with the source's.
    #[error("cannot merge the signatures under {tag}: {problem}")]
    SignatureMerge {
        /// The destination tag (`repo:sha256-<hex>.sig`).
        tag: String,
        /// What is wrong.
        problem: crate::signature::MergeProblem,
    },

    /// A keyless identity's regular expression does not compile.
    #[error("{field} {pattern:?}: not a regular expression: {source}")]
    IdentityPattern {
        /// The flag or policy field (`--certificate-identity-regexp`, `subject_regexp`…).
        field: &'static str,
        /// The pattern as given.
        pattern: String,
        /// Why it does not compile.
        #[source]
        source: regex::Error,
    },

    /// The client configuration is unusable (bad mirror URL, unreadable CA file…).
    #[error("invalid registry configuration: {0}")]
    Config(ConfigProblem),
}

/// What went wrong looking credentials up ([`Error::Credentials`]).
#[derive(Debug)]
pub enum CredentialProblem {
    /// A config.json could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A config.json (or a pull secret's `.dockerconfigjson`) is not valid JSON of that shape.
    Parse {
        /// The file, when it came from one.
        path: Option<PathBuf>,
        /// The decoder's words.
        source: serde_json::Error,
    },
    /// An `auths` entry of a config.json cannot be used.
    Entry {
        /// The file, when the configuration came from one.
        path: Option<PathBuf>,
        /// What is wrong with the entry.
        problem: EntryProblem,
    },
    /// A `docker-credential-*` helper could not be started.
    HelperStart {
        /// The helper program.
        program: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A helper was started but could not be waited for.
    HelperWait {
        /// The helper program.
        program: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A helper exited with failure.
    HelperFailed {
        /// The helper program.
        program: PathBuf,
        /// Its exit status.
        status: ExitStatus,
        /// What it printed (stdout, then stderr, trimmed).
        output: String,
    },
    /// A helper's answer is not the JSON the protocol specifies.
    HelperAnswer {
        /// The helper program.
        program: PathBuf,
        /// The decoder's words.
        source: serde_json::Error,
    },
    /// The blocking credential lookup panicked or was cancelled.
    LookupPanicked(tokio::task::JoinError),
    /// A cloud provider gave no credential (its token service refused or failed).
    Cloud {
        /// The cloud.
        provider: crate::cloud::CloudProvider,
        /// What went wrong (never a secret).
        problem: CloudProblem,
    },
}

/// Why a cloud provider gave no credential ([`CredentialProblem::Cloud`]).
#[derive(Debug)]
pub enum CloudProblem {
    /// Asked outside a tokio runtime.
    NoRuntime(tokio::runtime::TryCurrentError),
    /// The registry host is not one of this provider's (e.g. not `*.dkr.ecr.*.amazonaws.com`).
    NotItsHost,
    /// A token service could not be reached, or its answer not read.
    Unreachable {
        /// What was asked.
        url: String,
        /// The HTTP client's error.
        source: reqwest::Error,
    },
    /// A token service answered with an error status.
    Refused {
        /// What was asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of its answer (token services' error answers hold codes and descriptions,
        /// never the secret).
        answer: String,
    },
    /// A token service answered something other than its documented JSON.
    BadAnswer {
        /// What was asked.
        url: String,
        /// The decoder's words.
        source: serde_json::Error,
    },
    /// The answer lacks what it must hold.
    Incomplete {
        /// What was asked (a URL or an API operation).
        from: String,
        /// What is missing or malformed.
        missing: &'static str,
    },
    /// A token file (Azure's federated token) could not be read.
    TokenFile {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A Google credentials file (`GOOGLE_APPLICATION_CREDENTIALS`, or gcloud's
    /// application-default file) cannot be used.
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (never its secrets).
        problem: KeyFileProblem,
    },
    /// The AWS SDK failed (credentials chain or an ECR operation).
    Aws {
        /// What was being done.
        operation: AwsOperation,
        /// The SDK's error (its types differ per operation).
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What ferry asked AWS for when the SDK failed ([`CloudProblem::Aws`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsOperation {
    /// Credentials from the SDK's chain (environment, web identity, Pod Identity, IMDS).
    Credentials,
    /// ECR's `GetAuthorizationToken`.
    GetAuthorizationToken {
        /// The AWS region.
        region: String,
    },
}

impl fmt::Display for AwsOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AwsOperation::Credentials => f.write_str("AWS credentials"),
            AwsOperation::GetAuthorizationToken { region } => {
                write!(f, "GetAuthorizationToken in {region}")
            }
        }
    }
}

impl fmt::Display for CloudProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloudProblem::NoRuntime(e) => write!(f, "no async runtime to ask it on: {e}"),
            CloudProblem::NotItsHost => f.write_str("not a registry host of this cloud"),
            CloudProblem::Unreachable { url, source } => {
                // reqwest's own words only repeat the URL; its causes say what failed (a
                // refused connection, a certificate no trusted CA signed).
                write!(f, "{url}: ")?;
                let causes: Vec<String> =
                    std::iter::successors(std::error::Error::source(source), |c| c.source())
                        .map(ToString::to_string)
                        .collect();
                if causes.is_empty() {
                    return write!(f, "{source}");
                }
                let text = causes.join(": ");
                f.write_str(&text)?;
                if text.contains("certificate") {
                    f.write_str(" (a private CA or a TLS-intercepting proxy's CA is trusted with --ca-file)")?;
                }
                Ok(())
            }
            CloudProblem::Refused {
                url,
                status,
                answer,
            } => write!(f, "{url} answered {status}: {answer}"),
            CloudProblem::BadAnswer { url, source } => {
                write!(f, "{url}: unexpected answer: {source}")
            }
            CloudProblem::Incomplete { from, missing } => write!(f, "{from}: {missing}"),
            CloudProblem::TokenFile { path, source } => {
                write!(f, "token file {}: {source}", path.display())
            }
            CloudProblem::KeyFile { path, problem } => {
                write!(f, "credentials file {}: {problem}", path.display())
            }
            CloudProblem::Aws { operation, source } => {
                let mut text = source.to_string();
                let mut cause = source.source();
                while let Some(c) = cause {
                    text.push_str(": ");
                    text.push_str(&c.to_string());
                    cause = c.source();
                }
                write!(f, "{operation}: {text}")
            }
        }
    }
}

impl fmt::Display for CredentialProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialProblem::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            CredentialProblem::Parse {
                path: Some(path),
                source,
            } => {
                write!(f, "{}: {source}", path.display())
            }
            CredentialProblem::Parse { path: None, source } => write!(f, "{source}"),
            CredentialProblem::Entry { path, problem } => match path {
                Some(p) => write!(f, "{}: {problem}", p.display()),
                None => write!(f, "config.json: {problem}"),
            },
            CredentialProblem::HelperStart { program, source } => {
                write!(f, "cannot run {}: {source}", program.display())
            }
            CredentialProblem::HelperWait { program, source } => {
                write!(f, "{}: {source}", program.display())
            }
            CredentialProblem::HelperFailed {
                program,
                status,
                output,
            } => write!(f, "{} get failed ({status}): {output}", program.display()),
            CredentialProblem::HelperAnswer { program, source } => {
                write!(f, "{} printed invalid JSON: {source}", program.display())
            }
            CredentialProblem::LookupPanicked(e) => write!(f, "credential lookup panicked: {e}"),
            CredentialProblem::Cloud { provider, problem } => {
                write!(f, "{provider} cloud credentials: {problem}")
            }
        }
    }
}

/// Why a Google credentials file cannot be used ([`CloudProblem::KeyFile`]). No variant holds
/// or prints any of the file's content beyond its `type`.
#[derive(Debug)]
pub enum KeyFileProblem {
    /// It cannot be read.
    Read(std::io::Error),
    /// It is not JSON (the decoder's position, never the text).
    NotJson(serde_json::Error),
    /// A field it must hold is missing or not a string.
    Field {
        /// The field (`client_email`, `private_key`, …).
        field: &'static str,
        /// The file's `type`.
        kind: &'static str,
    },
    /// A `type` ferry cannot log in with.
    UnsupportedType {
        /// The file's `type` (`external_account`, …), or empty when it has none.
        kind: String,
    },
    /// `private_key` is not a PEM RSA private key, or not one the signer accepts.
    PrivateKey(crate::jwt::RsaKeyProblem),
    /// Signing the JWT assertion failed.
    Sign(aws_lc_rs::error::Unspecified),
    /// Its `token_uri` refused or failed the token request.
    TokenRequest(Box<CloudProblem>),
}

impl fmt::Display for KeyFileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileProblem::Read(e) => write!(f, "cannot read it: {e}"),
            KeyFileProblem::NotJson(e) => write!(f, "not a JSON credentials file: {e}"),
            KeyFileProblem::Field { field, kind } => {
                write!(f, "a {kind} file needs a string {field:?}")
            }
            KeyFileProblem::UnsupportedType { kind } if kind.is_empty() => f.write_str(
                "no \"type\" (expected a service-account key, type \"service_account\", or gcloud's \"authorized_user\")",
            ),
            KeyFileProblem::UnsupportedType { kind } => write!(
                f,
                "type {kind:?} is not supported (use a service-account key, type \"service_account\", or gcloud's \"authorized_user\"; on GKE, Workload Identity through the metadata server)"
            ),
            KeyFileProblem::PrivateKey(crate::jwt::RsaKeyProblem::NotPem) => {
                f.write_str("\"private_key\" is not a PEM private key (BEGIN PRIVATE KEY)")
            }
            KeyFileProblem::PrivateKey(crate::jwt::RsaKeyProblem::Rejected(e)) => {
                write!(f, "\"private_key\" is not a usable RSA key: {e}")
            }
            KeyFileProblem::Sign(e) => write!(f, "signing the JWT assertion failed: {e}"),
            KeyFileProblem::TokenRequest(e) => write!(f, "its token request failed: {e}"),
        }
    }
}

/// Why an `auths` entry of a config.json cannot be used ([`CredentialProblem::Entry`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryProblem {
    /// `auth` is not base64.
    Base64(base64::DecodeError),
    /// `auth` decodes to bytes that are not UTF-8.
    NotUtf8,
    /// `auth` decodes to text without a `:`.
    NoColon,
}

impl fmt::Display for EntryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryProblem::Base64(e) => write!(f, "\"auth\" is not valid base64: {e}"),
            EntryProblem::NotUtf8 => f.write_str("\"auth\" is not UTF-8"),
            EntryProblem::NoColon => f.write_str("\"auth\" does not decode to user:password"),
        }
    }
}

/// What is wrong with a client's configuration ([`Error::Config`]).
#[derive(Debug)]
pub enum ConfigProblem {
    /// A `REGISTRY=URL` mirror option has no `=`.
    MirrorSyntax {
        /// The option as given.
        spec: String,
    },
    /// A mirror's URL does not parse.
    MirrorUrl {
        /// The option as given (`REGISTRY=URL`).
        spec: String,
        /// The parser's words.
        source: url::ParseError,
    },
    /// A mirror's URL is not `http(s)://host[:port][/path]`.
    MirrorScheme {
        /// The option as given.
        spec: String,
    },
    /// A mirror option names no registry.
    MirrorRegistry {
        /// The option as given.
        spec: String,
    },
    /// A mirror in [`ClientConfig::mirrors`](crate::ClientConfig::mirrors) does not parse.
    Mirror {
        /// The registry mirrored.
        registry: String,
        /// The mirror's URL.
        url: String,
        /// The parser's words.
        source: url::ParseError,
    },
    /// The CA file could not be read.
    CaRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file is not PEM.
    CaParse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: reqwest::Error,
    },
    /// The CA file holds no certificate.
    CaEmpty {
        /// The file.
        path: PathBuf,
    },
    /// The HTTP client could not be built.
    Http(reqwest::Error),
    /// The AWS SDK's HTTPS client could not be built.
    AwsHttp(aws_smithy_http_client::HttpClientError),
    /// A reference without a registry domain (nothing to contact).
    NoRegistry,
    /// `--cloud-auth` names something that is not a cloud provider.
    CloudAuth {
        /// The option as given.
        spec: String,
        /// The word that is not `aws`, `gcp`, `azure` (or a `none` among others).
        word: String,
    },
    /// A registry URL could not be built from its base and path.
    Url {
        /// `base` + `path`.
        url: String,
        /// The parser's words.
        source: url::ParseError,
    },
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigProblem::MirrorSyntax { spec } => {
                write!(f, "mirror {spec:?}: expected REGISTRY=URL")
            }
            ConfigProblem::MirrorUrl { spec, source } => {
                write!(f, "mirror {spec:?}: invalid URL: {source}")
            }
            ConfigProblem::MirrorScheme { spec } => {
                write!(
                    f,
                    "mirror {spec:?}: URL must be http(s)://host[:port][/path]"
                )
            }
            ConfigProblem::MirrorRegistry { spec } => {
                write!(f, "mirror {spec:?}: empty registry name")
            }
            ConfigProblem::Mirror {
                registry,
                url,
                source,
            } => write!(f, "mirror {registry}={url}: {source}"),
            ConfigProblem::CaRead { path, source } => {
                write!(f, "cannot read CA file {}: {source}", path.display())
            }
            ConfigProblem::CaParse { path, source } => {
                write!(f, "CA file {}: {source}", path.display())
            }
            ConfigProblem::CaEmpty { path } => {
                write!(f, "CA file {} holds no PEM certificate", path.display())
            }
            ConfigProblem::Http(e) => write!(f, "cannot build HTTP client: {e}"),
            ConfigProblem::AwsHttp(e) => write!(f, "cannot build the AWS SDK's HTTPS client: {e}"),
            ConfigProblem::NoRegistry => {
                f.write_str("reference has no registry domain that can be contacted")
            }
            ConfigProblem::CloudAuth { spec, word } => write!(
                f,
                "cloud auth {spec:?}: {word:?} is not aws, gcp or azure (or none alone)"
            ),
            ConfigProblem::Url { url, source } => {
                write!(f, "cannot build URL from {url}: {source}")
            }
        }
    }
}

impl Error {
    /// Whether this error is a negative answer (not found, platform missing, invalid input)
    /// rather than an operational failure.
    pub fn is_negative(&self) -> bool {
        matches!(
            self,
            Error::NotFound { .. } | Error::PlatformNotFound { .. } | Error::Core(_)
        )
    }

    /// Whether retrying later may help (network trouble, timeouts, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::Timeout { .. } | Error::RateLimited { .. } => true,
            Error::Status { status, .. } => *status >= 500 || *status == 408,
            _ => false,
        }
    }
}

impl ferry_core::exit::Classify for Error {
    /// Exit 1 for negative answers ([`Error::is_negative`]), 3 for everything else.
    fn exit_code(&self) -> u8 {
        if self.is_negative() {
            ferry_core::exit::NEGATIVE
        } else {
            ferry_core::exit::OPERATIONAL
        }
    }
}

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The text of `path`, a file signature verification needs (`what`: `key`, `trusted root`,
/// `signature policy`).
pub(crate) fn read_verification_file(what: &'static str, path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::VerificationFile {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Platforms as a list for people: `linux/amd64, linux/arm64`, or `none`.
fn listed(platforms: &[Platform]) -> String {
    if platforms.is_empty() {
        return "none".into();
    }
    let names: Vec<String> = platforms.iter().map(ToString::to_string).collect();
    names.join(", ")
}

#[cfg(test)]
mod platform_tests {
    use super::*;

    #[test]
    fn a_missing_platform_lists_the_ones_there_or_none() {
        let e = |available: Vec<Platform>| Error::PlatformNotFound {
            reference: "r.example/acme/app:1".into(),
            platform: "linux/riscv64".parse().unwrap(),
            available,
        };
        let both = Platform::parse_list("linux/amd64,linux/arm64").unwrap();
        assert_eq!(
            e(both).to_string(),
            "r.example/acme/app:1 has no manifest for platform linux/riscv64 (it has: linux/amd64, linux/arm64)"
        );
        assert_eq!(
            e(vec![]).to_string(),
            "r.example/acme/app:1 has no manifest for platform linux/riscv64 (it has: none)"
        );
        let other = crate::signature::Rejection::OtherDigest {
            signed: vec!["sha256:aa".into(), "sha256:bb".into()],
        };
        assert_eq!(
            other.to_string(),
            "the signed payload names sha256:aa, sha256:bb, not this digest"
        );
    }
}
