#!/usr/bin/env bash
# The main job end to end on the embedded defaults (SQLite, a local artifact folder, no server):
# install, migrate, generate demo sales, ingest them, print what the store holds, then backtest the
# model families against SeasonalNaive, learn the ensemble, print the hold-out metrics, gate the
# candidate, register it, promote it to production and store its forecasts; last, serve the forecast
# API on http://127.0.0.1:8000 (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
bash scripts/web-deps.sh                            # the dashboard's charting library (npm)
export PATH="$PWD/.venv/bin:$PATH"

salescast init
salescast generate --stores 5 --products 40 --days 730 --seed 7 --out .salescast/demo/sales.csv
salescast ingest .salescast/demo/sales.csv
salescast data summary
salescast pipeline run --horizon 28                 # the default pipeline of daily data (SALESCAST_PIPELINE_MODELS=auto)

# Demo only: GET routes answer without an API key (never set this in production). The admin key printed
# here is shown once; it can promote, roll back and run deployments over the API.
export SALESCAST_OPEN_READ=true
salescast keys create demo-admin --scope admin
echo "dashboard: http://127.0.0.1:${SALESCAST_SERVE_PORT:-8000}/  (enter the admin key above to promote or roll back)"
echo "try:  curl 'http://127.0.0.1:${SALESCAST_SERVE_PORT:-8000}/api/v1/forecast/top-products?time_period=month&category=Grocery&limit=5'"
exec salescast serve --host 127.0.0.1 --port "${SALESCAST_SERVE_PORT:-8000}"
