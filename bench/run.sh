#!/usr/bin/env bash
# make bench: its own cluster (port 28817) with fixed settings, the
# extension installed from this checkout, then bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export SG_PORT="${BENCH_PORT:-28817}" SG_DB=spendguard_bench
bash scripts/setup.sh
python3 -c 'import matplotlib' 2>/dev/null || pip install --quiet matplotlib ||
  echo "matplotlib could not be installed: the report will have no chart" >&2
bash scripts/cluster.sh install
bash scripts/cluster.sh fresh
source scripts/env.sh
export PG_BIN
python3 bench/bench.py
