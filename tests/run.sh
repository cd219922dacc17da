#!/usr/bin/env bash
# The project's checks: lint, the core/gui import contract, then the whole suite under Xvfb.
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check .
ruff format --check .
lint-imports
xvfb-run -a -s "-screen 0 1920x1080x24" python3 -m pytest -q "$@"
