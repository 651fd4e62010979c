#!/usr/bin/env bash
# ferry-deploy at scale on a real control plane (scripts/testenv.sh): N opted-in Deployments
# (replicas 0) in 100 namespaces naming N/5 image references on a local CNCF registry, every
# workload pinned at its current digest (a steady cluster). For each N it measures one `plan` and
# one `once` pass of ferry-deploy running as the deploy/base ServiceAccount: wall time (median of
# RUNS warm runs, min-max), peak RSS, registry requests (the registry's access log) and API
# requests by verb (the API server's audit log, by ferry's User-Agent).
# Usage: benches/deploy-scale.sh [N...] [--runs RUNS]     (default: 1000 5000 10000, 5 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=(); runs=5
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    *) sizes+=("$1"); shift ;;
  esac
done
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 5000 10000)
scripts/install-deps.sh time
cargo build -q --release -p ferry-deploy-cli -p ferry-registry-cli
cargo build -q --release -p ferry-tests --example bench-fixture
scripts/testenv.sh build
kubectl="$(scripts/testenv.sh bin)/kubectl"
ferry=$PWD/target/release/ferry-deploy
work=$(mktemp -d)
registry_pid=""; env_dir=""
cleanup() {
  [ -n "$env_dir" ] && scripts/testenv.sh down "$env_dir"
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
. scripts/lib/registry.sh

# Median, min and max of a list of seconds.
stats() { python3 -c 'import sys,statistics as s; v=[float(x) for x in sys.argv[1:]]; print(f"{s.median(v):.2f} s (min {min(v):.2f}, max {max(v):.2f})")' "$@"; }

# API requests of replica $1 by verb, from the audit log.
verbs() {
  python3 - "$env_dir/audit.log" "$1" <<'PY'
import collections, json, sys
n = collections.Counter()
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("stage") == "ResponseComplete" and e.get("userAgent", "").endswith(f"({sys.argv[2]})"):
        n[e["verb"]] += 1
print(" ".join(f"{k}={v}" for k, v in sorted(n.items())) or "none")
PY
}

# One timed pass: prints "seconds peak_kib"; the replica identity is $1, the command the rest.
timed() {
  local id=$1; shift
  POD_NAME=$id /usr/bin/time -f '%e %M' -o "$work/time" "$ferry" --kubeconfig "$work/ferry.kubeconfig" \
    --plain-http "$addr" "$@" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; return 1; }
  cat "$work/time"
}

registry_requests() { grep -c '"\(HEAD\|GET\) /v2/' "$work/registry.log" || true; }

for n in "${sizes[@]}"; do
  refs=$((n / 5)); repos=$(( refs >= 100 ? 100 : refs )); tags=$((refs / repos))
  echo "== N=$n workloads, 100 namespaces, $((repos * tags)) image references"
  rm -rf "$work/registry-data"
  start_registry "$work" accesslog
  registry_pid=$REGISTRY_PID; addr=$REGISTRY_ADDR
  target/release/examples/bench-fixture "$addr" "$repos" "$tags" >"$work/refs.txt"
  target/release/ferry-registry digest -f "$work/refs.txt" --plain-http "$addr" |
    awk '{print $2"@"$1}' >"$work/pinned.txt"
  env_dir="$work/testenv-$n"
  scripts/testenv.sh up "$env_dir" >/dev/null
  export KUBECONFIG="$env_dir/kubeconfig"
  "$kubectl" apply -k deploy/base >/dev/null
  scripts/testenv.sh kubeconfig "$env_dir" ferry ferry-deploy >"$work/ferry.kubeconfig"
  python3 - "$work/pinned.txt" "$n" "$work/manifests" <<'PY'
import os, sys
refs = open(sys.argv[1]).read().split()
n, out = int(sys.argv[2]), sys.argv[3]
os.makedirs(out, exist_ok=True)
for ns in range(100):
    with open(f"{out}/ns{ns}.yaml", "w") as f:
        f.write(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: scale-{ns}}}\n")
        for i in range(ns, n, 100):
            f.write(f"""---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: w{i}
  namespace: scale-{ns}
  annotations: {{ferry.dev/policy: digest}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: w{i}}}}}
  template:
    metadata: {{labels: {{app: w{i}}}}}
    spec:
      containers:
      - name: app
        image: {refs[i % len(refs)]}
""")
PY
  start=$(date +%s)
  ls "$work"/manifests/*.yaml | xargs -P 4 -n 1 "$kubectl" create -f >/dev/null
  echo "created $n Deployments in $(( $(date +%s) - start )) s"

  # The floor: kubectl listing the same Deployments in pages of 500, as the same ServiceAccount.
  floor=()
  for r in $(seq "$runs"); do
    /usr/bin/time -f %e -o "$work/time" "$kubectl" --kubeconfig "$work/ferry.kubeconfig" \
      get deployments -A -o json --chunk-size=500 >/dev/null
    floor+=("$(cat "$work/time")")
  done
  echo "floor, kubectl get deployments -A -o json --chunk-size=500: $(stats "${floor[@]}")"
  for cmd in plan once; do
    before=$(registry_requests)
    read -r first_s first_kib < <(timed "scale-$cmd-first" "$cmd" --json)
    echo "$cmd, first pass: ${first_s} s, peak RSS $((first_kib / 1024)) MiB, registry requests $(( $(registry_requests) - before )) for $(wc -l <"$work/pinned.txt") references"
    echo "  API requests by verb: $(verbs "scale-$cmd-first")"
    times=(); peak=0
    for r in $(seq "$runs"); do
      read -r s kib < <(timed "scale-$cmd-$r" "$cmd" --json)
      times+=("$s"); [ "$kib" -gt "$peak" ] && peak=$kib
    done
    echo "  warm: $(stats "${times[@]}") over $runs runs, peak RSS $((peak / 1024)) MiB; median / floor median: $(python3 -c 'import sys,statistics as s; a=[float(x) for x in sys.argv[1].split()]; b=[float(x) for x in sys.argv[2].split()]; print(f"{s.median(a)/s.median(b):.2f}x")' "${times[*]}" "${floor[*]}")"
  done
  scripts/testenv.sh down "$env_dir"; env_dir=""
  kill "$registry_pid" 2>/dev/null || true; registry_pid=""
done
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $("$ferry" --version); Kubernetes $(grep K8S_VERSION= scripts/testenv/versions.env | cut -d= -f2); $(date -u +%F)"
