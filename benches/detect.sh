#!/usr/bin/env bash
# Benchmark for issue 3 (ferry-detect): a synthetic bare monorepo (default 1,000 images,
# 300 files each ≈ 300k files), one file changed. Runs `ferry-detect changed --json` and git's
# own floor for the same answer — `git diff-tree -r --name-only base head` plus
# `git ls-tree -r --name-only head` — side by side, prints the ratio and ferry's peak memory.
# Usage: benches/detect.sh [IMAGES] [FILES_PER_IMAGE] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
images=${1:-1000}; per=${2:-300}; runs=${3:-10}
scripts/install-deps.sh hyperfine time
cargo build -q --release -p ferry-detect-cli
ferry=$PWD/target/release/ferry-detect
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
repo=$work/mono.git
git init -q --bare -b main "$repo"
start=$(date +%s.%N)
python3 benches/gen_monorepo.py "$images" "$per" | git -C "$repo" fast-import --quiet --done
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
print(f"ratio ferry / git floor = {m['ferry']/m['git-floor']:.2f}   (target <= 2)")
print(f"peak RSS: ferry {int(sys.argv[2])/1024:.1f} MiB, git ls-tree {int(sys.argv[3])/1024:.1f} MiB")
PY
