#!/usr/bin/env bash
# CI stage: the production install, proven from outside. A fresh copy of this checkout (its
# working tree: tracked and new files, no .venv, no .env) gets a virtualenv of its own with
# the production dependencies only (no dev extras), then runs what an operator runs:
# scripts/build.sh, scripts/start.sh and scripts/worker.sh --beat, on a PostgreSQL database
# and a Redis database of their own; every module of the project must import in that venv.
# tests/production/check_production.py (run with this checkout's dev venv) then checks
# readiness, a signed webhook, a websocket event and a beat job through the public HTTP and
# websocket API. Prints PASS/FAIL lines; exits 1 on any failure; stops every process it
# started.
#
#   PMS_CHECK_DATABASE_URL  default postgres://postgres@127.0.0.1:5432/pms_production_check
#                           (dropped and created again: give it a database of its own)
#   PMS_CHECK_REDIS_URL     default redis://127.0.0.1:6379/1 (emptied first: its own db number)
#   PMS_CHECK_KEEP=1        keep the work folder (logs, the copy) even when every check passed
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

database_url="${PMS_CHECK_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/pms_production_check}"
redis_url="${PMS_CHECK_REDIS_URL:-redis://127.0.0.1:6379/1}"
checker_python="${PMS_CHECK_PYTHON:-$root/.venv/bin/python}"
work="$(mktemp -d "${TMPDIR:-/tmp}/pms-production-check.XXXXXX")"
app="$work/app"
failed=0
pids=()

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failed=1; }

stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  pids=()
}
finish() {
  local status=$? stopping=$SECONDS
  stop_all
  echo "production check: processes stopped in $((SECONDS - stopping)) s; $SECONDS s in all"
  if [ "$failed" = 0 ] && [ "$status" = 0 ] && [ "${PMS_CHECK_KEEP:-0}" != 1 ]; then
    rm -rf "$work"
  else
    echo "production check: logs and the copy are in $work" >&2
  fi
}
trap finish EXIT
trap 'exit 130' INT TERM

show_log() {
  echo "---- $1 (last 40 lines) ----"
  tail -n 40 "$2" 2>/dev/null || true
  echo "----"
}

# The environment an operator gives the processes, and nothing else of this shell's.
secret_key="$("$checker_python" -c 'import secrets; print(secrets.token_urlsafe(64))')"
encryption_key="$("$checker_python" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
port="$("$checker_python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
production_env=(
  "PATH=$PATH" "HOME=${HOME:-/root}" "LANG=${LANG:-C.UTF-8}" "TMPDIR=${TMPDIR:-/tmp}"
  "DATABASE_URL=$database_url"
  "REDIS_URL=$redis_url"
  "DJANGO_SECRET_KEY=$secret_key"
  "PMS_ENCRYPTION_KEYS=$encryption_key"
  "PMS_AUDIT_CHAIN_KEY=$secret_key"
  "DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost"
)
# Serving: plain HTTP on loopback (no TLS in the check), a local webhook receiver.
serve_env=(
  "DJANGO_SECURE_SSL_REDIRECT=false"
  "PMS_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true"
  "HOST=127.0.0.1" "PORT=$port" "WEB_CONCURRENCY=1" "WORKER_CONCURRENCY=2"
  "PYTHONUNBUFFERED=1"
)
in_app() { (cd "$app" && env -i "${production_env[@]}" "$@"); }
serve() { # serve LOG COMMAND...: start in a process group of its own, in the background
  local log="$1"; shift
  (cd "$app" && exec env -i "${production_env[@]}" "${serve_env[@]}" setsid "$@" >"$log" 2>&1) &
  pids+=("$!")
}

echo "==> production check in $work (database $(echo "$database_url" | sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#'), redis $redis_url)"
mkdir -p "$app"
# The working tree as it is (tracked and untracked files, nothing ignored): what a fresh
# clone of it would hold.
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' file; do [ -e "$file" ] && printf '%s\0' "$file"; done |
  tar --null -T - -cf - | tar -xf - -C "$app"

admin_url="$(echo "$database_url" | sed -E 's#/[^/?]*([?].*)?$#/postgres#')"
db_name="$(echo "$database_url" | sed -E 's#^.*/([^/?]*)([?].*)?$#\1#')"
PGOPTIONS="--client-min-messages=warning" psql -q "$admin_url" -c "DROP DATABASE IF EXISTS \"$db_name\" WITH (FORCE)" \
  -c "CREATE DATABASE \"$db_name\"" >/dev/null
redis-cli -u "$redis_url" flushdb >/dev/null

echo "==> copy, database and redis ready in $SECONDS s"
started=$SECONDS
if in_app ./scripts/build.sh >"$work/build.log" 2>&1 && grep -q "build ok" "$work/build.log"; then
  pass "scripts/build.sh: build ok ($((SECONDS - started)) s, fresh venv)"
else
  fail "scripts/build.sh did not finish with 'build ok'"
  show_log build "$work/build.log"
  exit 1
fi
if in_app .venv/bin/python -c 'import pytest' >/dev/null 2>&1; then
  fail "the production venv has pytest: the dev extras were installed"
else
  pass "the production venv has no dev extras (no pytest)"
fi

if in_app .venv/bin/python -m tests.production.import_modules >"$work/imports.log" 2>&1; then
  pass "every module of the project imports in the production venv ($(tail -n 1 "$work/imports.log"))"
else
  fail "modules that do not import in the production venv (a dependency only the dev extras bring?)"
  grep -v '^{' "$work/imports.log" | tail -n 20
fi

serve "$work/web.log" ./scripts/start.sh
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null "http://127.0.0.1:$port/health/live" 2>/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || break
  sleep 0.2
done
if curl -fsS -o /dev/null "http://127.0.0.1:$port/health/live" 2>/dev/null; then
  pass "scripts/start.sh serves http://127.0.0.1:$port (/health/live 200)"
else
  fail "scripts/start.sh did not answer /health/live within 60 s"
  show_log start.sh "$work/web.log"
  exit 1
fi

serve "$work/worker.log" ./scripts/worker.sh --beat
for _ in $(seq 1 300); do
  grep -q " ready\." "$work/worker.log" 2>/dev/null && break
  kill -0 "${pids[1]}" 2>/dev/null || break
  sleep 0.2
done
if grep -q " ready\." "$work/worker.log"; then
  pass "scripts/worker.sh --beat is ready"
else
  fail "scripts/worker.sh --beat did not become ready (exited or silent for 60 s)"
  show_log worker.sh "$work/worker.log"
fi

admin_key="$(in_app .venv/bin/python manage.py generate_api_key --name ci-admin --scopes admin 2>>"$work/keys.log" | tail -n 1)" || true
shop_key="$(in_app .venv/bin/python manage.py generate_api_key --name ci-shop --scopes storefront 2>>"$work/keys.log" | tail -n 1)" || true
if [[ "$admin_key" == pms_* && "$shop_key" == pms_* ]]; then
  pass "manage.py generate_api_key (production venv) printed an admin and a storefront key"
else
  fail "manage.py generate_api_key did not print keys"
  show_log generate_api_key "$work/keys.log"
  exit 1
fi

if ! PYTHONPATH="$root" "$checker_python" -m tests.production.check_production \
  --base-url "http://127.0.0.1:$port" --admin-key "$admin_key" --shop-key "$shop_key" \
  --worker-log "$work/worker.log"; then
  failed=1
fi
if [ "$failed" != 0 ]; then
  show_log start.sh "$work/web.log"
  show_log worker.sh "$work/worker.log"
  echo "production check: FAILED"
  exit 1
fi
echo "production check: all passed ($((SECONDS - started)) s)"
