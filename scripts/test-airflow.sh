#!/usr/bin/env bash
# The Airflow stage of the test suite: installs apache-airflow from PyPI into a throw-away
# virtualenv, starts a registry on 127.0.0.1, and runs docs/examples/airflow/ferry_etl_bash.py
# with `airflow dags test`: the wait task sees an image CI "pushes" meanwhile, the pin task
# resolves etl:latest, and the ETL tasks must have run exactly that digest.
# Nothing is cached between runs. Set FERRY_SKIP_AIRFLOW=1 to skip it locally (CI never does).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${FERRY_SKIP_AIRFLOW:-}" = 1 ] && [ -z "${CI:-}" ]; then
  echo "airflow stage skipped (FERRY_SKIP_AIRFLOW=1)"; exit 0
fi
AIRFLOW_VERSION=3.3.2
scripts/install-deps.sh
cargo build -q --bins
cargo build -q -p ferry-tests --example push-demo-image
work=$(mktemp -d)
registry_pid=""; pusher_pid=""
cleanup() {
  [ -n "$pusher_pid" ] && kill "$pusher_pid" 2>/dev/null || true
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "apache-airflow==$AIRFLOW_VERSION"

. scripts/lib/registry.sh
start_registry "$work"
registry_pid=$REGISTRY_PID
addr=$REGISTRY_ADDR
expected=$(target/debug/examples/push-demo-image "$addr" acme/etl:latest | cut -d' ' -f1)
# CI pushes the commit's image a few seconds after the DAG run starts waiting for it.
( sleep 6; target/debug/examples/push-demo-image "$addr" acme/etl:sha-1234 >/dev/null ) &
pusher_pid=$!

export AIRFLOW_HOME="$work/airflow"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/docs/examples/airflow"
export PATH="$PWD/target/debug:$PATH"
export FERRY_REGISTRY="$addr" FERRY_REPOSITORY=acme/etl FERRY_COMMIT=sha-1234
export FERRY_ARGS="--plain-http $addr" FERRY_OUT="$work/ran.txt"
"$work/venv/bin/airflow" db migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log"; exit 1; }
if ! "$work/venv/bin/airflow" dags test ferry_etl >"$work/dag.log" 2>&1; then
  tail -50 "$work/dag.log"; echo "airflow: 0 passed, 1 failed"; exit 1
fi
want="extract $addr/acme/etl@$expected
load $addr/acme/etl@$expected"
if [ "$(cat "$work/ran.txt")" != "$want" ]; then
  echo "expected:"; echo "$want"; echo "got:"; cat "$work/ran.txt"
  echo "airflow: 0 passed, 1 failed"; exit 1
fi
grep -q "wait_for_image" "$work/dag.log"
echo "the ETL tasks ran $addr/acme/etl@$expected, the digest pinned at the start of the run"
echo "airflow: 1 passed, 0 failed"
