# Sourced by ferry's scripts: start a throw-away CNCF registry on 127.0.0.1.
#   start_registry WORKDIR [accesslog]   → sets REGISTRY_ADDR and REGISTRY_PID; logs to WORKDIR/registry.log
#   start_registry WORKDIR "" URL AUTHORIZATION   → the same, and it notifies URL of every push
#     (distribution's `notifications.endpoints`, sending `Authorization: AUTHORIZATION`; pulls
#     and blob uploads are not sent — the configuration docs/webhooks.md shows)
# It listens on a free port chosen beforehand, logs at "error" (the registry logs every request
# at "info", which would make it, not the client, the thing measured), and is ready on return.
start_registry() {
  local work=$1 accesslog=${2:-} notify_url=${3:-} notify_auth=${4:-}
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  REGISTRY_ADDR="127.0.0.1:$port"
  local access=true
  [ "$accesslog" = accesslog ] && access=false
  cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: $access}}
storage: {filesystem: {rootdirectory: $work/registry-data}, delete: {enabled: true}}
http: {addr: "$REGISTRY_ADDR"}
YAML
  if [ -n "$notify_url" ]; then
    cat >>"$work/registry.yml" <<YAML
notifications:
  endpoints:
    - name: ferry
      url: $notify_url
      headers: {Authorization: ["$notify_auth"]}
      timeout: 2s
      threshold: 5
      backoff: 1s
      ignoredmediatypes: ["application/octet-stream"]
      ignore: {actions: ["pull"]}
YAML
  fi
  docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
  REGISTRY_PID=$!
  for _ in $(seq 1 100); do
    curl -fs "http://$REGISTRY_ADDR/v2/" >/dev/null && return 0
    sleep 0.1
  done
  echo "registry did not start:" >&2
  cat "$work/registry.log" >&2
  return 1
}
