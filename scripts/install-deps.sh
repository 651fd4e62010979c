#!/usr/bin/env bash
# Install the Debian packages ferry's scripts, tests, demo and benchmarks use, if they are
# missing: on a bare Debian this is everything besides Rust itself. Safe to run again; needs
# root (or sudo) only when something is missing. Extra package names may be given as arguments
# (skopeo, hyperfine, time, …). When another apt-get or dpkg holds the lock, waits for it
# (at most $FERRY_APT_LOCK_TIMEOUT seconds, default 300) instead of failing at once.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have docker-registry || need+=(docker-registry)
have htpasswd || need+=(apache2-utils)
have git || need+=(git)
have curl || need+=(curl)
have openssl || need+=(openssl)
dpkg -s ca-certificates >/dev/null 2>&1 || need+=(ca-certificates)
# git2 with https/ssh (git write-back) links OpenSSL through pkg-config; cc for build scripts.
dpkg -s libssl-dev >/dev/null 2>&1 || need+=(libssl-dev)
have pkg-config || need+=(pkg-config)
have cc || need+=(build-essential)
# The registry helper (scripts/lib/registry.sh), the Airflow stage and the manifest validation
# use Python in a venv.
have python3 || need+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
# The status page of ferry-deploy is checked in a real headless browser.
have chromium || need+=(chromium)
for extra in "$@"; do
  case "$extra" in
    skopeo) have skopeo || need+=(skopeo) ;;
    hyperfine) have hyperfine || need+=(hyperfine) ;;
    time) [ -x /usr/bin/time ] || need+=(time) ;;
    *) need+=("$extra") ;;
  esac
done
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing: ${need[*]}" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
# -o DPkg::Lock::Timeout makes apt-get wait for a lock held by another apt-get or dpkg.
timeout="${FERRY_APT_LOCK_TIMEOUT:-300}"
apt=($sudo env DEBIAN_FRONTEND=noninteractive apt-get -o "DPkg::Lock::Timeout=$timeout" -qq)
"${apt[@]}" update
"${apt[@]}" install -y --no-install-recommends "${need[@]}" >/dev/null
