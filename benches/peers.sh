#!/usr/bin/env bash
# Benchmark for issue 23: ferry beside the tools people use instead — crane, regctl, skopeo and
# Argo CD Image Updater — in one run, on one CNCF registry on 127.0.0.1 and the same images.
# The Go peers are built from the Go module proxy at the versions pinned below, into a cache
# outside the clone ($FERRY_PEERS_CACHE, default ~/.cache/ferry/peers/<tool>-<version>/); a
# peer that does not build is reported with its error and its rows say so.
# Usage: benches/peers.sh [RUNS]   (RUNS per hyperfine figure, default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}

# The peers, pinned here and nowhere else: name, Go module, package, versions (the first that
# builds is used). Argo CD Image Updater v1.0.0 requires its registry-scanner module at v1.0.0,
# which the module proxy does not serve; v0.12.2 is the newest release before that split that
# the proxy serves (its newest-build strategy is still called `latest` there).
PEERS=(
  "crane github.com/google/go-containerregistry github.com/google/go-containerregistry/cmd/crane v0.22.1"
  "regctl github.com/regclient/regclient github.com/regclient/regclient/cmd/regctl v0.11.7"
  "argocd-image-updater github.com/argoproj-labs/argocd-image-updater github.com/argoproj-labs/argocd-image-updater/cmd v1.0.0,v0.12.2"
)
cache=${FERRY_PEERS_CACHE:-$HOME/.cache/ferry/peers}

work=$(mktemp -d)
registry_pid=""; kube_pids=()
cleanup() {
  for p in "${kube_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# build_peer NAME MODULE PACKAGE VERSION: the binary in the cache, built when missing, in a
# throw-away copy of the module (so its own go.mod, replace directives included, applies).
# A replace that points into the module's own tree (`=> ./sub/`) names a nested module the
# module zip leaves out: it is dropped, and the required version comes from the proxy.
# Prints the binary's path, or returns 1 with the error in $work/build-NAME-VERSION.log.
build_peer() {
  local name=$1 module=$2 package=$3 version=$4
  local out="$cache/$name-$version" log="$work/build-$name-$version.log"
  [ -x "$out/$name" ] && { echo "$out/$name"; return 0; }
  (build_peer_in "$work/src-$name-$version" "$out/$name" "$module" "$package" "$version") >"$log" 2>&1 \
    || { rm -rf "$work/src-$name-$version"; return 1; }
  rm -rf "$work/src-$name-$version"
  echo "$out/$name"
}
# (In a subshell whose status is tested, `set -e` is off: every step is chained.)
build_peer_in() {
  local src=$1 bin=$2 module=$3 package=$4 version=$5 dir r
  export GOFLAGS="-p=1 -buildvcs=false -mod=mod" GOTOOLCHAIN=local
  dir=$(cd "$work" && go mod download -json "$module@$version" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error")))') || return 1
  cp -r "$dir" "$src" && chmod -R u+w "$src" && cd "$src" || return 1
  for r in $(go mod edit -json | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    if r["New"]["Path"].startswith("./"): print(r["Old"]["Path"])'); do
    go mod edit -dropreplace "$r" || return 1
  done
  mkdir -p "$(dirname "$bin")" && go build -trimpath -o "$bin.tmp" "$package" && mv "$bin.tmp" "$bin"
}

declare -A BIN VERSION
for p in "${PEERS[@]}"; do
  read -r name module package versions <<<"$p"
  for version in ${versions//,/ }; do
    echo "building $name $version (cached in $cache/$name-$version)…" >&2
    if path=$(build_peer "$name" "$module" "$package" "$version"); then
      BIN[$name]=$path; VERSION[$name]=$version
      break
    fi
    echo "!! $name $version did not build; the end of its log:" >&2
    grep -v '^go: downloading' "$work/build-$name-$version.log" | tail -4 | sed 's/^/   /' >&2
  done
done

scripts/install-deps.sh skopeo hyperfine time
cargo build -q --release -p ferry-registry-cli -p ferry-deploy-cli
cargo build -q --release -p ferry-tests --example bench-fixture --example peers-fixture --example fake-kube
rel=$PWD/target/release
. scripts/lib/registry.sh
start_registry "$work" accesslog
registry_pid=$REGISTRY_PID
addr=$REGISTRY_ADDR
"$rel/examples/bench-fixture" "$addr" 50 10 >"$work/refs.txt"
"$rel/examples/peers-fixture" "$addr" 2000 200 >"$work/fixture.env"
. "$work/fixture.env"
ferry_version=$("$rel/ferry-registry" --version | awk '{print $2}')
echo "registry $addr (distribution $(docker-registry --version | awk '{print $3}')); ferry $ferry_version;" \
  "skopeo $(skopeo --version | awk '{print $3}'); curl $(curl --version | awk 'NR==1{print $2}')"

# The peers' settings for a plain-HTTP registry on 127.0.0.1, all inside $work.
export REGCTL_CONFIG=$work/regctl.json
[ -n "${BIN[regctl]:-}" ] && "${BIN[regctl]}" registry set --tls disabled "$addr"
cat >"$work/aiu-registries.conf" <<YAML
registries:
- {name: local, prefix: "$addr", api_url: "http://$addr", insecure: yes, default: true}
YAML
kubeconfig() { # kubeconfig FILE URL
  printf 'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "%s"}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\nusers: [{name: u, user: {}}]\n' "$2" >"$1"
}
# Argo CD Image Updater builds a Kubernetes client it does not use for this: a port nobody serves.
kubeconfig "$work/aiu-kubeconfig" "http://127.0.0.1:9"

# fake_kube NAME "IMAGE POLICY": a fake API server with one Deployment; writes $work/kube-NAME.
fake_kube() {
  echo "$2" >"$work/kube-$1.refs"
  mkfifo "$work/kube-$1.in"
  "$rel/examples/fake-kube" "$work/kube-$1.refs" 1 <"$work/kube-$1.in" >"$work/kube-$1.url" &
  kube_pids+=($!)
  sleep 100000 >"$work/kube-$1.in" &
  kube_pids+=($!)
  for _ in $(seq 1 100); do [ -s "$work/kube-$1.url" ] && break; sleep 0.1; done
  kubeconfig "$work/kube-$1" "$(cat "$work/kube-$1.url")"
}

# measure TASK TOOL CMD [ANSWER_FILTER [RSS_CMD]]: CMD (bash) once to count the registry's
# requests and keep its output (ANSWER_FILTER, a bash filter over stdout+stderr, gives the
# answer), once under /usr/bin/time for peak RSS (RSS_CMD when CMD is a loop of processes:
# one of them), then RUNS times under hyperfine (median, min, max). One JSON line per call.
requests_so_far() { grep -cE '"(GET|HEAD|PUT|POST|PATCH|DELETE) /v2/' "$work/registry.log" || true; }
measure() {
  local task=$1 tool=$2 cmd=$3 filter=${4:-cat} rss_cmd=${5:-$3} before after answer rss
  before=$(requests_so_far)
  bash -c "$cmd" >"$work/out" 2>&1 || { echo "!! $tool ($task) failed: $cmd" >&2; tail -5 "$work/out" >&2; return 1; }
  sleep 0.3 # the registry writes its access log after the response
  after=$(requests_so_far)
  answer=$(bash -c "$filter" <"$work/out" | head -1)
  rss=$(/usr/bin/time -f %M bash -c "$rss_cmd" 2>&1 >/dev/null | tail -1)
  # Without a shell where the command needs none (hyperfine cannot correct for it below 5 ms).
  local shell=--shell=bash
  [[ $cmd == *[\|\;\<\>\$\&]* ]] || shell=-N
  hyperfine $shell --warmup 1 --runs "$runs" --export-json "$work/h.json" -n "$tool" "$cmd" >/dev/null
  python3 - "$work/h.json" "$task" "$tool" "$((after - before))" "$rss" "$answer" >>"$work/results.jsonl" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(json.dumps({"task": sys.argv[2], "tool": sys.argv[3], "median": r["median"], "min": r["min"],
                  "max": r["max"], "requests": int(sys.argv[4]), "rss_kib": int(sys.argv[5]),
                  "answer": sys.argv[6]}))
PY
  echo "  $task / $tool: $(python3 -c "import json; print('%.1f ms' % (json.load(open('$work/h.json'))['results'][0]['median'] * 1000))"), $((after - before)) requests, answer ${answer:-—}" >&2
}
have() { [ -n "${BIN[$1]:-}" ]; }
crane=${BIN[crane]:-}; regctl=${BIN[regctl]:-}; aiu=${BIN[argocd-image-updater]:-}
ferry=$rel/ferry-registry; deploy=$rel/ferry-deploy
: >"$work/results.jsonl"

echo "== 500 digest queries" >&2
accept="application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"
: >"$work/curl.cfg"
while read -r ref; do
  repo=${ref#*/}
  printf 'url = "http://%s/v2/%s/manifests/%s"\noutput = "/dev/null"\n' "$addr" "${repo%:*}" "${repo##*:}" >>"$work/curl.cfg"
done <"$work/refs.txt"
first=$(head -1 "$work/refs.txt"); frepo=${first#*/}
first_url="http://$addr/v2/${frepo%:*}/manifests/${frepo##*:}"
loop() { echo "while read -r r; do $1 >/dev/null; done <${2:-$work/refs.txt}"; }
sed -n 's/^url = "\(.*\)"$/\1/p' "$work/curl.cfg" >"$work/urls.txt"
q="500 digest queries"
measure "$q" "curl -I (process per query)" "$(loop "curl -sf -I -H 'Accept: $accept' \$r" "$work/urls.txt")" true "curl -sf -I -H 'Accept: $accept' $first_url"
have crane && measure "$q" "crane digest (process per query)" "$(loop "$crane digest --insecure \$r")" true "$crane digest --insecure $first"
have regctl && measure "$q" "regctl image digest (process per query)" "$(loop "$regctl image digest \$r")" true "$regctl image digest $first"
measure "$q" "skopeo inspect --raw (process per query)" "$(loop "skopeo inspect --raw --tls-verify=false docker://\$r")" true "skopeo inspect --raw --tls-verify=false docker://$first"
measure "$q" "ferry-registry digest (process per query)" "$(loop "$ferry digest --plain-http $addr \$r")" true "$ferry digest --plain-http $addr $first"
measure "$q" "curl --parallel (one process)" "curl -s --parallel --parallel-max 50 -I -H '$accept' -K $work/curl.cfg"
measure "$q" "ferry-registry digest -f (one process)" "$ferry digest --plain-http $addr -f $work/refs.txt"
# Every tool gives the same digest for the first reference.
want=$("$ferry" digest --plain-http "$addr" "$first")
for got in "$(skopeo inspect --raw --tls-verify=false "docker://$first" | sha256sum | awk '{print "sha256:"$1}')" \
  ${crane:+"$("$crane" digest --insecure "$first")"} ${regctl:+"$("$regctl" image digest "$first")"}; do
  [ "$got" = "$want" ] || { echo "digest disagreement on $first: $got vs ferry's $want" >&2; exit 1; }
done

echo "== tags: the highest semver among 2,000, the newest build among 200" >&2
aiu_test() { echo "$aiu test $1 --registries-conf-path $work/aiu-registries.conf --kubeconfig $work/aiu-kubeconfig --loglevel info ${2:-}"; }
aiu_answer='sed -n "s/.*according to constraint is [^\"]*:\([^:\"]*\)\".*/\1/p"'
plan_answer='sed -n "s/.*\"target\": \"[^\"]*:\([^:@\"]*\)@.*/\1/p"'
top_version="grep -oE '(^|\")[0-9]+\.[0-9]+\.[0-9]+(\"|\$)' | tr -d '\"' | sort -V | tail -1"
q="highest semver of 2,000 tags"
[ -n "$aiu" ] && measure "$q" "argocd-image-updater test" "$(aiu_test "$semver_repo:$semver_current")" "$aiu_answer"
have crane && measure "$q" "crane ls | sort -V" "$crane ls --insecure $semver_repo | $top_version" cat
have regctl && measure "$q" "regctl tag ls | sort -V" "$regctl tag ls $semver_repo | $top_version" cat
measure "$q" "skopeo list-tags | sort -V" "skopeo list-tags --tls-verify=false docker://$semver_repo | $top_version" cat
measure "$q" "ferry-registry tags | sort -V" "$ferry tags --plain-http $addr $semver_repo | $top_version" cat
fake_kube semver "$semver_repo:$semver_current semver:*"
measure "$q" "ferry-deploy plan (semver:*)" "$deploy --kubeconfig $work/kube-semver --plain-http $addr plan --json" "$plan_answer"

q="newest build of 200 tags"
newest=newest-build
case ${VERSION[argocd-image-updater]:-} in v0.*) newest=latest ;; esac # its name before v0.13
if [ -n "$aiu" ]; then
  measure "$q" "argocd-image-updater test ($newest, linux/amd64)" "$(aiu_test "$builds_repo:$builds_current" "--update-strategy $newest")" "$aiu_answer"
  measure "$q" "argocd-image-updater test ($newest, both platforms)" "$(aiu_test "$builds_repo:$builds_current" "--update-strategy $newest --platforms linux/amd64,linux/arm64")" "$aiu_answer"
fi
fake_kube builds "$builds_repo:$builds_current newest-build:^b-"
measure "$q" "ferry-deploy plan --max-inspect 200" "$deploy --kubeconfig $work/kube-builds --plain-http $addr --max-inspect 200 plan --json" "$plan_answer"

# children_present ADDR REPO DIGEST: every manifest the index DIGEST lists (platform images and
# attestations) is in peers/REPO.
children_present() {
  curl -sf -H "Accept: application/vnd.oci.image.index.v1+json" "http://$1/v2/peers/$2/manifests/$3" \
    | python3 -c 'import json, sys; [print(m["digest"]) for m in json.load(sys.stdin)["manifests"]]' >"$work/children"
  [ "$(wc -l <"$work/children")" -ge 4 ] || return 1
  while read -r c; do curl -sf -o /dev/null -I -H "Accept: application/vnd.oci.image.manifest.v1+json" "http://$1/v2/peers/$2/manifests/$c" || return 1; done <"$work/children"
}
echo "== copy a two-platform image with attestations to another repository" >&2
src_digest=$("$ferry" digest --plain-http "$addr" "$copy_src")
declare -A COPY=(
  [crane copy]="${crane:+$crane copy --insecure}"
  [regctl image copy]="${regctl:+$regctl image copy}"
  [skopeo copy --all]="skopeo copy -q --all --preserve-digests --src-tls-verify=false --dest-tls-verify=false"
  [ferry-registry promote]="$ferry promote --plain-http $addr"
)
for tool in "crane copy" "regctl image copy" "skopeo copy --all" "ferry-registry promote"; do
  [ -n "${COPY[$tool]}" ] || continue
  t=${tool%% *}; s=$copy_src; d="$addr/peers/copy-$t"; a="$addr/peers/again-$t:v1"
  [ "$t" = skopeo ] && { s=docker://$s; d=docker://$d; a=docker://$a; }
  echo 0 >"$work/n-$t"
  # Each run copies to a new repository (copy-TOOL-1, -2, …): nothing there yet.
  measure "copy, destination empty" "$tool" "read n <$work/n-$t; echo \$((n + 1)) >$work/n-$t; ${COPY[$tool]} $s $d-\$((n + 1)):v1" true
  got=$("$ferry" digest --plain-http "$addr" "$addr/peers/copy-$t-1:v1")
  [ "$got" = "$src_digest" ] || { echo "$tool copied $copy_src as $got, not $src_digest" >&2; exit 1; }
  children_present "$addr" "copy-$t-1" "$src_digest" || { echo "$tool left out a child of the index" >&2; exit 1; }
  bash -c "${COPY[$tool]} $s $a" >/dev/null
  measure "copy again, nothing to do" "$tool" "${COPY[$tool]} $s $a" true
done

# Every tool that picks a tag picks the one the fixture made to win.
python3 - "$work/results.jsonl" "$semver_expect" "$builds_expect" <<'PY'
import json, sys
want = {"highest semver of 2,000 tags": sys.argv[2], "newest build of 200 tags": sys.argv[3]}
bad = [r for r in map(json.loads, open(sys.argv[1])) if r["task"] in want and r["answer"] != want[r["task"]]]
for r in bad:
    print(f"!! {r['tool']} picked {r['answer'] or 'nothing'!r} for {r['task']!r}, not {want[r['task']]}", file=sys.stderr)
sys.exit(1 if bad else 0)
PY

echo
echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/^Mem:/{print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo -n "Versions: ferry $ferry_version, distribution $(docker-registry --version | awk '{print $3}'), skopeo $(skopeo --version | awk '{print $3}'), curl $(curl --version | awk 'NR==1{print $2}'), hyperfine $(hyperfine --version | awk '{print $2}'), $(go version | awk '{print $3}')"
for p in "${PEERS[@]}"; do read -r name _ <<<"$p"; have "$name" && echo -n ", $name ${VERSION[$name]}"; done
echo
for p in "${PEERS[@]}"; do read -r name _ <<<"$p"; have "$name" || echo "Did not build: $name (see above)"; done
echo "Each time: median of $runs runs (hyperfine, after 1 warm-up), [min–max]; requests from the registry's access log; peak RSS by /usr/bin/time (of one process)."
echo
python3 - "$work/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| task | tool | median | [min–max] | requests | peak RSS | ÷ best peer |")
print("|---|---|---|---|---|---|---|")
def ms(s):
    return f"{s * 1000:,.0f} ms" if s >= 0.1 else f"{s * 1000:.1f} ms"
for task in dict.fromkeys(r["task"] for r in rows):
    group = [r for r in rows if r["task"] == task]
    peers = [r for r in group if not r["tool"].startswith(("ferry", "curl"))]
    best = min((r["median"] for r in peers), default=None)
    for r in group:
        ratio = f"{r['median'] / best:.2f}" if best else "—"
        if r["tool"].startswith("ferry"):
            ratio = f"**{ratio}**"
        elif r["tool"].startswith("curl"):
            ratio += " (floor)"
        tool = r["tool"].replace("|", "\\|")  # `crane ls | sort -V` inside a table cell
        print(f"| {task} | {tool} | {ms(r['median'])} | [{ms(r['min'])}–{ms(r['max'])}] "
              f"| {r['requests']:,} | {r['rss_kib'] / 1024:.1f} MiB | {ratio} |")
PY
