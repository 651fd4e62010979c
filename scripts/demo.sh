#!/usr/bin/env bash
# Quick start: build ferry, start a real registry on 127.0.0.1, push a multi-arch image to it and
# query it with ferry-registry. Works offline once the Debian packages and crates are present.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build -q --workspace --bins
cargo build -q -p ferry-tests --example push-demo-image
bin=target/debug

echo "# ferry-detect on the repository you stand in ($(pwd))"
"$bin/ferry-detect" --repo . graph --format mermaid || true
"$bin/ferry-detect" --repo . changed || true

work=$(mktemp -d)
registry_pid=""
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A sample monorepo: an in-repo base image and two ETL images built on it.
demo=$work/monorepo
mkdir -p "$demo"
git -C "$demo" init -q -b main
git -C "$demo" config user.email demo@example.invalid; git -C "$demo" config user.name demo
mkdir -p "$demo/base/python" "$demo/etl/weather/src" "$demo/etl/prices"
printf '[images."base/python"]\nrepository = "docker.io/acme/python-base"\n' >"$demo/ferry.toml"
printf 'FROM python:3.12-slim\nCOPY requirements.txt /req.txt\nRUN pip install -r /req.txt\n' >"$demo/base/python/Dockerfile"
echo flask >"$demo/base/python/requirements.txt"
printf 'ARG BASE=docker.io/acme/python-base:1\nFROM $BASE\nCOPY src/ /app/\n' >"$demo/etl/weather/Dockerfile"
echo "print('weather')" >"$demo/etl/weather/src/main.py"; echo notes >"$demo/etl/weather/README.md"
printf 'FROM acme/python-base:1\nCOPY . /app\n' >"$demo/etl/prices/Dockerfile"; printf '*.md\n' >"$demo/etl/prices/.dockerignore"
echo "print('prices')" >"$demo/etl/prices/main.py"
git -C "$demo" add -A; git -C "$demo" commit -qm initial
echo "# notes" >>"$demo/etl/weather/README.md"; git -C "$demo" commit -qam "docs only"
echo; echo "\$ ferry-detect changed    # a README that no COPY reads"
"$bin/ferry-detect" --repo "$demo" changed
echo requests >>"$demo/base/python/requirements.txt"; git -C "$demo" commit -qam "base image dependency"
echo; echo "\$ ferry-detect changed    # the in-repo base image changed"
"$bin/ferry-detect" --repo "$demo" changed
echo

# A throw-away registry on a random loopback port.
. scripts/lib/registry.sh
start_registry "$work"
registry_pid=$REGISTRY_PID
addr=$REGISTRY_ADDR
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
