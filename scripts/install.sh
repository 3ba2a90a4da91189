#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install naia_backfill with its test dependencies. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "naia_backfill needs Python 3.11 or newer"'
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check uv
.venv/bin/uv pip install -q --python .venv/bin/python -e ".[dev]"
echo "installed: $(.venv/bin/naia-backfill --help >/dev/null && echo naia-backfill ok)"
