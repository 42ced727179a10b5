#!/usr/bin/env bash
# The recipe of models/codec-q1 … q4 (make models-codec): one base codec trained at λ = 0.01 (5,000 steps), then each
# quality level fine-tuned from it at its own λ (1,000 steps each: cheaper than four runs from scratch, the
# transforms being shared work). Seeded; on the same machine and torch build the weights come out the same.
#   usage: scripts/train_codecs.sh PHOTOS_TRAIN_FOLDER RUNS_FOLDER      (EPOCHS_SCALE=4 for a GPU: 4× the steps)
set -euo pipefail
photos=${1:-data/photos/train}
runs=${2:-runs}
edgeae=${EDGEAE:-.venv/bin/python -m edgeae.cli}
scale=${EPOCHS_SCALE:-1}
common="--arch codec --data $photos --crop-size 128 --batch-size 8 --samples-per-epoch 1600 --val-samples 256
        --lr-schedule cosine --grad-clip 1 --seed 0 --device cpu"
rm -rf "$runs/codec-base"
$edgeae train $common --rd-lambda 0.01 --epochs $((25 * scale)) --lr 5e-4 --out "$runs/codec-base"
level=1
for lambda in ${LAMBDAS:-0.0015 0.005 0.02 0.08}; do
  rm -rf "$runs/codec-q$level"
  $edgeae train $common --rd-lambda "$lambda" --epochs $((5 * scale)) --lr 2e-4 --init "$runs/codec-base" \
    --out "$runs/codec-q$level"
  level=$((level + 1))
done
