#!/usr/bin/env bash
# Test tools built from pinned Go sources, cached outside the clone like the control plane
# (scripts/testenv.sh): cosign (the signature interop tests sign and verify with it) and a
# registry with the OCI 1.1 Referrers API (tests/tools/referrers-registry, go-containerregistry's
# pkg/registry; Debian's distribution 2.8 has none), and virtual-sigstore
# (tests/tools/virtual-sigstore: a private Fulcio CA, CT log and Rekor log from sigstore-go's
# pkg/testing/ca, for keyless signatures without the internet).
# Usage: scripts/test-tools.sh [cosign|referrers-registry|virtual-sigstore]...  (default: all). Each binary lands
# in $FERRY_TOOLS_CACHE (default ~/.cache/ferry)/<tool>/<version>/ and the script prints one
# `tool=PATH` line per tool asked for (the tests run it and read those lines: the versions are
# pinned here only). Cold: cosign ~4 minutes on 2 cores, the registry a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
COSIGN_VERSION=v3.1.3
REFERRERS_VERSION=ggcr-v0.22.1
# sigstore-go as cosign v3.1.3 pins it (its go.mod), so both sides speak the same version.
VIRTUAL_SIGSTORE_VERSION=sigstore-go-v1.2.2-ggcr-v0.22.1
cache=${FERRY_TOOLS_CACHE:-$HOME/.cache/ferry}
export GOFLAGS="-p=1 -buildvcs=false -mod=mod" GOTOOLCHAIN=local

# cosign from the module proxy, built in a throw-away copy of the module so its go.mod applies.
build_cosign() {
  local out="$cache/cosign/$COSIGN_VERSION" src dir
  [ -x "$out/cosign" ] && return 0
  echo "building cosign $COSIGN_VERSION into $out (several minutes the first time)…" >&2
  src=$(mktemp -d)
  dir=$(cd "$src" && go mod download -json "github.com/sigstore/cosign/v3@$COSIGN_VERSION" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error")))')
  cp -r "$dir/." "$src/m" 2>/dev/null || { mkdir -p "$src/m" && cp -r "$dir/." "$src/m"; }
  chmod -R u+w "$src/m"
  mkdir -p "$out"
  (cd "$src/m" && go build -trimpath -o "$out/cosign.tmp" ./cmd/cosign) && mv "$out/cosign.tmp" "$out/cosign"
  rm -rf "$src"
}

# The referrers registry from tests/tools/referrers-registry, in a temp copy (go.sum is written
# there, not in the clone).
build_referrers_registry() {
  local out="$cache/referrers-registry/$REFERRERS_VERSION" src
  [ -x "$out/referrers-registry" ] && return 0
  echo "building referrers-registry $REFERRERS_VERSION into $out…" >&2
  src=$(mktemp -d)
  cp tests/tools/referrers-registry/main.go tests/tools/referrers-registry/go.mod "$src/"
  mkdir -p "$out"
  (cd "$src" && go mod tidy && go build -trimpath -o "$out/referrers-registry.tmp" .) &&
    mv "$out/referrers-registry.tmp" "$out/referrers-registry"
  rm -rf "$src"
}

# virtual-sigstore from tests/tools/virtual-sigstore, likewise (cold: ~2 minutes).
build_virtual_sigstore() {
  local out="$cache/virtual-sigstore/$VIRTUAL_SIGSTORE_VERSION" src
  [ -x "$out/virtual-sigstore" ] && return 0
  echo "building virtual-sigstore $VIRTUAL_SIGSTORE_VERSION into $out…" >&2
  src=$(mktemp -d)
  cp tests/tools/virtual-sigstore/*.go tests/tools/virtual-sigstore/go.mod "$src/"
  mkdir -p "$out"
  (cd "$src" && go mod tidy && go build -trimpath -o "$out/virtual-sigstore.tmp" .) &&
    mv "$out/virtual-sigstore.tmp" "$out/virtual-sigstore"
  rm -rf "$src"
}

tools=("$@")
[ ${#tools[@]} -eq 0 ] && tools=(referrers-registry cosign virtual-sigstore)
for t in "${tools[@]}"; do
  case "$t" in
    cosign) build_cosign && echo "cosign=$cache/cosign/$COSIGN_VERSION/cosign" ;;
    referrers-registry) build_referrers_registry &&
      echo "referrers-registry=$cache/referrers-registry/$REFERRERS_VERSION/referrers-registry" ;;
    virtual-sigstore) build_virtual_sigstore &&
      echo "virtual-sigstore=$cache/virtual-sigstore/$VIRTUAL_SIGSTORE_VERSION/virtual-sigstore" ;;
    *) echo "unknown tool: $t" >&2; exit 2 ;;
  esac
done
