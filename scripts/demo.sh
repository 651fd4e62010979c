#!/usr/bin/env bash
# Quick start: build ferry, start a real registry on 127.0.0.1, push a multi-arch image to it and
# query it with ferry-registry. Works offline once the Debian packages and crates are present.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build -q --workspace --bins
cargo build -q -p ferry-tests --example push-demo-image
bin=target/debug

work=$(mktemp -d)
registry_pid=""
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A throw-away registry on a random loopback port.
cat >"$work/config.yml" <<YAML
version: 0.1
log: {level: info, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/data}, delete: {enabled: true}}
http: {addr: "127.0.0.1:0"}
YAML
docker-registry serve "$work/config.yml" 2>"$work/registry.log" &
registry_pid=$!
for _ in $(seq 1 100); do
  addr=$(grep -o 'listening on [0-9.:]*' "$work/registry.log" | head -1 | cut -d' ' -f3 || true)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "${addr:-}" ] || { echo "registry did not start" >&2; cat "$work/registry.log" >&2; exit 3; }
echo "# registry listening on $addr"

target/debug/examples/push-demo-image "$addr" acme/etl:1.0 >/dev/null
image="$addr/acme/etl:1.0"
run() { echo; echo "\$ ferry-registry $*"; "$bin/ferry-registry" "$@"; }
run parse python:3.12-slim "$image"
run digest "$image" --plain-http "$addr"
run digest "$image" --platform linux/arm64 --plain-http "$addr"
run inspect "$image" --plain-http "$addr"
run verify "$image" --platforms linux/amd64,linux/arm64 --plain-http "$addr"
run tags "$addr/acme/etl" --json --plain-http "$addr"
echo
echo "\$ ferry-registry verify $image --platforms linux/amd64,linux/arm/v7   # exit 1: arm/v7 missing"
"$bin/ferry-registry" verify "$image" --platforms linux/amd64,linux/arm/v7 --plain-http "$addr" || echo "(exit $?)"
