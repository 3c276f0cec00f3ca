#!/usr/bin/env bash
# Install the project (editable, with its test tools) into .venv, created if missing, and
# run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt -e ".[dev]"
exec .venv/bin/python -m pytest -q "$@"
