#!/usr/bin/env bash
# The code checks, run by CI before the tests: ruff (lint, format), the dependency contracts
# (lint-imports), file-level import cycles, mypy, and the complexity gate. Every check runs;
# the exit status is 1 if any of them found something. Give names to run only those:
#   ./scripts/check.sh                 all of them
#   ./scripts/check.sh mypy imports    ruff format imports cycles mypy complexity
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/venv.sh
ensure_venv dev
# mypy's Django plugin loads the settings: the development ones (no secret key needed),
# whatever a local .env says.
export DJANGO_DEBUG=true

all=(ruff format imports cycles mypy complexity)
wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=("${all[@]}")

run() {
  case "$1" in
    ruff) .venv/bin/ruff check --no-fix . ;;
    format) .venv/bin/ruff format --check . ;;
    imports) .venv/bin/lint-imports --no-cache --no-logo ;;
    cycles) .venv/bin/python scripts/ci/import_cycles.py ;;
    mypy) .venv/bin/mypy ;;
    complexity) .venv/bin/python scripts/ci/complexity.py --max 15 ;;
    *) echo "unknown check '$1' (one of: ${all[*]})" >&2; return 2 ;;
  esac
}

failed=()
for name in "${wanted[@]}"; do
  echo "==> $name" >&2
  if ! run "$name"; then
    failed+=("$name")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "check.sh: failed: ${failed[*]}" >&2
  exit 1
fi
echo "check.sh: all checks passed (${wanted[*]})" >&2
