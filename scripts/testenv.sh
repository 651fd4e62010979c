#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1 for ferry's tests, benchmarks and a first try of
# ferry-deploy: etcd, kube-apiserver, kube-controller-manager and kube-scheduler built from the
# Kubernetes sources at the release pinned in scripts/testenv/versions.env, plus podsim (the one
# simulated part: it stands in for the kubelet, see scripts/testenv/podsim/main.go).
#
#   scripts/testenv.sh build                 build the binaries (once per release; cached)
#   scripts/testenv.sh up DIR                build if needed, start everything, wait for /readyz
#   scripts/testenv.sh kubeconfig DIR NS SA  print a kubeconfig authenticating as that ServiceAccount
#   scripts/testenv.sh down DIR              stop everything `up DIR` started (by PID)
#   scripts/testenv.sh bin                   print the directory holding the binaries (kubectl, ...)
#
# `up` writes DIR/kubeconfig (cluster admin, client certificate), DIR/env (KUBECONFIG,
# FERRY_TESTENV_VERSION, FERRY_TESTENV_BIN), DIR/audit.log (every request at level Metadata),
# DIR/never-ready (image substrings whose pods never become Ready) and DIR/logs/.
# Binaries are cached in $FERRY_TESTENV_CACHE (default ~/.cache/ferry/testenv/<release>), outside
# the clone. Building needs Go (the machine's, or GOTOOLCHAIN) and the Go module proxy.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=testenv/versions.env
source "$here/testenv/versions.env"
cache="${FERRY_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry/testenv/$K8S_VERSION}"
bin="$cache/bin"
components=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl podsim)

die() { echo "testenv: $*" >&2; exit 1; }
log() { echo "testenv: $*" >&2; }

# Bump when the way the binaries are built changes (go.mod generation, build flags).
build_revision=1

# The cache key: the pinned versions, the build revision and the sources built beside Kubernetes.
stamp() {
  { echo "$build_revision"; cat "$here/testenv/versions.env" "$here/testenv/podsim/main.go" \
    "$here/testenv/etcd/main.go"; } | sha256sum | cut -c1-16
}

build() {
  local want src
  want="$(stamp)"
  if [ -f "$bin/.stamp" ] && [ "$(cat "$bin/.stamp")" = "$want" ]; then
    local ok=1
    for c in "${components[@]}"; do [ -x "$bin/$c" ] || ok=0; done
    [ "$ok" = 1 ] && return 0
  fi
  command -v go >/dev/null || die "Go is needed to build the control plane (go.dev/dl or apt-get install golang)"
  src="$cache/src"
  mkdir -p "$src/cmd/etcd" "$src/cmd/podsim" "$bin"
  log "building Kubernetes $K8S_VERSION (staging modules $K8S_STAGING_VERSION) and etcd $ETCD_VERSION into $bin"
  log "a cold build takes 10-20 minutes on 2 cores; later runs reuse it"
  cp "$here/testenv/podsim/main.go" "$src/cmd/podsim/main.go"
  cp "$here/testenv/etcd/main.go" "$src/cmd/etcd/main.go"
  # k8s.io/kubernetes points every staging module at ./staging/src/k8s.io/...: replace each one
  # with its published copy at the matching release (kubernetes/kubernetes#79384).
  local kmod
  kmod="$(cd "$src" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
  [ -f "$kmod" ] || die "could not download k8s.io/kubernetes@$K8S_VERSION from the Go module proxy"
  {
    echo "module ferry.dev/testenv"
    echo
    echo "go $(sed -n 's/^go //p' "$kmod")"
    echo
    echo "require ("
    echo "	k8s.io/kubernetes $K8S_VERSION"
    echo "	go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    echo ")"
    echo
    # The programs built from Kubernetes (go.mod tool directives keep them in the module graph).
    echo "tool ("
    for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
      echo "	k8s.io/kubernetes/cmd/$c"
    done
    echo ")"
    echo
    echo "replace ("
    sed -n "s#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#	\1 => \1 $K8S_STAGING_VERSION#p" "$kmod"
    echo ")"
  } >"$src/go.mod"
  (cd "$src" && go mod tidy) || die "go mod tidy failed in $src (see above)"
  (cd "$src" && go build -trimpath -ldflags=-s -o "$bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl \
    ./cmd/etcd ./cmd/podsim) || die "go build failed in $src (see above)"
  echo "$want" >"$bin/.stamp"
  log "built: $(cd "$bin" && echo "${components[*]}")"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Self-made certificates: a CA, the API server's serving certificate, the admin client
# certificate (system:masters) and the ServiceAccount token signing key.
make_certs() {
  local pki="$1"
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=ferry-testenv-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
      -keyout apiserver.key -out apiserver.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=ferry-testenv-admin" \
      -keyout admin.key -out admin.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
      -extfile admin.ext -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

write_admin_kubeconfig() {
  local dir="$1" port="$2"
  cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ferry-testenv
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority: $dir/pki/ca.crt
users:
- name: admin
  user:
    client-certificate: $dir/pki/admin.crt
    client-key: $dir/pki/admin.key
contexts:
- name: ferry-testenv
  context: {cluster: ferry-testenv, user: admin}
current-context: ferry-testenv
EOF
}

start() {
  local dir="$1" name="$2"
  shift 2
  "$@" >"$dir/logs/$name.log" 2>&1 &
  echo "$!" >"$dir/pids/$name"
}

# wait_for WHAT COMPONENT TRIES CMD...: poll CMD every 0.5 s while COMPONENT's process lives.
wait_for() {
  local what="$1" component="$2" tries="$3"
  shift 3
  for _ in $(seq "$tries"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$(cat "$dir/pids/$component")" 2>/dev/null; then
      tail -5 "$dir/logs/$component.log" >&2
      fail "$component exited"
    fi
    sleep 0.5
  done
  fail "$what did not come up within $((tries / 2)) s"
}

# A failed `up` stops what it started and names the logs.
fail() {
  echo "testenv: $*; logs under $dir/logs" >&2
  down "$dir"
  exit 1
}

up() {
  dir="$1"
  build
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  [ -e "$dir/pids" ] && [ -n "$(ls -A "$dir/pids" 2>/dev/null)" ] && die "$dir is in use: run down first"
  mkdir -p "$dir/logs" "$dir/pids" "$dir/etcd"
  : >"$dir/never-ready"
  make_certs "$dir/pki"
  local etcd_port peer_port api_port
  etcd_port="$(free_port)"; peer_port="$(free_port)"; api_port="$(free_port)"
  start "$dir" etcd "$bin/etcd" --name testenv --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "testenv=http://127.0.0.1:$peer_port" --unsafe-no-fsync --log-level warn
  wait_for etcd etcd 60 curl -fsS "http://127.0.0.1:$etcd_port/health"
  cat >"$dir/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
EOF
  start "$dir" kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --cert-dir "$dir/pki" --tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
    --client-ca-file "$dir/pki/ca.crt" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --service-account-issuer "https://127.0.0.1:$api_port" \
    --service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key" \
    --authorization-mode Node,RBAC --endpoint-reconciler-type none \
    --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/audit.log" \
    --audit-log-mode blocking --audit-log-maxsize 0 \
    --allow-privileged=true --max-requests-inflight 1000 --max-mutating-requests-inflight 500
  write_admin_kubeconfig "$dir" "$api_port"
  wait_for kube-apiserver kube-apiserver 240 "$bin/kubectl" --kubeconfig "$dir/kubeconfig" get --raw /readyz
  start "$dir" kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$dir/kubeconfig" --authentication-kubeconfig "$dir/kubeconfig" \
    --authorization-kubeconfig "$dir/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false \
    --service-account-private-key-file "$dir/pki/sa.key" --root-ca-file "$dir/pki/ca.crt" \
    --use-service-account-credentials --cluster-signing-cert-file "$dir/pki/ca.crt" \
    --cluster-signing-key-file "$dir/pki/ca.key" --concurrent-deployment-syncs 10 \
    --kube-api-qps 200 --kube-api-burst 400
  start "$dir" kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig "$dir/kubeconfig" --authentication-kubeconfig "$dir/kubeconfig" \
    --authorization-kubeconfig "$dir/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false
  start "$dir" podsim "$bin/podsim" --kubeconfig "$dir/kubeconfig" --never-ready "$dir/never-ready"
  # Ready: the nodes are Ready and the default ServiceAccount exists (the controllers run).
  wait_for "the nodes" podsim 120 bash -c "'$bin/kubectl' --kubeconfig '$dir/kubeconfig' get nodes -o jsonpath='{.items[*].status.conditions[?(@.type==\"Ready\")].status}' | grep -qx 'True True'"
  wait_for "the controllers" kube-controller-manager 120 "$bin/kubectl" --kubeconfig "$dir/kubeconfig" -n default get serviceaccount default
  cat >"$dir/env" <<EOF
export KUBECONFIG='$dir/kubeconfig'
export FERRY_TESTENV_VERSION='$K8S_VERSION'
export FERRY_TESTENV_BIN='$bin'
EOF
  echo "testenv up in $dir: Kubernetes $K8S_VERSION on https://127.0.0.1:$api_port (etcd $ETCD_VERSION on 127.0.0.1:$etcd_port)"
  echo "  started: $(cd "$dir/pids" && for p in *; do printf '%s[%s] ' "$p" "$(cat "$p")"; done)"
  echo "  nodes: $("$bin/kubectl" --kubeconfig "$dir/kubeconfig" get nodes -L kubernetes.io/arch --no-headers | awk '{print $1"("$NF")"}' | tr '\n' ' ')"
  echo "  source $dir/env   # KUBECONFIG (cluster admin), FERRY_TESTENV_VERSION, FERRY_TESTENV_BIN"
}

down() {
  local dir="$1" pid name
  [ -d "$dir/pids" ] || return 0
  # Stop in reverse order of start: the simulator and controllers, then the API server, then etcd.
  for name in podsim kube-scheduler kube-controller-manager kube-apiserver etcd; do
    [ -f "$dir/pids/$name" ] || continue
    pid="$(cat "$dir/pids/$name")"
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/pids/$name"
  done
}

# A kubeconfig that authenticates as NAMESPACE/SERVICEACCOUNT with a token from the TokenRequest
# API (valid 24 h), against the same API server and CA as DIR/kubeconfig.
sa_kubeconfig() {
  local dir="$1" ns="$2" sa="$3" server token
  server="$(sed -n 's/^ *server: //p' "$dir/kubeconfig")"
  token="$("$bin/kubectl" --kubeconfig "$dir/kubeconfig" -n "$ns" create token "$sa" --duration 24h)"
  cat <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ferry-testenv
  cluster:
    server: $server
    certificate-authority: $dir/pki/ca.crt
users:
- name: $ns-$sa
  user:
    token: $token
contexts:
- name: $ns-$sa
  context: {cluster: ferry-testenv, user: $ns-$sa, namespace: $ns}
current-context: $ns-$sa
EOF
}

case "${1:-}" in
  build) build ;;
  bin) echo "$bin" ;;
  up) [ $# -eq 2 ] || die "usage: $0 up DIR"; up "$2" ;;
  down) [ $# -eq 2 ] || die "usage: $0 down DIR"; down "$2" ;;
  kubeconfig) [ $# -eq 4 ] || die "usage: $0 kubeconfig DIR NAMESPACE SERVICEACCOUNT"; sa_kubeconfig "$2" "$3" "$4" ;;
  *) echo "usage: $0 build | bin | up DIR | down DIR | kubeconfig DIR NAMESPACE SERVICEACCOUNT" >&2; exit 2 ;;
esac
