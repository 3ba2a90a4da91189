#!/usr/bin/env bash
# The embedded default: install, backfill January 2024 of the synthetic `demo` point set into the local
# lake (./data/lake) and DuckDB (./data/naia.duckdb), then show what landed. No server needed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
export DAGSTER_HOME=${DAGSTER_HOME:-$PWD/.dagster}
mkdir -p "$DAGSTER_HOME"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
.venv/bin/naia-backfill run demo --start "${START:-2024-01-01}" --end "${END:-2024-01-31}"
.venv/bin/python - <<'PY'
import duckdb
con = duckdb.connect("data/naia.duckdb", read_only=True)
print(con.sql("SELECT count(DISTINCT date) AS days, count(DISTINCT point) AS points, count(*) AS samples FROM demo"))
PY
echo "Open it in the Dagster UI:  DAGSTER_HOME=$DAGSTER_HOME .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000"
