#!/usr/bin/env bash
# CI stage: the production install, proven from outside. A fresh copy of this checkout (its
# working tree: tracked and new files, no .venv, no .env) gets a virtualenv of its own with
# the production dependencies only (no dev extras), then runs what an operator runs:
# scripts/build.sh, scripts/start.sh and scripts/worker.sh --beat, on a PostgreSQL database
# and a Redis database of their own; every module of the project must import in that venv.
# The database has two roles, as docs/deployment.md ("Database roles and the audit log")
# asks: migrations run as the owner (DATABASE_MIGRATION_URL), the web and worker processes
# as a runtime role made by manage.py grant_runtime_role, which owns nothing.
# tests/production/check_production.py (run with this checkout's dev venv) then checks
# readiness, a signed webhook, a websocket event and a beat job through the public HTTP and
# websocket API; psql, as the runtime role, must then be refused TRUNCATE and DELETE on
# the audit log. Prints PASS/FAIL lines; exits 1 on any failure; stops every process it
# started.
#
#   PMS_CHECK_DATABASE_URL  default postgres://postgres@127.0.0.1:5432/pms_production_check
#                           (a superuser's URL: the database is dropped and created again,
#                           with the roles <database>_owner and <database>_app, dropped and
#                           created again too: give it a database of its own)
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
# Two database roles (docs/deployment.md): the tables' owner, which migrations use, and
# the runtime role, which the application uses and which owns nothing. Both log in with a
# password, as they would on a server that asks for one.
role_base="$(echo "$database_url" | sed -E 's#^.*/([^/?]*)([?].*)?$#\1#' | tr 'A-Z-' 'a-z_' | tr -cd 'a-z0-9_' | cut -c1-58)"
owner_role="${role_base}_owner"
runtime_role="${role_base}_app"
owner_password="$("$checker_python" -c 'import secrets; print(secrets.token_hex(16))')"
runtime_password="$("$checker_python" -c 'import secrets; print(secrets.token_hex(16))')"
as_role() { # as_role ROLE PASSWORD: the check's database URL with that role's credentials
  "$checker_python" -c '
import sys
from urllib.parse import urlsplit, urlunsplit
url, role, password = sys.argv[1:]
parts = urlsplit(url)
print(urlunsplit(parts._replace(netloc=f"{role}:{password}@" + parts.netloc.rpartition("@")[2])))
' "$database_url" "$1" "$2"
}
owner_url="$(as_role "$owner_role" "$owner_password")"
runtime_url="$(as_role "$runtime_role" "$runtime_password")"
production_env=(
  "PATH=$PATH" "HOME=${HOME:-/root}" "LANG=${LANG:-C.UTF-8}" "TMPDIR=${TMPDIR:-/tmp}"
  "DATABASE_URL=$runtime_url"
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
# Only what migrates (build.sh checks the migrations, start.sh applies them) and the grant
# get the owner's credentials; the worker and the other commands have the runtime role's.
owner_env=("DATABASE_MIGRATION_URL=$owner_url")
in_app() { (cd "$app" && env -i "${production_env[@]}" "$@"); }
in_app_as_owner() { (cd "$app" && env -i "${production_env[@]}" "${owner_env[@]}" "$@"); }
serve() { # serve LOG [VAR=VALUE...] COMMAND...: start in a process group of its own, in the background
  local log="$1"; shift
  (cd "$app" && exec env -i "${production_env[@]}" "${serve_env[@]}" setsid env "$@" >"$log" 2>&1) &
  pids+=("$!")
}
sql() { # sql URL STATEMENT: run one statement, print its rows unaligned
  PGOPTIONS="--client-min-messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 "$1" -c "$2"
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
PGOPTIONS="--client-min-messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$admin_url" \
  -c "DROP DATABASE IF EXISTS \"$db_name\" WITH (FORCE)" \
  -c "DROP ROLE IF EXISTS \"$runtime_role\"" -c "DROP ROLE IF EXISTS \"$owner_role\"" \
  -c "CREATE ROLE \"$owner_role\" LOGIN CREATEROLE PASSWORD '$owner_password'" \
  -c "CREATE DATABASE \"$db_name\" OWNER \"$owner_role\"" >/dev/null
redis-cli -u "$redis_url" flushdb >/dev/null

echo "==> copy, database (owner $owner_role, runtime role $runtime_role) and redis ready in $SECONDS s"
started=$SECONDS
if in_app_as_owner ./scripts/build.sh >"$work/build.log" 2>&1 && grep -q "build ok" "$work/build.log"; then
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

# The first migrate, as the owner, stops after the audit app (as an install of an older
# release would); then the runtime role is made and granted as docs/deployment.md says.
# start.sh has every other app's migrations to apply: as the owner (the runtime role may
# not create tables), and its new tables reach the runtime role through the grant's
# default privileges, as after an upgrade.
if in_app_as_owner .venv/bin/python manage.py migrate audit --noinput >"$work/migrate.log" 2>&1; then
  first_tables="$(sql "$database_url" "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'" 2>/dev/null || true)"
  pass "manage.py migrate audit as the owner (DATABASE_MIGRATION_URL)"
else
  fail "manage.py migrate audit with DATABASE_MIGRATION_URL failed"
  show_log migrate "$work/migrate.log"
  exit 1
fi
if in_app_as_owner env "PMS_APP_DB_PASSWORD=$runtime_password" .venv/bin/python manage.py \
  grant_runtime_role "$runtime_role" --create --password-env PMS_APP_DB_PASSWORD >"$work/grant.log" 2>&1; then
  pass "manage.py grant_runtime_role $runtime_role --create (as the owner)"
else
  fail "manage.py grant_runtime_role did not make the runtime role"
  show_log grant_runtime_role "$work/grant.log"
  exit 1
fi

serve "$work/web.log" "${owner_env[@]}" ./scripts/start.sh
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

# The roles, seen from outside while the web and worker processes still run.
owners="$(sql "$database_url" "SELECT string_agg(DISTINCT tableowner, ',') || ' ' || count(*)
  FROM pg_tables WHERE schemaname = 'public'" 2>&1 || true)"
if [ "$owners" = "$owner_role ${owners##* }" ] && [ "${owners##* }" -gt "${first_tables:-0}" ]; then
  pass "scripts/start.sh migrated as the owner: all ${owners##* } tables belong to $owner_role, $((${owners##* } - ${first_tables:-0})) of them made by start.sh"
else
  fail "the tables' owners and count are '$owners' (expected $owner_role only, more than the first migrate's ${first_tables:-?})"
fi
sessions="$(sql "$database_url" "SELECT coalesce(string_agg(usename || ':' || n, ','), 'none') FROM (
  SELECT usename, count(*) AS n FROM pg_stat_activity WHERE datname = current_database()
  AND pid <> pg_backend_pid() GROUP BY usename ORDER BY usename) AS s" 2>&1 || true)"
if [[ "$sessions" =~ ^${runtime_role}:[0-9]+$ ]]; then
  pass "the web and worker processes are connected as $runtime_role only ($sessions)"
else
  fail "sessions on the database by role: $sessions (expected $runtime_role only)"
fi
audit_count() { sql "$database_url" "SELECT count(*) FROM audit_auditlog" 2>/dev/null || echo "?"; }
entries="$(audit_count)"
for statement in "TRUNCATE audit_auditlog" "DELETE FROM audit_auditlog" \
  "TRUNCATE audit_auditseal" "DELETE FROM audit_auditseal"; do
  if refusal="$(sql "$runtime_url" "$statement" 2>&1)"; then
    fail "psql as $runtime_role: $statement was allowed"
  elif [[ "$refusal" == *"permission denied for table"* ]]; then
    pass "psql as $runtime_role: $statement refused ($(echo "$refusal" | head -n 1))"
  else
    fail "psql as $runtime_role: $statement failed, but not for want of privilege: $refusal"
  fi
done
if [[ "$entries" =~ ^[0-9]+$ ]] && [ "$entries" -gt 0 ] && [ "$(audit_count)" = "$entries" ]; then
  pass "the audit log still holds its $entries entries"
else
  fail "the audit log held '$entries' entries before psql tried to erase it, '$(audit_count)' after"
fi
if in_app .venv/bin/python manage.py verify_audit_chain >"$work/verify.log" 2>&1; then
  pass "manage.py verify_audit_chain as $runtime_role: $(tail -n 1 "$work/verify.log")"
else
  fail "manage.py verify_audit_chain as $runtime_role failed"
  show_log verify_audit_chain "$work/verify.log"
fi
if [ "$failed" != 0 ]; then
  show_log start.sh "$work/web.log"
  show_log worker.sh "$work/worker.log"
  echo "production check: FAILED"
  exit 1
fi
echo "production check: all passed ($((SECONDS - started)) s)"
