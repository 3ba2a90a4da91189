#!/usr/bin/env bash
# Install, start the real services (Kafka, QuestDB, S3, PostgreSQL) on 127.0.0.1, run every test tier.
# Extra arguments go to pytest (e.g. `scripts/test.sh -m "not integration"` for the fast tiers only).
# Services are stopped at the end unless NAIA_KEEP_SERVICES=1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
scripts/install-browser.sh   # Debian's chromium for the browser test
scripts/services.sh up
if [ "${NAIA_KEEP_SERVICES:-0}" != "1" ]; then
  trap 'scripts/services.sh down >/dev/null 2>&1 || true' EXIT
fi
set -a
# shellcheck disable=SC1091
source .services/env
set +a
.venv/bin/python -m pytest --durations=20 "$@"
