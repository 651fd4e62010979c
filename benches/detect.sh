#!/usr/bin/env bash
# Benchmark for issue 3 (ferry-detect): a synthetic bare monorepo (default 1,000 images,
# 300 files each ≈ 300k files), one file changed. Runs `ferry-detect changed --json` and git's
# own floor for the same answer — `git diff-tree -r --name-only base head` plus
# `git ls-tree -r --name-only head` — side by side, prints the ratio and ferry's peak memory.
# Then `--base published` on the same repository: every service has a repository (on a registry
# started on 127.0.0.1, reached through `--mirror`), each published as :latest with the revision
# annotation of the first commit; its floor adds `curl --parallel` GETting those manifests.
# Usage: benches/detect.sh [IMAGES] [FILES_PER_IMAGE] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
images=${1:-1000}; per=${2:-300}; runs=${3:-10}
scripts/install-deps.sh hyperfine time
cargo build -q --release -p ferry-detect-cli
ferry=$PWD/target/release/ferry-detect
work=$(mktemp -d)
registry_pid=""
cleanup() { [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
repo=$work/mono.git
git init -q --bare -b main "$repo"
start=$(date +%s.%N)
# Services get repositories under a name that does not resolve: --mirror sends them (and
# docker.io, for the in-repo base) to the registry on 127.0.0.1 below.
bench_registry=bench-registry.invalid
python3 benches/gen_monorepo.py "$images" "$per" "$bench_registry" | git -C "$repo" fast-import --quiet --done
echo "generated $(git -C "$repo" ls-tree -r --name-only main | wc -l) files, $images images in $(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$start" "$(date +%s.%N)") s"

# Sanity: the answer is the one changed image (svc/0042), nothing else.
"$ferry" --repo "$repo" changed --json --base main~1 --head main >"$work/out.json"
python3 - "$work/out.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
names = [i["name"] for i in r["images"]]
assert names == ["svc/0042"], names
print("answer:", names, "-", r["images"][0]["reasons"])
PY

cat >"$work/floor.sh" <<SH
git -C "$repo" diff-tree -r --name-only main~1 main >/dev/null
git -C "$repo" ls-tree -r --name-only main >/dev/null
SH
hyperfine -N --warmup 2 --runs "$runs" --export-json "$work/h.json" \
  -n ferry "$ferry --repo $repo changed --json --base main~1 --head main" \
  -n git-floor "bash $work/floor.sh" >/dev/null
rss=$(/usr/bin/time -f %M "$ferry" --repo "$repo" changed --json --base main~1 --head main 2>&1 >/dev/null | tail -1)
floor_rss=$(/usr/bin/time -f %M git -C "$repo" ls-tree -r --name-only main 2>&1 >/dev/null | tail -1)
python3 - "$work/h.json" "$rss" "$floor_rss" <<'PY'
import json, sys
m = {r["command"]: r["mean"] for r in json.load(open(sys.argv[1]))["results"]}
print(f"ferry-detect changed --json: {m['ferry']*1000:.1f} ms   git floor (diff-tree + ls-tree): {m['git-floor']*1000:.1f} ms")
print(f"ratio ferry / git floor = {m['ferry']/m['git-floor']:.2f}   (target <= 1.25, issue 23)")
print(f"peak RSS: ferry {int(sys.argv[2])/1024:.1f} MiB, git ls-tree {int(sys.argv[3])/1024:.1f} MiB")
PY

# --base published on the same repository.
. scripts/lib/registry.sh
start_registry "$work"
registry_pid=$REGISTRY_PID
addr=$REGISTRY_ADDR
published=$(git -C "$repo" rev-parse main~1)
{ echo acme/base; seq -f 'svc/%04g' 0 $((images - 1)); } >"$work/repos.txt"
xargs python3 benches/push_published.py "$addr" "$published" <"$work/repos.txt"
pub="$ferry --repo $repo changed --json --base published --head main --mirror $bench_registry=http://$addr --mirror docker.io=http://$addr"
$pub >"$work/pub.json"
python3 - "$work/pub.json" "$published" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
names = [i["name"] for i in r["images"]]
assert names == ["svc/0042"], names
assert r["images"][0]["base"] == sys.argv[2], r["images"][0]
print("published answer:", names, "-", r["images"][0]["reasons"], "from", sys.argv[2][:12])
PY
accept="application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"
: >"$work/curl.cfg"
while read -r name; do
  printf 'url = "http://%s/v2/%s/manifests/latest"\noutput = "/dev/null"\n' "$addr" "$name" >>"$work/curl.cfg"
done <"$work/repos.txt"
cat >"$work/pub-floor.sh" <<SH
bash $work/floor.sh
curl -s --parallel --parallel-max 32 -H "Accept: $accept" --config $work/curl.cfg
SH
hyperfine -N --warmup 2 --runs "$runs" --export-json "$work/p.json" \
  -n ferry-published "$pub" \
  -n floor "bash $work/pub-floor.sh" >/dev/null
python3 - "$work/p.json" "$(wc -l <"$work/repos.txt")" <<'PY'
import json, sys
m = {r["command"]: r["mean"] for r in json.load(open(sys.argv[1]))["results"]}
print(f"ferry-detect changed --json --base published ({sys.argv[2]} registry queries): {m['ferry-published']*1000:.1f} ms   floor (git floor + curl --parallel GETs): {m['floor']*1000:.1f} ms   ratio {m['ferry-published']/m['floor']:.2f}")
PY
