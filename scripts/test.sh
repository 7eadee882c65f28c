#!/usr/bin/env bash
# The whole test suite. Uses PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set,
# else the embedded defaults (SQLite, local-memory cache). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
ensure_venv dev

export DJANGO_DEBUG="${DJANGO_DEBUG:-true}"
echo "==> database: ${DATABASE_URL:-sqlite (embedded)}; redis: ${REDIS_URL:-none (local-memory cache)}" >&2
exec .venv/bin/python -m pytest "$@"
