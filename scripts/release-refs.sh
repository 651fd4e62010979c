#!/usr/bin/env bash
# ferry's published names, all derived from ONE place: `repository` (a https://github.com/OWNER/NAME
# URL) and `version` in Cargo.toml's [workspace.package]. Prints sourceable KEY=VALUE lines:
#   REPOSITORY            https://github.com/OWNER/NAME
#   VERSION               the workspace version (release tags are v$VERSION)
#   IMAGE                 ghcr.io/owner/name (the container image; tags $VERSION and latest)
#   ACTION                OWNER/NAME (the GitHub Action: uses: OWNER/NAME@v$VERSION)
#   RELEASE_URL_TEMPLATE  $REPOSITORY/releases/download/v{version}/ferry-{version}-{target}.tar.gz
# Used by .github/workflows/release.yml; tests/tests/release_refs.rs checks that every release
# URL and image reference in the repository agrees with it.
set -euo pipefail
manifest="${1:-$(dirname "$0")/../Cargo.toml}"
field() {
  awk -v key="$1" '
    /^\[/ { section = $0 }
    section == "[workspace.package]" && $1 == key && $2 == "=" {
      value = $3; gsub(/"/, "", value); print value; exit
    }' "$manifest"
}
repository=$(field repository)
version=$(field version)
case "$repository" in
  https://github.com/*/*) ;;
  *) echo "release-refs: repository in $manifest must be https://github.com/OWNER/NAME, got '$repository'" >&2; exit 1 ;;
esac
[ -n "$version" ] || { echo "release-refs: no version in [workspace.package] of $manifest" >&2; exit 1; }
slug=${repository#https://github.com/}
slug=${slug%/}
echo "REPOSITORY=$repository"
echo "VERSION=$version"
echo "IMAGE=ghcr.io/$(echo "$slug" | tr '[:upper:]' '[:lower:]')"
echo "ACTION=$slug"
echo "RELEASE_URL_TEMPLATE=$repository/releases/download/v{version}/ferry-{version}-{target}.tar.gz"
