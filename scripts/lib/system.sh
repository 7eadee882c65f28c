# Sourced by the scripts: system packages the project needs, from Debian's archive.
# Usage: ensure_system_package COMMAND PACKAGE [why]

ensure_system_package() {
  local command="$1" package="$2" why="${3:-}"
  if command -v "$command" >/dev/null 2>&1 || [ -x "/usr/sbin/$command" ]; then
    return 0
  fi
  if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: $command is missing${why:+ ($why)}: install the $package package as root" >&2
    return 1
  fi
  echo "==> installing $package (Debian package)${why:+ for $why}" >&2
  local log
  log="$(mktemp)"
  # Install only: Debian's packages start their own service (nginx's default site on :80)
  # unless policy-rc.d says no; the project runs its own instance.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
  fi
  local status=0
  { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package"
  } >"$log" 2>&1 || status=$?
  [ "$made_policy" = 1 ] && rm -f "$policy"
  if [ "$status" != 0 ]; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    echo "error: $package could not be installed" >&2
    return 1
  fi
  rm -f "$log"
}
