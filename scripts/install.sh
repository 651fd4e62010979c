#!/usr/bin/env bash
# Install ferry's four binaries from this clone: `cargo install --locked --path bins/<tool>` for
# ferry-registry, ferry-detect, ferry-bump and ferry-deploy, then say where they went.
#   scripts/install.sh                 # into $CARGO_HOME/bin (default ~/.cargo/bin)
#   scripts/install.sh --root DIR      # into DIR/bin
# Any other arguments go to every `cargo install` (e.g. --debug for a quick unoptimized build).
# Needs Rust (rustup.rs) and, on Debian, `scripts/install-deps.sh` (pkg-config, libssl-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null 2>&1 || {
  echo "install.sh: cargo not found: install Rust first (https://rustup.rs)" >&2
  exit 1
}
root="${CARGO_HOME:-$HOME/.cargo}"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --root) root="${args[$((i + 1))]:?--root needs a directory}" ;;
    --root=*) root="${args[$i]#--root=}" ;;
  esac
done
tools=(ferry-registry ferry-detect ferry-bump ferry-deploy)
for tool in "${tools[@]}"; do
  echo "==> cargo install --locked --path bins/$tool $*" >&2
  cargo install --locked --path "bins/$tool" "$@"
done
echo
echo "installed into $root/bin:"
for tool in "${tools[@]}"; do
  echo "  $root/bin/$tool"
done
case ":$PATH:" in
  *":$root/bin:"*) ;;
  *) echo "note: $root/bin is not on your PATH; add it: export PATH=\"$root/bin:\$PATH\"" ;;
esac
