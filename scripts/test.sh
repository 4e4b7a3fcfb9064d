#!/bin/bash
# The whole test suite, as CI runs it: install what it needs, then lint, type-check and test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
.venv/bin/ruff check src tests
.venv/bin/ruff format --check src tests
.venv/bin/mypy
exec .venv/bin/python -m pytest -q "$@"
