#!/usr/bin/env bash
# The demo on object storage: start the development S3 server (SeaweedFS on 127.0.0.1), backfill three days of
# the synthetic `demo` point set into s3://$NAIA_S3_BUCKET/demo with its DuckDB view over the S3 objects, then
# query the view and validate the days. Its own Dagster instance and DuckDB file, beside the local demo's.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
scripts/services.sh up s3
set -a; . .services/env; set +a
export DAGSTER_HOME=${DAGSTER_HOME:-$PWD/data/dagster-s3}
export NAIA_DUCKDB_PATH=${NAIA_DUCKDB_PATH:-$PWD/data/naia-s3.duckdb}
export NAIA_LAKE_URL=${NAIA_LAKE_URL:-s3://$NAIA_S3_BUCKET/demo}
mkdir -p "$DAGSTER_HOME"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
START=${START:-2024-01-01} END=${END:-2024-01-03}
.venv/bin/naia-backfill run demo --start "$START" --end "$END"
.venv/bin/python - <<'PY'
from naia_backfill.sinks.duckdb_conn import connect_warehouse

# httpfs from the duckdb-extension-httpfs package and an S3 secret from the AWS_* variables, in memory only
con = connect_warehouse(read_only=True)
print(con.sql("SELECT date, count(DISTINCT point) AS points, count(*) AS samples FROM demo GROUP BY date ORDER BY date"))
PY
.venv/bin/naia-backfill validate demo --start "$START" --end "$END" --no-record
