#!/usr/bin/env bash
# The published camvid-cpu grid (docs/results/camvid-cpu/): random, entropy, BALD and RALIS,
# seeds 20/50/82, budgets 480/960/1440/1920 regions, one RALIS agent (seed 20), the upper bound.
# Resumable: rerun after an interruption. About 1.5 h on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
RALIS=${RALIS:-.venv/bin/ralis}
OUT=${OUT:-runs/grid-camvid-cpu}
"$RALIS" benchmark --preset camvid-cpu --seeds 20,50,82 --strategies random,entropy,bald,ralis \
    --out "$OUT" --quiet
mkdir -p docs/results/camvid-cpu
cp "$OUT/results.csv" docs/results/camvid-cpu/results.csv
"$RALIS" report docs/results/camvid-cpu/results.csv --out docs/results/camvid-cpu --runs "$OUT"
