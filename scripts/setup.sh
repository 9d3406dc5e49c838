#!/usr/bin/env bash
# Set up everything gzarchive needs on a fresh Debian machine (idempotent):
# Debian's Chromium (its headless shell) for rendered listings, a venv with the project, its embedded store
# (the `embedded` extra: SecantusDB, run as a separate server process) and its test
# tools at the exact versions of requirements-test.lock, and pywb in its own venv (it
# pins an old redis client). Refresh the lock files as the README says ("Licence and
# dependencies").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromium-headless-shell >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    # chromium-headless-shell renders the listings (half the CPU of chromium's headless
    # mode); chromium is the fallback and the headed browser.
    echo "== apt: installing chromium-headless-shell chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-headless-shell chromium >/dev/null
  else
    echo "!! chromium-headless-shell or chromium missing and not root: listings render in" \
         "whichever is installed; with neither they are reported, not crawled" >&2
  fi
fi
if ! command -v redis-server >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "== apt: installing redis-server (gzarchive worker/frontier, the fleet tests)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "== venv .venv"
  "$PY" -m venv .venv
fi
echo "== pip: locked dependencies (requirements-test.lock), then the project"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements-test.lock
.venv/bin/python -m pip install -q --no-deps -e '.[embedded,test]'

if [ "${GZARCHIVE_SKIP_PYWB:-0}" != 1 ]; then
  if [ ! -x .venv-pywb/bin/wayback ]; then
    echo "== pywb in .venv-pywb"
    "$PY" -m venv .venv-pywb
    .venv-pywb/bin/python -m pip install -q --upgrade pip
    .venv-pywb/bin/python -m pip install -q -r requirements-pywb.lock
  fi
fi
echo "== setup done"
