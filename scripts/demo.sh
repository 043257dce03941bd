#!/usr/bin/env bash
# The main job end to end on the embedded defaults (SQLite, a local artifact folder, no server):
# install, migrate, generate demo sales, ingest them, print what the store holds, then backtest the
# model families against SeasonalNaive, learn the ensemble, print the hold-out metrics, gate the
# candidate, register it, promote it to production and store its forecasts.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

salescast init
salescast generate --stores 5 --products 40 --days 730 --seed 7 --out .salescast/demo/sales.csv
salescast ingest .salescast/demo/sales.csv
salescast data summary
salescast pipeline run --horizon 28 --windows 2     # the default pipeline (SALESCAST_PIPELINE_MODELS)
