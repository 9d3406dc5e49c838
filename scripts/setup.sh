#!/usr/bin/env bash
# Set up everything gzarchive needs on a fresh Debian machine (idempotent):
# Debian's Chromium for rendered listings, a venv with the project and its test tools,
# and pywb in its own venv (it pins an old redis client).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "== apt: installing chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "!! chromium missing and not root: rendered listings will be reported, not crawled" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "== venv .venv"
  "$PY" -m venv .venv
fi
echo "== pip: project + test tools"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

if [ "${GZARCHIVE_SKIP_PYWB:-0}" != 1 ]; then
  if [ ! -x .venv-pywb/bin/wayback ]; then
    echo "== pywb in .venv-pywb"
    "$PY" -m venv .venv-pywb
    .venv-pywb/bin/python -m pip install -q --upgrade pip
    .venv-pywb/bin/python -m pip install -q pywb
  fi
fi
echo "== setup done"
