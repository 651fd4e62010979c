#!/usr/bin/env bash
# Benchmark for issue 2 (ferry-registry), all on 127.0.0.1:
#   1. 500 digest queries in one `ferry-registry digest -f` vs a `skopeo inspect` loop (target ≥ 50×)
#   2. the same 500 vs `curl --parallel` doing the 500 HEAD requests (target ≤ 2×)
#   3. one cold `ferry-registry digest` process vs one `curl -I` (target ≤ 1.5×)
# Prints the three ratios. Usage: benches/registry.sh [RUNS]   (needs hyperfine, skopeo)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
scripts/install-deps.sh skopeo hyperfine
cargo build -q --release -p ferry-registry-cli
cargo build -q --release -p ferry-tests --example bench-fixture
ferry=$PWD/target/release/ferry-registry

work=$(mktemp -d)
registry_pid=""
cleanup() { [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
. scripts/lib/registry.sh
start_registry "$work"
registry_pid=$REGISTRY_PID
addr=$REGISTRY_ADDR
echo "registry: $addr ($(docker-registry --version | awk '{print $3}'))"

target/release/examples/bench-fixture "$addr" 50 10 >"$work/refs.txt"
echo "references: $(wc -l <"$work/refs.txt")"
accept="application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"
: >"$work/curl.cfg"
while read -r ref; do
  repo=${ref#*/}; name=${repo%:*}; tag=${repo##*:}
  printf 'url = "http://%s/v2/%s/manifests/%s"\noutput = "/dev/null"\n' "$addr" "$name" "$tag" >>"$work/curl.cfg"
done <"$work/refs.txt"
first=$(head -1 "$work/refs.txt"); frepo=${first#*/}
first_url="http://$addr/v2/${frepo%:*}/manifests/${frepo##*:}"

# Sanity: ferry's answers equal what skopeo computes.
a=$("$ferry" digest "$first" --plain-http "$addr")
b=$(skopeo inspect --tls-verify=false --raw "docker://$first" | sha256sum | cut -d' ' -f1)
[ "$a" = "sha256:$b" ] || { echo "digest disagreement: $a vs sha256:$b" >&2; exit 1; }

cat >"$work/skopeo-loop.sh" <<SH
while read -r r; do skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://\$r" >/dev/null; done <"$work/refs.txt"
SH
hyperfine -N --warmup 1 --runs "$runs" --export-json "$work/batch.json" \
  -n ferry "$ferry digest -f $work/refs.txt --plain-http $addr" \
  -n curl-parallel "curl -s --parallel --parallel-max 50 -I -H 'Accept: $accept' -K $work/curl.cfg" >/dev/null
hyperfine --warmup 0 --runs 1 --export-json "$work/skopeo.json" -n skopeo-loop "bash $work/skopeo-loop.sh" >/dev/null
hyperfine -N --warmup 5 --runs $((runs * 5)) --export-json "$work/cold.json" \
  -n ferry-cold "$ferry digest $first --plain-http $addr" \
  -n curl-I "curl -s -I -H 'Accept: $accept' $first_url" >/dev/null

python3 - "$work" <<'PY'
import json, sys, os
w = sys.argv[1]
def means(f):
    return {r["command"]: r["mean"] for r in json.load(open(os.path.join(w, f)))["results"]}
b, s, c = means("batch.json"), means("skopeo.json"), means("cold.json")
print(f"500 digests: ferry {b['ferry']*1000:.1f} ms, curl --parallel {b['curl-parallel']*1000:.1f} ms, skopeo loop {s['skopeo-loop']*1000:.0f} ms")
print(f"cold single: ferry {c['ferry-cold']*1000:.2f} ms, curl -I {c['curl-I']*1000:.2f} ms")
print(f"ratio skopeo-loop / ferry        = {s['skopeo-loop']/b['ferry']:.1f}x   (target >= 50)")
print(f"ratio ferry / curl --parallel    = {b['ferry']/b['curl-parallel']:.2f}   (target <= 2)")
print(f"ratio ferry cold / curl -I       = {c['ferry-cold']/c['curl-I']:.2f}   (target <= 1.5)")
PY
