#!/usr/bin/env bash
# The benchmarks: the production server (scripts/start.sh) on PostgreSQL and Redis, loaded
# with wrk; writes bench/results/<date>.json, <date>.md and latest.md.
#
#   scripts/bench.sh [NAME ...] [--quick] [--workers N] [--connections C] [--duration S]
#
# NAME: catalog, seed, orders, security, events, memory, operations, serving, variants, search (default: all,
# in that order); each is bench/bench_<NAME>.py, bench/run.py the driver. Uses its own
# database (pms_bench, dropped and created; BENCH_DATABASE to change) and Redis database 3
# (BENCH_REDIS_URL); PostgreSQL maintenance URL BENCH_PG_ADMIN_URL (default
# postgres://postgres@127.0.0.1:5432/postgres).
# Exit status: 0 all targets met, 3 a target missed, 2 the benchmark could not run (or
# another run is going on here), 124 it ran over BENCH_TIMEOUT seconds (default 1800).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
ensure_venv dev  # the serving benchmark measures granian (a dev extra) too

if ! command -v wrk >/dev/null 2>&1; then
  echo "==> installing wrk" >&2
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null
  fi
fi

mkdir -p bench/tmp bench/results
# One run at a time per checkout: runs share bench/tmp (pid files, beat schedule), and one
# run's cleanup would stop the other's server and worker.
exec 9>bench/tmp/.lock
if ! flock -n 9; then
  echo "error: another scripts/bench.sh is running in this checkout" >&2
  exit 2
fi
cleanup() {
  # The driver stops the server (and the events benchmark's worker) itself; this covers a
  # driver killed on the timeout.
  for pidfile in bench/tmp/server.pid bench/tmp/worker.pid; do
    if [ -s "$pidfile" ]; then
      pid="$(cat "$pidfile")"
      kill -TERM -- "-$pid" 2>/dev/null || true
      sleep 2
      kill -KILL -- "-$pid" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
}
trap cleanup EXIT

export PMS_SKIP_INSTALL=1
# In the background so that a TERM/INT reaches us at once; the driver then stops the
# server and writes what it has measured.
timeout --kill-after=60 "${BENCH_TIMEOUT:-1800}" .venv/bin/python bench/run.py "$@" &
driver=$!
trap 'kill -TERM "$driver" 2>/dev/null || true' INT TERM
status=0
wait "$driver" || status=$?
while kill -0 "$driver" 2>/dev/null; do
  status=0
  wait "$driver" || status=$?
done
exit "$status"
