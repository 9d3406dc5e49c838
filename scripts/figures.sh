#!/usr/bin/env bash
# The README's demo figures: runs what scripts/demo.sh runs and prints them as a table;
# --update-readme writes them into README.md (benchmarks/readme_figures.py --help).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python benchmarks/readme_figures.py "$@"
