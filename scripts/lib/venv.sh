# Sourced by the scripts: make or refresh .venv so that it matches pyproject.toml.
# Usage: ensure_venv [extra]   (extra "dev" adds the test and lint tools)

ensure_venv() {
  local extra="${1:-}"
  # Tests that run the scripts in a copy sharing this .venv must not reinstall it there
  # (an editable install would then point at the copy).
  if [ "${PMS_SKIP_INSTALL:-0}" = "1" ] && [ -x .venv/bin/python ]; then
    return 0
  fi
  local python="${PYTHON:-}"
  if [ -z "$python" ]; then
    for candidate in python3.13 python3.12 python3.11 python3; do
      if command -v "$candidate" >/dev/null 2>&1 &&
         "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
        python="$candidate"; break
      fi
    done
  fi
  if [ -z "$python" ]; then
    echo "error: Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)" >&2
    return 1
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv with $python" >&2
    "$python" -m venv .venv
  fi
  local want
  want="$(sha256sum pyproject.toml | cut -c1-16)"
  # A venv installed with the dev extras also satisfies a plain install.
  if [ "$(cat .venv/.pms-installed-dev 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  if [ -z "$extra" ] && [ "$(cat .venv/.pms-installed- 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  local spec="."
  [ -n "$extra" ] && spec=".[$extra]"
  echo "==> installing dependencies ($spec)" >&2
  local log=".venv/pip-install.log"
  if ! { .venv/bin/python -m pip install --upgrade pip &&
         .venv/bin/python -m pip install -e "$spec"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "error: dependency installation failed (full log: $log)" >&2
    return 1
  fi
  echo "$want" > ".venv/.pms-installed-$extra"
}
