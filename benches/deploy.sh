#!/usr/bin/env bash
# Benchmark for issue 5 (ferry-deploy): 1,000 opted-in workloads sharing 200 image references
# (all already at their digest) on a fake Kubernetes API server, images on a real registry,
# everything on 127.0.0.1. One `ferry-deploy plan` cycle must make exactly 200 registry
# requests (counted in the registry's own access log) with peak RSS <= 64 MiB; the time per
# cycle is printed. Then benches/deploy-webhook.sh measures push-to-patch latency through a
# registry webhook, next to the polling interval (issue 14).
# Usage: benches/deploy.sh [WORKLOADS] [REPOS] [TAGS] [RUNS] [PUSHES]
set -euo pipefail
cd "$(dirname "$0")/.."
workloads=${1:-1000}; repos=${2:-20}; tags=${3:-10}; runs=${4:-10}; pushes=${5:-5}
scripts/install-deps.sh hyperfine time
cargo build -q --release -p ferry-deploy-cli -p ferry-registry-cli
cargo build -q --release -p ferry-tests --example bench-fixture --example fake-kube --example push-demo-image
ferry=$PWD/target/release/ferry-deploy
work=$(mktemp -d)
registry_pid=""; kube_pid=""
cleanup() {
  [ -n "$kube_pid" ] && kill "$kube_pid" 2>/dev/null || true
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
. scripts/lib/registry.sh
start_registry "$work" accesslog
registry_pid=$REGISTRY_PID
addr=$REGISTRY_ADDR
target/release/examples/bench-fixture "$addr" "$repos" "$tags" >"$work/refs.txt"
# Pin every reference at its current digest: a steady cluster, nothing to roll.
"$PWD/target/release/ferry-registry" digest -f "$work/refs.txt" --plain-http "$addr" | awk '{print $2"@"$1}' >"$work/pinned.txt"
echo "references: $(wc -l <"$work/pinned.txt"), workloads: $workloads"
mkfifo "$work/kube.in"
target/release/examples/fake-kube "$work/pinned.txt" "$workloads" <"$work/kube.in" >"$work/kube.url" &
kube_pid=$!
exec 9>"$work/kube.in"
for _ in $(seq 1 100); do [ -s "$work/kube.url" ] && break; sleep 0.1; done
cat >"$work/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "$(cat "$work/kube.url")"}}]
contexts: [{name: fake, context: {cluster: fake, user: fake}}]
current-context: fake
users: [{name: fake, user: {}}]
YAML
before=$(grep -c '"HEAD /v2/\|"GET /v2/' "$work/registry.log" || true)
heads_before=$(grep -c '"HEAD /v2/' "$work/registry.log" || true)
"$ferry" --kubeconfig "$work/kubeconfig" --plain-http "$addr" plan --json >"$work/plan.json"
after=$(grep -c '"HEAD /v2/\|"GET /v2/' "$work/registry.log" || true)
heads=$(grep -c '"HEAD /v2/' "$work/registry.log" || true)
python3 - "$work/plan.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
actions = {}
for x in d:
    actions[x["action"]] = actions.get(x["action"], 0) + 1
print("decisions:", actions)
PY
echo "registry requests in one cycle: $((after - before)), of which HEAD: $((heads - heads_before)) (target: exactly $(wc -l <"$work/pinned.txt"), HEAD only)"
rss=$(/usr/bin/time -f %M "$ferry" --kubeconfig "$work/kubeconfig" --plain-http "$addr" plan --json 2>&1 >/dev/null | tail -1)
echo "peak RSS of one cycle: $(python3 -c "print(round($rss/1024, 1))") MiB (target <= 64 MiB)"
hyperfine -N --warmup 1 --runs "$runs" --export-json "$work/h.json" \
  "$ferry --kubeconfig $work/kubeconfig --plain-http $addr plan --json" >/dev/null
python3 -c "import json; m=json.load(open('$work/h.json'))['results'][0]; print(f'time per cycle (plan, whole process): {m[\"mean\"]*1000:.1f} ms ± {m[\"stddev\"]*1000:.1f}')"
echo
benches/deploy-webhook.sh "$pushes"
