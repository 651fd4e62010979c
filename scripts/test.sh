#!/usr/bin/env bash
# The whole test suite: installs what the tests need, checks formatting and lints, builds the
# binaries, runs every test (nextest when installed, else cargo test) and the doc tests, validates
# the Kubernetes manifests, and runs the Airflow stage.
# Tests start their own services on 127.0.0.1 (a real docker-registry per test, wiremock fakes)
# and stop them when they finish; nothing here needs the internet beyond package registries and
# the Go module proxy. The real-cluster tests (tests/tests/real_*.rs) share one control plane:
# scripts/testenv.sh builds it from the pinned Kubernetes sources (cached in
# ~/.cache/ferry/testenv; 10-20 minutes the first time), this script starts it before the tests
# and stops it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
# Each stage says how long it took and how much disk is left, so a CI log shows where the time
# and the space go.
stage() {
  local name=$1 t=$SECONDS
  shift
  "$@"
  echo "== stage '$name': $((SECONDS - t)) s (total $((SECONDS - started)) s;" \
    "$(df -h --output=avail . | tail -1 | tr -d ' ') free on disk)" >&2
}
tests() {
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
  else
    cargo test --workspace --locked --no-fail-fast
  fi
}
stage install-deps scripts/install-deps.sh
# cosign and a Referrers API registry for the signature tests, from pinned Go sources (cached in
# ~/.cache/ferry; cosign takes about 4 minutes to build the first time).
stage test-tools scripts/test-tools.sh
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
stage fmt cargo fmt --all -- --check
stage clippy cargo clippy --workspace --all-targets --locked -- -D warnings
stage build cargo build --workspace --bins --locked
stage doc-tests cargo test --workspace --doc --locked
testenv_dir=$(mktemp -d /tmp/ferry-testenv.XXXXXX)
trap 'scripts/testenv.sh down "$testenv_dir"; rm -rf "$testenv_dir"' EXIT
# The real control plane (built from the pinned sources the first time).
stage control-plane scripts/testenv.sh up "$testenv_dir"
export FERRY_TESTENV_DIR="$testenv_dir"
stage tests tests
# Every manifest under deploy/ against the Kubernetes 1.33 schemas (kubernetes-validate, offline).
stage manifests bash scripts/validate-manifests.sh
# The Airflow stage: a real `airflow dags test` of docs/examples/airflow/ferry_etl_bash.py.
stage airflow bash scripts/test-airflow.sh
