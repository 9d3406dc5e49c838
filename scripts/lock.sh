#!/usr/bin/env bash
# Refresh the lock files from pyproject.toml with `uv pip compile` (uv from PyPI, in a
# throwaway venv unless UV=/path/to/uv). Versions already locked are kept while they
# satisfy pyproject.toml; pass --upgrade (or --upgrade-package NAME) for newer ones.
#   requirements.lock       the project + the `embedded` extra (what a package needs)
#   requirements-test.lock  the same versions + the test tools (what setup.sh installs)
#   requirements-pywb.lock  pywb for .venv-pywb (`gzarchive warc replay`)
# Resolved for CPython 3.11 on this platform (Linux x86_64).
set -euo pipefail
cd "$(dirname "$0")/.."
PYWB=${PYWB:-pywb==2.10.0}
UV=${UV:-}
if [ -z "$UV" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "${PYTHON:-python3}" -m venv "$tmp/venv"
  "$tmp/venv/bin/python" -m pip install -q uv
  UV="$tmp/venv/bin/uv"
fi
opts=(--python-version 3.11 --annotation-style line --custom-compile-command "bash scripts/lock.sh" -q)
"$UV" pip compile pyproject.toml --extra embedded "${opts[@]}" "$@" -o requirements.lock
"$UV" pip compile pyproject.toml --extra embedded --extra test -c requirements.lock \
  "${opts[@]}" "$@" -o requirements-test.lock
echo "$PYWB" | "$UV" pip compile - "${opts[@]}" "$@" -o requirements-pywb.lock
echo "== locked: requirements.lock requirements-test.lock requirements-pywb.lock"
