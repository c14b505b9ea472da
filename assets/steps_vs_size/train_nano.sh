#!/usr/bin/env bash
# Trains the `nano` DiT of notebook 09's steps-versus-size race (assets/steps_vs_size/), from the
# repo root:  bash assets/steps_vs_size/train_nano.sh runs/steps_vs_size
# The recipe is dit-tiny's (assets/dit_tiny.md: 10,000 steps of 32 relics, AdamW 2e-3 with betas
# (0.9, 0.99), 200 warm-up steps, cosine decay, EMA 0.9995) with the nano preset, so both racers
# saw the same number of training images. (Until 2026-12-08 both had 2,103 steps of the
# first recipe: constant lr, EMA 0.999.)
# The EMA weights are stored as float16 safetensors (loading casts them back).
set -euo pipefail
OUT=${1:?usage: train_nano.sh OUT_DIR}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
python3 -m dit_mini.cli train --preset nano --data relics --n-images 50000 --steps 10000 \
    --batch-size 32 --lr 2e-3 --adam-beta2 0.99 --warmup-steps 200 --lr-decay cosine \
    --ema-decay 0.9995 --class-dropout-prob 0.1 \
    --objective flow --time-sampling logit_normal --seed 0 --checkpoint-every 500 --device cpu \
    --quiet --out "$OUT/run"
python3 - "$OUT" <<'PY'
import sys
from pathlib import Path
import torch
from dit_mini.registry import load_model, read_config, save_model

out = Path(sys.argv[1])
export = out / "run" / "ema.safetensors"
extra = {k: v for k, v in read_config(export).items() if k != "model"}
save_model(load_model(export), out / "nano.safetensors", extra=extra, dtype=torch.float16)
print("wrote", out / "nano.safetensors")
PY
