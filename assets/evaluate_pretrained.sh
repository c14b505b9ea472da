#!/usr/bin/env bash
# Scores the shipped relic models (the numbers in their cards and in the README), from the repo root:
#   bash assets/evaluate_pretrained.sh assets/eval
# For each model: a sample grid (one row per class), relic-feature FID/KID and class accuracy on
# N_RELIC samples, and Inception FID/KID on N_INCEPTION samples (slow on a CPU: about 5 images/s).
# Flow models sample with Euler, STEPS steps, guidance scale CFG.
set -euo pipefail
OUT=${1:?usage: evaluate_pretrained.sh OUT_DIR}
N_RELIC=${N_RELIC:-1000}
N_INCEPTION=${N_INCEPTION:-250}
STEPS=${STEPS:-20}
CFG=${CFG:-3.0}
MODELS=${MODELS:-"dit_tiny unet_tiny latent_dit_tiny"}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT"
for m in $MODELS; do
  ckpt="assets/$m.safetensors"
  python3 -m dit_mini.cli sample --checkpoint "$ckpt" --n 80 --nrow 8 --steps "$STEPS" \
      --cfg-scale "$CFG" --seed 1 --out "assets/${m}_samples.png"
  python3 -m dit_mini.cli sample --checkpoint "$ckpt" --n "$N_RELIC" --steps "$STEPS" \
      --cfg-scale "$CFG" --seed 0 --out "$OUT/${m}_all.png" --save-samples "$OUT/$m.pt"
  python3 -m dit_mini.cli fid --samples "$OUT/$m.pt" --n "$N_RELIC" --features relic --json \
      > "$OUT/${m}_relic.json"
  python3 -m dit_mini.cli fid --samples "$OUT/$m.pt" --n "$N_INCEPTION" --n-reference 500 \
      --features inception --json > "$OUT/${m}_inception.json"
  echo "$m: $(cat "$OUT/${m}_relic.json")"
done
