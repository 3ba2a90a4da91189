#!/usr/bin/env bash
# Real Kafka, QuestDB, S3 (SeaweedFS), PostgreSQL and MongoDB-protocol (FerretDB) servers on 127.0.0.1.
#
#   scripts/services.sh up     [SERVICE...]   fetch or build (first time), start, wait until ready, write .services/env
#   scripts/services.sh down   [SERVICE...]   stop by PID: graceful first, SIGKILL after a timeout
#   scripts/services.sh status [SERVICE...]   print each service's state (exit 1 if any is not running)
#   scripts/services.sh env    [SERVICE...]   print sourceable `export` lines
#   scripts/services.sh reset  [SERVICE...]   stop and delete the service's data (downloads are kept)
#
# SERVICE is one of: kafka questdb s3 postgres mongodb (default: all of them).
# The work is done by naia_backfill/dev/services (also `naia-backfill services ...`); this wrapper stays so that
# docs and CI keep working. NAIA_PYTHON picks the interpreter (default: the checkout's .venv).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${NAIA_PYTHON:-$ROOT/.venv/bin/python}"
if [[ ! -x $PY ]]; then
  echo "[services] ERROR: $PY not found: run scripts/install.sh first (or set NAIA_PYTHON)" >&2
  exit 1
fi
exec "$PY" -m naia_backfill.dev.services "$@"
