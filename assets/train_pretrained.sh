#!/usr/bin/env bash
# Trains the pretrained relic models shipped in assets/ (see each model card), from the repo root:
#   DEVICE=cpu MINUTES=25 bash assets/train_pretrained.sh runs/pretrained   # how the shipped files were made
#   DEVICE=cuda MINUTES=5 bash assets/train_pretrained.sh runs/pretrained   # the same recipe on a GPU
# The three runs train side by side (one thread each on a CPU), each for the same wall-clock budget,
# with the fast recipe of issue 4 (flow matching, logit-normal t, high learning rate, small batch).
# The EMA weights are then stored as float16 safetensors (half the size; loading casts them back).
# RESUME=1 continues the three runs saved in OUT_DIR for another MINUTES (exact resume).
set -euo pipefail
OUT=${1:?usage: train_pretrained.sh OUT_DIR}
DEVICE=${DEVICE:-cpu}
MINUTES=${MINUTES:-25}
STEPS=${STEPS:-100000}
N=${N_IMAGES:-50000}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
[ "$DEVICE" = cpu ] && export OMP_NUM_THREADS=1
mkdir -p "$OUT"
COMMON=(--data relics --n-images "$N" --steps "$STEPS" --minutes "$MINUTES" --batch-size 32
        --lr 2e-3 --warmup-steps 100 --ema-decay 0.999 --cfg-dropout 0.1 --objective flow
        --time-sampling logit_normal --seed 0 --checkpoint-every 500 --device "$DEVICE" --quiet
        ${RESUME:+--resume})
# Build the Relics cache once, so the three runs do not all render 50,000 images.
python3 -c "from dit_mini.data.relics import make_relics; make_relics($N, seed=0)"
python3 -m dit_mini.cli train --preset tiny "${COMMON[@]}" --out "$OUT/dit_tiny" > "$OUT/dit_tiny.log" 2>&1 &
python3 -m dit_mini.cli train --preset unet-tiny "${COMMON[@]}" --out "$OUT/unet_tiny" > "$OUT/unet_tiny.log" 2>&1 &
python3 -m dit_mini.cli train --preset tiny --patch-size 1 --vae assets/vae.safetensors "${COMMON[@]}" \
    --out "$OUT/latent_dit_tiny" > "$OUT/latent_dit_tiny.log" 2>&1 &
wait
python3 - "$OUT" <<'PY'
import json, sys
from pathlib import Path
import torch
from dit_mini.registry import load_model, read_config, save_model
from dit_mini.storage import load_checkpoint

out = Path(sys.argv[1])
for name in ("dit_tiny", "unet_tiny", "latent_dit_tiny"):
    export = out / name / "ema.safetensors"
    extra = {k: v for k, v in read_config(export).items() if k != "model"}
    save_model(load_model(export), out / f"{name}.safetensors", extra=extra, dtype=torch.float16)
    state = load_checkpoint(out / name / "checkpoint.pt")
    history = [round(float(x), 5) for x in state["history"]]
    record = {"step": int(state["step"]), "history": history, "config": state["config"],
              "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}
    (out / f"{name}.json").write_text(json.dumps(record))
    print(name, "steps", record["step"], "final loss", sum(history[-100:]) / len(history[-100:]))
PY
