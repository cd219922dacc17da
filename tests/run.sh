#!/usr/bin/env bash
# The project's checks: lint, the core/gui import contract, mypy over core, then the whole
# suite under Xvfb.
# Uses the virtual environment .ci/setup made (.venv, or $VENV) when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] && export PATH="$PWD/$VENV/bin:$PATH"
ruff check .
ruff format --check .
lint-imports
# Type-check posescope.core: the repository root is the package, so link it as `posescope`
# under a temporary folder that mypy searches first.
MYPY_ROOT=$(mktemp -d)
trap 'rm -rf "$MYPY_ROOT"' EXIT
ln -s "$PWD" "$MYPY_ROOT/posescope"
MYPYPATH="$MYPY_ROOT" mypy -p posescope.core
if command -v xvfb-run >/dev/null 2>&1; then
    xvfb-run -a -s "-screen 0 1920x1080x24" python -m pytest -q "$@"
else  # macOS, Windows, or a desktop session: Qt uses the screen there is
    python -m pytest -q "$@"
fi
