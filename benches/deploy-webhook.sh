#!/usr/bin/env bash
# Benchmark for issue 14 (ferry-deploy webhooks): push-to-patch latency through a registry
# webhook, next to the polling interval. All on 127.0.0.1: a real CNCF registry notifies
# `ferry-deploy run --webhook-addr` of every push (`--interval 1h`, so only the webhook can start
# a pass); a fake Kubernetes API (tests/examples/fake-kube.rs) serves one opted-in Deployment
# running acme/app:latest pinned to its digest and logs the moment each PATCH arrives. Each of
# PUSHES pushes of a new acme/app:latest is timed from the push finishing (the pushing process
# has exited) to the PATCH that sets the pushed digest arriving.
# Usage: benches/deploy-webhook.sh [PUSHES]
set -euo pipefail
cd "$(dirname "$0")/.."
pushes=${1:-5}
# The same builds as benches/deploy.sh (the same package set, so nothing is built twice).
cargo build -q --release -p ferry-deploy-cli -p ferry-registry-cli
cargo build -q --release -p ferry-tests --example bench-fixture --example fake-kube --example push-demo-image
ferry=$PWD/target/release/ferry-deploy
push=$PWD/target/release/examples/push-demo-image
work=$(mktemp -d)
registry_pid=""; kube_pid=""; ferry_pid=""
cleanup() {
  for pid in $ferry_pid $kube_pid $registry_pid; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# wait_until WHAT COMMAND…: run COMMAND every 10 ms until it succeeds; give up after 30 s.
wait_until() {
  local what=$1; shift
  for _ in $(seq 1 3000); do "$@" && return 0; sleep 0.01; done
  echo "timed out waiting for $what; ferry-deploy said:" >&2
  cat "$work/ferry.log" >&2
  exit 1
}
passes() { curl -fs "http://$metrics_addr/metrics" | awk '$1 == "ferry_passes_total" {print $2}'; }
passes_above() { [ "$(passes)" -gt "$1" ]; }
patches_at_least() { [ "$(wc -l <"$work/patches.log")" -ge "$1" ]; }

webhook_addr=127.0.0.1:$(free_port)
metrics_addr=127.0.0.1:$(free_port)
secret=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$secret" >"$work/secret"

# The registry, notifying ferry's receiver with the shared secret (docs/webhooks.md).
. scripts/lib/registry.sh
start_registry "$work" "" "http://$webhook_addr/webhooks/distribution" "Bearer $secret"
registry_pid=$REGISTRY_PID
addr=$REGISTRY_ADDR

# The cluster: one Deployment running acme/app:latest at the digest it has now.
"$push" --salt 0 "$addr" acme/app:latest | awk '{print $2"@"$1}' >"$work/running.txt"
mkfifo "$work/kube.in"
target/release/examples/fake-kube "$work/running.txt" 1 "$work/patches.log" \
  <"$work/kube.in" >"$work/kube.url" &
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

DOCKER_CONFIG=$work/no-docker-config "$ferry" --kubeconfig "$work/kubeconfig" --plain-http "$addr" \
  run --interval 1h --no-leader-election --metrics-addr "$metrics_addr" \
  --webhook-addr "$webhook_addr" --webhook-secret-file "$work/secret" >"$work/ferry.log" 2>&1 &
ferry_pid=$!
wait_until "ferry-deploy's first pass" curl -fs -o /dev/null "http://$metrics_addr/readyz"

for i in $(seq 1 "$pushes"); do
  before=$(passes)
  digest=$("$push" --salt "$i" "$addr" acme/app:latest | cut -d' ' -f1)
  pushed_at=$(date +%s.%N)
  wait_until "the PATCH after push $i" patches_at_least "$i"
  line=$(sed -n "${i}p" "$work/patches.log")
  if [[ $line != *"@$digest" ]]; then
    echo "PATCH $i does not set the pushed digest $digest: $line" >&2
    exit 1
  fi
  echo "$pushed_at ${line%% *}" >>"$work/times.txt"
  # The pass ends after the health gate; the next push starts from a quiet controller.
  wait_until "the end of the pass after push $i" passes_above "$before"
done

python3 - "$work/times.txt" <<'PY'
import statistics, sys
ms = [(float(patched) - float(pushed)) * 1000 for pushed, patched in (l.split() for l in open(sys.argv[1]))]
med = statistics.median(ms)
print(f"push-to-patch via the distribution webhook ({len(ms)} pushes): "
      f"min {min(ms):.0f} ms, median {med:.0f} ms, max {max(ms):.0f} ms")
print("  each:", ", ".join(f"{x:.0f}" for x in ms), "ms")
print("polling instead (--interval 5m, the default; ±10 % jitter): up to 330 s, 150 s on average")
print(f"ratio, average poll wait / webhook median: {150_000 / med:.0f}×; "
      f"worst poll wait / webhook max: {330_000 / max(ms):.0f}×")
PY
