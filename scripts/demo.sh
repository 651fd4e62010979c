#!/usr/bin/env bash
# Quick start: build ferry, then show what it does, section by section, each command echoed
# before its output: ferry-detect on this repository and on a sample monorepo, ferry-bump on that
# monorepo, and ferry-registry against a real registry started on 127.0.0.1 with a multi-arch
# image pushed to it. Works offline once the Debian packages and crates are present.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  bold=$'\e[1m'; dim=$'\e[2m'; reset=$'\e[0m'
else
  bold=""; dim=""; reset=""
fi
step=0
section() { step=$((step + 1)); printf '\n%s== %d. %s ==%s\n' "$bold" "$step" "$*" "$reset"; }
say() { printf '%s%s%s\n' "$dim" "$*" "$reset"; }
# Echo a command (with the ferry binaries by their short names), then run it; a non-zero exit
# is shown, not fatal: some commands answer "no" with exit 1 on purpose.
run() {
  local shown=("$@")
  shown[0]=$(basename "$1")
  printf '\n%s$ %s%s\n' "$bold" "${shown[*]}" "$reset"
  local code=0
  "$@" || code=$?
  [ "$code" = 0 ] || say "(exit $code)"
}

section "Building ferry (cargo build --workspace --bins; the first build takes a few minutes)"
scripts/install-deps.sh
cargo build --workspace --bins
cargo build -p ferry-tests --example push-demo-image
bin=$PWD/target/debug

section "ferry-detect on the repository you stand in ($(pwd))"
say "The in-repo images and the order they build in, as a Mermaid graph:"
run "$bin/ferry-detect" --repo . graph --format mermaid
say "What HEAD must rebuild compared with its parent, and why:"
run "$bin/ferry-detect" --repo . changed

work=$(mktemp -d)
registry_pid=""
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

section "ferry-detect on a sample monorepo: a README change, then a base image change"
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
say "Sample monorepo in $demo: base/python, and etl/weather + etl/prices built FROM it."
echo "# notes" >>"$demo/etl/weather/README.md"; git -C "$demo" commit -qam "docs only"
say "Commit 2 changes only etl/weather/README.md, which no COPY reads:"
run "$bin/ferry-detect" --repo "$demo" changed
echo requests >>"$demo/base/python/requirements.txt"; git -C "$demo" commit -qam "base image dependency"
say "Commit 3 changes the in-repo base image: it and both images built on it rebuild, in waves:"
run "$bin/ferry-detect" --repo "$demo" changed

section "ferry-bump: one base image, every Dockerfile, byte-exact"
run "$bin/ferry-bump" --repo "$demo" list
run "$bin/ferry-bump" --repo "$demo" set python:3.13-slim --dry-run

section "ferry-registry against a real registry on 127.0.0.1"
. scripts/lib/registry.sh
start_registry "$work"
registry_pid=$REGISTRY_PID
addr=$REGISTRY_ADDR
say "A throw-away registry listens on $addr; pushing a two-platform image acme/etl:1.0 to it."
"$bin/examples/push-demo-image" "$addr" acme/etl:1.0 >/dev/null
image="$addr/acme/etl:1.0"
run "$bin/ferry-registry" parse python:3.12-slim "$image"
run "$bin/ferry-registry" digest "$image" --plain-http "$addr"
run "$bin/ferry-registry" digest "$image" --platform linux/arm64 --plain-http "$addr"
run "$bin/ferry-registry" inspect "$image" --plain-http "$addr"
run "$bin/ferry-registry" verify "$image" --platforms linux/amd64,linux/arm64 --plain-http "$addr"
run "$bin/ferry-registry" tags "$addr/acme/etl" --json --plain-http "$addr"
say "A platform the image lacks is a negative answer (exit 1), named:"
run "$bin/ferry-registry" verify "$image" --platforms linux/amd64,linux/arm/v7 --plain-http "$addr"
say "An unreachable registry is an operational error (exit 3) with its cause:"
run "$bin/ferry-registry" digest registry.invalid/acme/etl:1.0 --timeout 5s

section "What you saw, and where to go next"
cat <<TEXT
- ferry-detect: which images a push must rebuild (only what their build reads), in dependency
  waves — docs/ferry-detect.md; CI wiring (GitHub Actions, GitLab, Argo, Airflow) — docs/ci.md
- ferry-bump: base-image updates across every Dockerfile, pinned and committed — docs/ferry-bump.md
- ferry-registry: digests, platforms, tags, waiting and promotion for CI and Airflow —
  docs/ferry-registry.md, docs/soak.md; the JSON contract — docs/output.md
- ferry-deploy: redeploys the workloads that opted in, in a cluster — docs/ferry-deploy.md,
  docs/argocd.md, manifests in deploy/base
- Install the binaries: scripts/install.sh (README, Install); run every test: scripts/test.sh;
  how it is built: docs/architecture.md
TEXT
