#!/usr/bin/env bash
# The whole test suite, lint and types (run scripts/setup.sh once before).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check crawler pipelines storage tests benchmarks
.venv/bin/mypy crawler pipelines storage
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
