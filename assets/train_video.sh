#!/usr/bin/env bash
# Train the shipped text-to-video DiT (assets/video_dit.safetensors) and its clip checker on the
# CPU. The video DiT run checkpoints every 250 steps into runs/video_dit; rerun with --resume to
# continue after an interruption. Measured cost: see assets/video_dit.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
nice -n 10 python -m dit_mini.text2video --out-dir runs/video_dit --n-clips 8000 --steps 6000 \
    --batch-size 16 --lr 3e-3 --seed 0 --threads 1 --export assets/video_dit.safetensors "$@"
