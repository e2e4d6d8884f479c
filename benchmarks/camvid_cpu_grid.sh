#!/usr/bin/env bash
# The published camvid-cpu grid (docs/results/camvid-cpu/): random, entropy, BALD and RALIS,
# seeds 20/50/82, budgets 480/960/1440/1920 regions, one RALIS agent (seed 20), the upper bound.
# Resumable: rerun after an interruption. About 1.5 h on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
RALIS=${RALIS:-.venv/bin/ralis}
OUT=${OUT:-runs/grid-camvid-cpu}
# camvid-cpu as it was in ralis 0.4, when this grid ran (0.5 trains θ0 to convergence and
# restarts each final training from θ0 on D_T + the acquired regions)
V04=(--set train.pretrain_epochs=80 --set train.pretrain_patience=10 --set train.final_from=al
     --set train.final_with_start_set=false --set train.final_lr=null
     --set train.final_schedule=exponential --set train.final_patience=5
     --set train.final_samples_per_epoch=null)
"$RALIS" benchmark --preset camvid-cpu "${V04[@]}" --seeds 20,50,82 \
    --strategies random,entropy,bald,ralis --out "$OUT" --quiet
mkdir -p docs/results/camvid-cpu
cp "$OUT/results.csv" docs/results/camvid-cpu/results.csv
"$RALIS" report docs/results/camvid-cpu/results.csv --out docs/results/camvid-cpu --runs "$OUT"
