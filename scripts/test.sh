#!/usr/bin/env bash
# The whole test suite. Uses PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set,
# else the embedded defaults (SQLite, local-memory cache). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
source scripts/lib/system.sh
ensure_venv dev
# The e2e tests run scripts/start.sh, whose front is nginx.
ensure_system_package nginx nginx "the web tier's front (e2e tests)" ||
  echo "warning: the e2e tests of the web tier will fail without nginx" >&2

# The admin browser tests drive Debian's Chromium: install it once (never a downloaded
# browser build). Quiet and instant when it is already there.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing chromium (Debian package) for the browser tests" >&2
    apt_log="$(mktemp)"
    if ! { apt-get update -qq &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
         } >"$apt_log" 2>&1; then
      tail -n 20 "$apt_log" >&2
      echo "warning: chromium could not be installed; the browser tests will not run" >&2
    fi
    rm -f "$apt_log"
  else
    echo "warning: /usr/bin/chromium is missing (apt-get install chromium as root)" >&2
  fi
fi

export DJANGO_DEBUG="${DJANGO_DEBUG:-true}"
# Show where the tests run, never the passwords in the URLs (CI logs are widely read).
mask() { printf '%s' "$1" | sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#'; }
echo "==> database: $(mask "${DATABASE_URL:-sqlite (embedded)}"); redis: $(mask "${REDIS_URL:-none (local-memory cache)}")" >&2
exec .venv/bin/python -m pytest "$@"
