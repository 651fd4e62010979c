#!/usr/bin/env bash
# What signature verification costs ferry-deploy when new digests appear, on a real control
# plane (scripts/testenv.sh) and a local CNCF registry (no Referrers API, so cosign keeps its
# signatures under tags): N opted-in Deployments (replicas 0), each on its own image reference,
# pinned at a digest; then every tag moves to a new digest, signed by cosign (a keyed signature,
# --tlog-upload=false). It runs one `ferry-deploy plan` without verification and one with
# `--signature-policy team=team.yaml --require-signed-by team` (keys: [team.pub]), each a fresh process (nothing
# cached), and prints for both: wall time, registry requests by kind (the registry's access
# log) and the decisions; then the difference per new digest. The floor:
# `cosign verify` of the same N digests in one invocation, timed, its requests counted the same
# way. Usage: benches/deploy-signed.sh [N] [--runs RUNS]     (default: 200, 3 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
n=200; runs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    *) n=$1; shift ;;
  esac
done
scripts/install-deps.sh time
cargo build -q --release -p ferry-deploy-cli -p ferry-registry-cli
cargo build -q --release -p ferry-tests --example bench-fixture
scripts/testenv.sh build
cosign=$(bash scripts/test-tools.sh | sed -n 's/^cosign=//p')
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

stats() { python3 -c 'import sys,statistics as s; v=[float(x) for x in sys.argv[1:]]; print(f"{s.median(v):.2f} s (min {min(v):.2f}, max {max(v):.2f})")' "$@"; }
log_lines() { wc -l <"$work/registry.log"; }

# Registry requests logged after line $1, by kind.
kinds() {
  tail -n +"$(( $1 + 1 ))" "$work/registry.log" | python3 -c '
import collections, re, sys
n = collections.Counter()
for line in sys.stdin:
    m = re.search(r"\"(HEAD|GET|PUT|POST) (/v2/[^ ]*) HTTP", line)
    if not m:
        continue
    verb, path = m.groups()
    if "/referrers/" in path:
        k = "referrers API"
    elif re.search(r"/manifests/sha256-[0-9a-f]{64}(\.sig|\.att)?$", path):
        k = "signature tags (referrers tag schema, cosign .sig)"
    elif "/manifests/sha256:" in path:
        k = f"{verb} manifests by digest"
    elif "/manifests/" in path:
        k = f"{verb} manifests by tag"
    elif "/blobs/" in path:
        k = f"{verb} blobs"
    else:
        k = f"{verb} other"
    n[k] += 1
n["total"] = sum(n.values())
print("; ".join(f"{k} {v}" for k, v in sorted(n.items())))
'
}
total() { kinds "$1" | grep -o 'total [0-9]*' | cut -d' ' -f2; }

start_registry "$work" accesslog
registry_pid=$REGISTRY_PID; addr=$REGISTRY_ADDR
target/release/examples/bench-fixture "$addr" "$n" 1 >"$work/refs.txt"
target/release/ferry-registry digest -f "$work/refs.txt" --plain-http "$addr" |
  awk '{print $2"@"$1}' >"$work/pinned.txt"
env_dir="$work/testenv"
scripts/testenv.sh up "$env_dir" >/dev/null
export KUBECONFIG="$env_dir/kubeconfig"
"$kubectl" apply -k deploy/base >/dev/null
scripts/testenv.sh kubeconfig "$env_dir" ferry ferry-deploy >"$work/ferry.kubeconfig"
python3 - "$work/pinned.txt" "$work/manifests.yaml" <<'PY'
import sys
refs = open(sys.argv[1]).read().split()
with open(sys.argv[2], "w") as f:
    f.write("apiVersion: v1\nkind: Namespace\nmetadata: {name: signed}\n")
    for i, ref in enumerate(refs):
        f.write(f"""---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: w{i}
  namespace: signed
  annotations: {{ferry.dev/policy: digest}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: w{i}}}}}
  template:
    metadata: {{labels: {{app: w{i}}}}}
    spec:
      containers:
      - name: app
        image: {ref}
""")
PY
"$kubectl" create -f "$work/manifests.yaml" >/dev/null
# Every tag moves to a new digest, which cosign signs.
target/release/examples/bench-fixture "$addr" "$n" 1 new >/dev/null
target/release/ferry-registry digest -f "$work/refs.txt" --plain-http "$addr" |
  awk '{print $2"@"$1}' | sed 's/:t0@/@/' >"$work/new.txt"
(cd "$work" && COSIGN_PASSWORD=bench "$cosign" generate-key-pair --output-key-prefix team >/dev/null 2>&1)
printf 'keys:\n  - team.pub\n' >"$work/team.yaml"
start=$(date +%s)
xargs -n 50 env COSIGN_PASSWORD=bench "$cosign" sign --key "$work/team.key" --use-signing-config=false \
  --tlog-upload=false --allow-http-registry --new-bundle-format=false --yes <"$work/new.txt" >/dev/null 2>"$work/sign.err" ||
  { cat "$work/sign.err" >&2; exit 1; }
echo "== N=$n workloads, each with a new digest signed by cosign (simple signing, .sig tag) in $(( $(date +%s) - start )) s"

# The floor: cosign verifying the same digests, one invocation.
floor=(); mark=$(log_lines)
for r in $(seq "$runs"); do
  [ "$r" = 1 ] && mark=$(log_lines)
  /usr/bin/time -f %e -o "$work/time" xargs "$cosign" verify --key "$work/team.pub" --insecure-ignore-tlog \
    --allow-http-registry <"$work/new.txt" >/dev/null 2>"$work/verify.err" || { cat "$work/verify.err" >&2; exit 1; }
  floor+=("$(cat "$work/time")")
  [ "$r" = 1 ] && { floor_kinds=$(kinds "$mark"); floor_total=$(total "$mark"); }
done
echo "floor, cosign verify --key of the $n digests: $(stats "${floor[@]}") over $runs runs; registry requests: $floor_kinds"

declare -A totals
for mode in without with; do
  args=(plan --json)
  [ $mode = with ] && args=(--signature-policy "team=$work/team.yaml" --require-signed-by team plan --json)
  times=()
  for r in $(seq "$runs"); do
    mark=$(log_lines)
    POD_NAME="signed-$mode-$r" /usr/bin/time -f %e -o "$work/time" "$ferry" --kubeconfig "$work/ferry.kubeconfig" \
      --plain-http "$addr" "${args[@]}" >"$work/plan.json" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
    times+=("$(cat "$work/time")")
    if [ "$r" = 1 ]; then
      totals[$mode]=$(total "$mark")
      echo "plan $mode verification: registry requests $(kinds "$mark")"
      python3 - "$work/plan.json" "$mode" <<'PY'
import collections, json, sys
actions = collections.Counter(d["action"] for d in json.load(open(sys.argv[1])))
print(f"  decisions: {dict(sorted(actions.items()))}")
PY
    fi
  done
  echo "  time: $(stats "${times[@]}") over $runs runs"
done
python3 -c 'import sys; a,b,f,n=map(int,sys.argv[1:]); print(f"verification: {b-a} more registry requests for {n} new digests = {(b-a)/n:.2f} per new digest (cosign verify: {f/n:.2f} per digest)")' \
  "${totals[without]}" "${totals[with]}" "$floor_total" "$n"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r); load: $(uptime | sed 's/.*load average: //'); $("$ferry" --version); cosign v3.1.3; $(docker-registry --version 2>/dev/null | head -1); Kubernetes $(grep K8S_VERSION= scripts/testenv/versions.env | cut -d= -f2); $(date -u +%F)"
