#!/usr/bin/env bash
# The camvid-cpu-v5 grid (docs/results/camvid-cpu-v5/): rectangles vs SLIC superpixels at equal
# pixel budgets, 5 paired seeds, a 100-episode agent per region kind, the final-training
# convergence check.
#
# v5 = camvid-cpu-v4 (final training restarted from θ0, 4-pass game reward, the game's start
#      model on half of D_T) with 100 DQN episodes (ε linear over 50) and budgets 480 / 960 /
#      1920 regions (7.8 / 15.6 / 31% of the pool's pixels). The slic grid uses the same preset
#      with --regions slic: 24 SLIC segments per image (as many as rectangles), budgets counted
#      in pixels of one 45x40 rectangle, so both kinds spend the same pixels.
#
# θ0 and the upper bound train on whole images, so the slic grid reuses the rect grid's.
# One agent per region kind (seed 20) serves all five RALIS seeds: five 100-episode agents per
# kind would take ~25 h on 2 cores (see NOTES.md).
#
# Resumable: every command skips finished cells and continues interrupted ones, so rerun the
# script after an interruption. About 13.5 CPU-core hours: ~7 h on 2 cores (NOTES.md).
set -euo pipefail
cd "$(dirname "$0")/.."
RALIS=${RALIS:-.venv/bin/ralis}
PY=${PY:-.venv/bin/python}
V=${V:-runs/grid-camvid-cpu-v5}          # rectangles
S=${S:-runs/grid-camvid-cpu-v5-slic}     # superpixels
SEEDS=20,50,82,12,4560                   # the paper's RALIS CamVid seeds
OUT=docs/results/camvid-cpu-v5
ONE=(--set threads=1 --quiet)

# 1. θ0 (shared by both kinds)
"$RALIS" pretrain --preset camvid-cpu-v5 --seed 20 --out "$V/theta0" --resume "${ONE[@]}"
mkdir -p "$S"
[ -e "$S/theta0" ] || cp -r "$V/theta0" "$S/theta0"

# 2. each kind's grid in one driver (a driver locks its grid folder), each a local pool of two
#    one-thread workers: 4 processes on 2 cores while both have work. A RALIS run starts when its
#    kind's agent has finished; the upper bound starts beside the rect agent.
"$RALIS" benchmark --preset camvid-cpu-v5 --seeds $SEEDS --agent-seeds 20 --out "$V" \
    --executor local --jobs 2 --threads-per-job 1 --quiet &
rect=$!
"$RALIS" benchmark --preset camvid-cpu-v5 --regions slic --seeds $SEEDS --agent-seeds 20 \
    --no-upper-bound --out "$S" --executor local --jobs 2 --threads-per-job 1 --quiet
wait "$rect"

# 3. the upper bound trained to convergence. The grid's upper bound uses θ0's recipe (at most
#    80 epochs, stopped after 10 without a better D_R score); D_R jumps by several points from
#    epoch to epoch, so it stopped at epoch 33 while still improving. This one waits 30 epochs
#    (at most 200) and is the table's `full` row; the grid's stays in "$V/results.csv".
"$RALIS" upper-bound --preset camvid-cpu-v5 --seed 20 --out "$V-extra/full-patience30" --resume \
    --set train.pretrain_patience=30 --set train.pretrain_epochs=200 "${ONE[@]}"

# 4. one table: rect rows (θ0 once), slic rows, the converged upper bound; the report with both
#    grids' runs and agents
mkdir -p "$OUT"
"$PY" - "$V/results.csv" "$S/results.csv" "$V-extra/full-patience30" "$OUT/results.csv" <<'EOF'
import csv, sys
from pathlib import Path
from ralis.report import collect, write_csv
rect, slic, full, out = sys.argv[1:]
rows = [r for r in csv.DictReader(open(rect)) if r["strategy"] != "full"]
rows += [r for r in csv.DictReader(open(slic)) if r["strategy"] not in ("theta0", "full")]
rows += collect([Path(full)], base=Path(full).parent)  # run_dir: as in its grid folder
write_csv(rows, Path(out))
EOF
"$RALIS" report "$OUT/results.csv" --out "$OUT" --runs "$V" --runs "$S"

# 5. final-training convergence: twice the epochs on random-s20's regions at 960 and 1920
[ -e "$OUT/final_training_convergence.json" ] ||
  "$PY" benchmarks/final_training.py "$V/random-s20" --pretrained "$V/theta0/model.safetensors" \
      --budgets 960,1920 --recipes as-run,epochs-x2 --threads 1 \
      --out "$OUT/final_training_convergence.json"
