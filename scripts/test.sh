#!/usr/bin/env bash
# The whole test suite. Uses PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set,
# else the embedded defaults (SQLite, local-memory cache). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
ensure_venv dev

export DJANGO_DEBUG="${DJANGO_DEBUG:-true}"
# Show where the tests run, never the passwords in the URLs (CI logs are widely read).
mask() { printf '%s' "$1" | sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#'; }
echo "==> database: $(mask "${DATABASE_URL:-sqlite (embedded)}"); redis: $(mask "${REDIS_URL:-none (local-memory cache)}")" >&2
exec .venv/bin/python -m pytest "$@"
