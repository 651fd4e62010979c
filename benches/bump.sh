#!/usr/bin/env bash
# Benchmark for issue 4 (ferry-bump): 1,000 Dockerfiles rewritten by one
# `ferry-bump set python:3.12-slim` (no registry), next to the floor of a plain
# `sed -i` over the same files (which knows nothing of Dockerfile syntax). Target: < 1 s.
# Usage: benches/bump.sh [FILES] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}; runs=${2:-10}
scripts/install-deps.sh hyperfine
cargo build -q --release -p ferry-bump-cli
ferry=$PWD/target/release/ferry-bump
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
python3 - "$work/tpl" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "svc", "%04d" % i)
    os.makedirs(d)
    with open(os.path.join(d, "Dockerfile"), "w") as f:
        f.write("# syntax=docker/dockerfile:1\nARG PY=python:3.11-slim\nFROM ${PY} AS build\n"
                "COPY requirements.txt .\nRUN --mount=type=cache,target=/root/.cache pip install -r requirements.txt\n"
                "FROM python:3.11-slim\nCOPY --from=build /usr/local /usr/local\nCOPY src/ /app/\n"
                "RUN <<EOF\necho python:3.11-slim stays\nEOF\n")
PY
cp -r "$work/tpl" "$work/check"
"$ferry" --repo "$work/check" set python:3.12-slim >/dev/null
changed=$(grep -rl 'python:3.12-slim' "$work/check" | wc -l)
[ "$changed" = "$n" ] || { echo "expected $n rewritten files, got $changed" >&2; exit 1; }
grep -q 'echo python:3.11-slim stays' "$work/check/svc/0000/Dockerfile" || { echo "heredoc was rewritten" >&2; exit 1; }
echo "files: $n (each: an ARG default, a FROM, a heredoc that must stay)"
hyperfine -N --warmup 1 --runs "$runs" --export-json "$work/h.json" \
  --prepare "bash -c \"rm -rf $work/run && cp -r $work/tpl $work/run\"" \
  -n ferry-bump "$ferry --repo $work/run set python:3.12-slim" \
  -n sed-floor "bash -c \"find $work/run -name Dockerfile -print0 | xargs -0 sed -i 's/python:3.11-slim/python:3.12-slim/g'\"" >/dev/null
python3 - "$work/h.json" "$n" <<'PY'
import json, sys
m = {r["command"]: r["mean"] for r in json.load(open(sys.argv[1]))["results"]}
print(f"ferry-bump set ({sys.argv[2]} files): {m['ferry-bump']*1000:.1f} ms   (target < 1000 ms)")
print(f"sed -i floor (no parsing, also rewrites heredocs): {m['sed-floor']*1000:.1f} ms   ratio {m['ferry-bump']/m['sed-floor']:.2f}")
PY
