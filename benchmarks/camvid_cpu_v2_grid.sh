#!/usr/bin/env bash
# The camvid-cpu-v2, -v3 and -v4 grids (docs/results/camvid-cpu-v2/, -v3/, -v4/).
#
# v2 = camvid-cpu with the final training restarted from θ0 at every budget (lr 1e-2 annealed to
#      0 over 20 epochs of 256 crops, best epoch on D_R). Same θ0, agent, seeds and AL settings
#      as camvid-cpu. Random acquires exactly the same regions; the model-based strategies share
#      most but not all (one-thread runs round differently from the two-thread v1 runs).
# v3 = v2 with an agent whose game trains 4 SGD passes per step (agent.train_passes=4). The
#      baselines do not read the agent settings, so v3 reuses v2's baseline runs; only the agent
#      and the RALIS runs are new.
#
# θ0 and the upper bound never read the final-training settings: they are copied from the
# camvid-cpu grid when it is there (`ralis benchmark` checks that the settings they depend on
# match). To use both cores, v2 runs as two one-thread processes on disjoint strategies.
# Resumable: rerun after an interruption. About 2.5 h on 2 CPU cores (v2 ~80 min, v3 ~40, v4 ~30).
set -euo pipefail
cd "$(dirname "$0")/.."
RALIS=${RALIS:-.venv/bin/ralis}
V1=${V1:-runs/grid-camvid-cpu}
V2=${V2:-runs/grid-camvid-cpu-v2}
V3=${V3:-runs/grid-camvid-cpu-v3}
SEEDS=20,50,82

reuse() {  # reuse SRC_DIR DST_DIR NAME...: copy finished runs that are not there yet
    local src=$1 dst=$2
    shift 2
    mkdir -p "$dst"
    for name in "$@"; do
        if [ -d "$src/$name" ] && [ ! -e "$dst/$name" ]; then cp -r "$src/$name" "$dst/$name"; fi
    done
}

reuse "$V1" "$V2" theta0 full agent-s20
"$RALIS" pretrain --preset camvid-cpu-v2 --seed 20 --out "$V2/theta0" --resume --quiet
"$RALIS" benchmark --preset camvid-cpu-v2 --seeds $SEEDS --strategies random,entropy \
    --no-upper-bound --set threads=1 --out "$V2" --quiet &
"$RALIS" benchmark --preset camvid-cpu-v2 --seeds $SEEDS --strategies bald,ralis \
    --no-upper-bound --set threads=1 --out "$V2" --quiet &
wait
"$RALIS" benchmark --preset camvid-cpu-v2 --seeds $SEEDS --out "$V2" --quiet  # + upper bound, CSV
mkdir -p docs/results/camvid-cpu-v2
cp "$V2/results.csv" docs/results/camvid-cpu-v2/results.csv
"$RALIS" report docs/results/camvid-cpu-v2/results.csv --out docs/results/camvid-cpu-v2 --runs "$V2"

reuse "$V2" "$V3" theta0 full random-s20 random-s50 random-s82 entropy-s20 entropy-s50 \
    entropy-s82 bald-s20 bald-s50 bald-s82
"$RALIS" benchmark --preset camvid-cpu-v3 --seeds $SEEDS --out "$V3" --quiet
mkdir -p docs/results/camvid-cpu-v3
cp "$V3/results.csv" docs/results/camvid-cpu-v3/results.csv
"$RALIS" report docs/results/camvid-cpu-v3/results.csv --out docs/results/camvid-cpu-v3 --runs "$V3"

# v4 = v3 with the game's start model trained on half of D_T (agent.start_from=dt-half), the game
#      played on the other half. Again only the agent and the RALIS runs are new; the three RALIS
#      runs share one agent and run at once.
V4=${V4:-runs/grid-camvid-cpu-v4}
reuse "$V2" "$V4" theta0 full random-s20 random-s50 random-s82 entropy-s20 entropy-s50 \
    entropy-s82 bald-s20 bald-s50 bald-s82
"$RALIS" train-agent --preset camvid-cpu-v4 --seed 20 --out "$V4/agent-s20" --resume --quiet
for seed in 20 50 82; do
    "$RALIS" benchmark --preset camvid-cpu-v4 --seeds $seed --agent-seeds 20 --strategies ralis \
        --no-upper-bound --set threads=1 --out "$V4" --quiet &
done
wait
"$RALIS" benchmark --preset camvid-cpu-v4 --seeds $SEEDS --agent-seeds 20 --out "$V4" --quiet
mkdir -p docs/results/camvid-cpu-v4
cp "$V4/results.csv" docs/results/camvid-cpu-v4/results.csv
"$RALIS" report docs/results/camvid-cpu-v4/results.csv --out docs/results/camvid-cpu-v4 --runs "$V4"
