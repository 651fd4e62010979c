#!/usr/bin/env bash
# Quick start: build ferry, then show what it does, section by section, each command echoed
# before its output: ferry-detect on this repository and on a sample monorepo, ferry-bump on that
# monorepo, ferry-registry against a real registry started on 127.0.0.1 with a multi-arch
# image pushed to it, and ferry-deploy moving an opted-in workload on the local Kubernetes
# control plane (scripts/testenv.sh) when its binaries are built — otherwise it says how to get
# them and ends there. Works offline once the Debian packages and crates are present; it never
# builds the control plane itself (that needs Go and the Go module proxy, 10-20 minutes once).
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
bin=${CARGO_TARGET_DIR:-$PWD/target}/debug

section "ferry-detect on the repository you stand in ($(pwd))"
say "The in-repo images and the order they build in, as a Mermaid graph:"
run "$bin/ferry-detect" --repo . graph --format mermaid
say "What HEAD must rebuild compared with its parent, and why:"
run "$bin/ferry-detect" --repo . changed

work=$(mktemp -d)
registry_pid=""
testenv_dir=""
cleanup() {
  [ -n "$testenv_dir" ] && scripts/testenv.sh down "$testenv_dir" || true
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

section "ferry-deploy: an opted-in workload moves to a new image"
# The control plane's binaries (kube-apiserver, kubectl, ...) are built once by
# `scripts/testenv.sh build` and cached outside the clone; the demo only uses them when present.
testenv_bin=$(scripts/testenv.sh bin)
have_testenv=1
for c in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl podsim; do
  [ -x "$testenv_bin/$c" ] || have_testenv=0
done
if [ "$have_testenv" = 1 ]; then
  say "Starting a real Kubernetes control plane on 127.0.0.1 (scripts/testenv.sh up, about 15 s)"
  say "from the binaries cached in $testenv_bin"
  say "(it rebuilds them only if the pinned versions changed since, and says so). It runs no"
  say "containers: ferry-deploy runs here, as the ServiceAccount of deploy/base."
  testenv_dir=$work/testenv
  if scripts/testenv.sh up "$testenv_dir"; then
    kubectl="$testenv_bin/kubectl"
    export KUBECONFIG=$testenv_dir/kubeconfig
    "$kubectl" apply -k deploy/base >/dev/null
    scripts/testenv.sh kubeconfig "$testenv_dir" ferry ferry-deploy >"$testenv_dir/ferry.kubeconfig"
    deploy=("$bin/ferry-deploy" --kubeconfig "$testenv_dir/ferry.kubeconfig" --plain-http "$addr")
    "$bin/examples/push-demo-image" "$addr" acme/sensor:latest >/dev/null
    say "The Deployment iot/sensor runs $addr/acme/sensor:latest and opted in with"
    say "ferry.dev/policy=digest (follow the digest of its tag):"
    "$kubectl" create namespace iot >/dev/null
    run "$kubectl" -n iot create deployment sensor --image="$addr/acme/sensor:latest" --replicas=2
    run "$kubectl" -n iot annotate deployment sensor ferry.dev/policy=digest
    run "$kubectl" -n iot rollout status deployment sensor --timeout=120s
    say "Its pods run the digest the tag names: nothing to do."
    run "${deploy[@]}" plan -n iot
    say "CI pushes a new build under the same tag:"
    run "$bin/examples/push-demo-image" --salt 2 "$addr" acme/sensor:latest
    say "The plan names the exact new reference and why (it changes nothing):"
    run "${deploy[@]}" plan -n iot
    say "One pass: patch the image pinned to the digest, watch the rollout (--wait):"
    run "${deploy[@]}" once -n iot --wait
    run "$kubectl" -n iot get deployment sensor -o 'jsonpath={.spec.template.spec.containers[0].image}{"\n"}'
    run "$kubectl" -n iot get events --field-selector involvedObject.name=sensor,reason=Redeployed
  else
    say "(the control plane did not start: its logs are under $testenv_dir/logs)"
  fi
else
  say "The local Kubernetes control plane is not built on this machine, so this part is left out."
  say "To see ferry-deploy move a workload here: scripts/testenv.sh build (Go >= 1.26 and the Go"
  say "module proxy; 10-20 minutes once, cached in ${testenv_bin%/bin}), then run this demo again,"
  say "or follow docs/quickstart-cluster.md (the local track: a redeploy, a git commit, a rollback)."
fi

section "What you saw, and where to go next"
cat <<TEXT
- ferry-detect: which images a push must rebuild (only what their build reads), in dependency
  waves — docs/ferry-detect.md; CI wiring (GitHub Actions, GitLab, Argo, Airflow) — docs/ci.md
- ferry-bump: base-image updates across every Dockerfile, pinned and committed — docs/ferry-bump.md
- ferry-registry: digests, platforms, tags, waiting and promotion for CI and Airflow —
  docs/ferry-registry.md, docs/soak.md; the JSON contract — docs/output.md
- ferry-deploy: redeploys the workloads that opted in, in a cluster — step by step, on your
  cluster or on this machine: docs/quickstart-cluster.md; docs/ferry-deploy.md, docs/argocd.md,
  manifests in deploy/
- Install the binaries: scripts/install.sh (README, Install); run every test: scripts/test.sh;
  how it is built: docs/architecture.md
TEXT
