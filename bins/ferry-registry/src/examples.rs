//! The examples of every `--help` (tests/tests/help.rs runs the ones that need no registry).

/// `ferry-registry --help`.
pub const ROOT: &str = "\
Examples:
  # The canonical form of a short reference (no network)
  ferry-registry parse python:3.12-slim
  # The digest the registry serves for a tag
  ferry-registry digest python:3.12-slim

Exit codes: 0 success, 1 negative answer (not found, platform missing, invalid reference, wait timed out), 2 usage error, 3 operational error (network, auth, timeout, registry misbehaviour).";

/// `ferry-registry parse --help`.
pub const PARSE: &str = "\
Examples:
  # docker.io/library/python:3.12-slim
  ferry-registry parse python:3.12-slim
  # Registry, repository, tag and digest of each, as JSON
  ferry-registry parse --json ghcr.io/acme/app:1.2 nginx";

/// `ferry-registry digest --help`.
pub const DIGEST: &str = "\
Examples:
  # The index digest of a tag
  ferry-registry digest python:3.12-slim
  # The digest of the linux/arm64 manifest instead
  ferry-registry digest --platform linux/arm64 python:3.12-slim
  # Many references, one per line of a file, as JSON
  ferry-registry digest -f images.txt --json";

/// `ferry-registry inspect --help`.
pub const INSPECT: &str = "\
Examples:
  # Platforms, child digests and attestations
  ferry-registry inspect python:3.12-slim
  # The same as JSON
  ferry-registry inspect --json ghcr.io/acme/app:1.2";

/// `ferry-registry verify --help`.
pub const VERIFY: &str = "\
Examples:
  # Exit 1, naming what is missing, unless both platforms were pushed
  ferry-registry verify ghcr.io/acme/app:1.2 --platforms linux/amd64,linux/arm64
  # The same against a registry on plain HTTP
  ferry-registry verify localhost:5000/app:1.2 --platforms linux/amd64 --plain-http localhost:5000";

/// `ferry-registry tags --help`.
pub const TAGS: &str = "\
Examples:
  # Every tag of a repository
  ferry-registry tags ghcr.io/acme/app
  # As JSON, asking for pages of 100
  ferry-registry tags python --page-size 100 --json";

/// `ferry-registry tag --help`.
pub const TAG: &str = "\
Examples:
  # Point :stable at what :1.2 is, without pulling anything
  ferry-registry tag ghcr.io/acme/app:1.2 ghcr.io/acme/app:stable
  # Copy to another repository of the same registry
  ferry-registry tag ghcr.io/acme/app:1.2 ghcr.io/acme/release:1.2";

/// `ferry-registry promote --help`.
pub const PROMOTE: &str = "\
Examples:
  # Move :stable to :rc once :rc is three days old
  ferry-registry promote ghcr.io/acme/app:rc ghcr.io/acme/app:stable --min-age 72h
  # Count the age from when the pipeline first saw it
  ferry-registry promote ghcr.io/acme/app:rc ghcr.io/acme/app:stable --min-age 72h --since 2025-01-01T00:00:00Z";

/// `ferry-registry wait --help`.
pub const WAIT: &str = "\
Examples:
  # Wait up to ten minutes for a multi-platform push to finish
  ferry-registry wait ghcr.io/acme/app:1.2 --platforms linux/amd64,linux/arm64 --timeout 10m
  # Check every 30 seconds instead of every 5
  ferry-registry wait ghcr.io/acme/app:1.2 --interval 30s";

/// `ferry-registry verify-signature --help`.
pub const VERIFY_SIGNATURE: &str = "\
Examples:
  # Exit 0 when the digest the tag serves carries a valid cosign signature by cosign.pub
  ferry-registry verify-signature --key cosign.pub ghcr.io/acme/app:1.4
  # Every signature found and why each failed, as JSON
  ferry-registry verify-signature --json --key cosign.pub ghcr.io/acme/app@sha256:4f1c0e8a2b7d9c3e5f6a8b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e";

/// `ferry-registry auth --help`.
pub const AUTH: &str = "\
Examples:
  # Which credential ghcr.io gets for acme/app, from where, and whether it is accepted
  ferry-registry auth ghcr.io/acme/app:1.2
  # The same as JSON (source, accepted, token and credential expiry; never a secret)
  ferry-registry auth --json 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:latest";
