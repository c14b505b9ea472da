#!/usr/bin/env bash
# Train the shipped text-to-video DiT (assets/video_dit.safetensors) on the CPU, in two stages:
# stage 1 at lr 3e-3 (stopped at step 3,500), stage 2 from stage 1's EMA weights at lr 6e-4.
# Both checkpoint every 250 steps into runs/; adding --resume to a stage continues it exactly.
# The clip checker that grades it: python -m dit_mini.clip_checker (see assets/clip_checker.md).
# Measured cost: see assets/video_dit.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
COMMON=(--n-clips 8000 --batch-size 16 --seed 0 --threads 1)
nice -n 10 python -m dit_mini.text2video --out-dir runs/video_dit --steps 3500 --lr 3e-3 "${COMMON[@]}"
nice -n 10 python -m dit_mini.text2video --out-dir runs/video_dit2 --init runs/video_dit/checkpoint.pt \
    --steps "${STAGE2_STEPS:-1500}" --lr 6e-4 "${COMMON[@]}" --export assets/video_dit.safetensors
