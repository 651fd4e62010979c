#!/usr/bin/env bash
# Install a ferry release, verified by its SHA-256 (used by action.yml; usable anywhere).
# Environment: VERSION, SHA_AMD64 and/or SHA_ARM64, URL_TEMPLATE (with {version} and {target}),
# DEST (default $RUNNER_TEMP/ferry-$VERSION). Appends DEST to $GITHUB_PATH when that is set.
set -euo pipefail
: "${VERSION:?VERSION is required}" "${URL_TEMPLATE:?URL_TEMPLATE is required}"
case "$(uname -m)" in
  x86_64) target=x86_64-linux; sha="${SHA_AMD64:-}" ;;
  aarch64|arm64) target=aarch64-linux; sha="${SHA_ARM64:-}" ;;
  *) echo "::error title=ferry::unsupported architecture $(uname -m)"; exit 1 ;;
esac
[ -n "$sha" ] || { echo "::error title=ferry::no sha256 given for $target"; exit 1; }
url=${URL_TEMPLATE//\{version\}/$VERSION}
url=${url//\{target\}/$target}
dest=${DEST:-${RUNNER_TEMP:-/tmp}/ferry-$VERSION}
mkdir -p "$dest"
curl -fsSL --retry 3 -o "$dest/ferry.tar.gz" "$url"
if ! echo "$sha  $dest/ferry.tar.gz" | sha256sum -c - >/dev/null 2>&1; then
  echo "::error title=ferry::checksum mismatch for $url (expected $sha, got $(sha256sum "$dest/ferry.tar.gz" | cut -d' ' -f1))"
  rm -f "$dest/ferry.tar.gz"
  exit 1
fi
tar -xzf "$dest/ferry.tar.gz" -C "$dest"
rm -f "$dest/ferry.tar.gz"
[ -n "${GITHUB_PATH:-}" ] && echo "$dest" >> "$GITHUB_PATH"
echo "ferry $VERSION installed in $dest"
