#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only when they are missing.
# Called by `make test` / `make demo`; safe to run again (it does nothing when all is there).
set -euo pipefail

missing=()
# PostgreSQL server binaries (initdb, pg_ctl): the PostgreSQL tests start a throwaway cluster.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
# redis-server: the worker tests start a throwaway Redis (the Celery broker and the locks).
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
# Debian's Chromium: the dashboard's browser tests drive it through Playwright (Playwright's
# own browser download cannot work here: no internet but the package registries).
[ -x /usr/bin/chromium ] || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "system-deps: installing ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "system-deps: need root (or sudo) to apt-get install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
