#!/usr/bin/env bash
# Trains the pretrained relic models shipped in assets/ (see each model card), from the repo root.
# How the shipped dit-tiny and unet-tiny were made (issue 24: one model per run, one thread each,
# 10,000 steps, cosine decay; the card of each model has its cost and scores):
#   DEVICE=cpu MODELS=dit_tiny STEPS=10000 MINUTES=120 LR=2e-3 ADAM_BETA2=0.99 WARMUP=200 \
#     LR_DECAY=cosine EMA=0.9995 bash assets/train_pretrained.sh runs/pretrained_i24
#   (the same with MODELS=unet_tiny and runs/pretrained_i24u)
# How latent-dit-tiny was made (the first recipe, three runs side by side for the same budget):
#   DEVICE=cpu MINUTES=25 bash assets/train_pretrained.sh runs/pretrained
#   DEVICE=cuda MINUTES=5 bash assets/train_pretrained.sh runs/pretrained   # the same on a GPU
# The runs train side by side (one thread each on a CPU), each for the same wall-clock budget;
# the recipe is the fast one of issue 4 (flow matching, logit-normal t, high learning rate,
# small batch). The EMA weights are then stored as float16 safetensors (half the size; loading
# casts them back). RESUME=1 continues the runs saved in OUT_DIR for another MINUTES (exact
# resume). MODELS picks some of the three; LR, ADAM_BETA2, WARMUP, LR_DECAY and EMA change the
# recipe.
set -euo pipefail
OUT=${1:?usage: train_pretrained.sh OUT_DIR}
DEVICE=${DEVICE:-cpu}
MINUTES=${MINUTES:-25}
STEPS=${STEPS:-100000}
N=${N_IMAGES:-50000}
MODELS=${MODELS:-"dit_tiny unet_tiny latent_dit_tiny"}
LR=${LR:-2e-3}
ADAM_BETA2=${ADAM_BETA2:-0.999}
WARMUP=${WARMUP:-100}
LR_DECAY=${LR_DECAY:-none}
EMA=${EMA:-0.999}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
[ "$DEVICE" = cpu ] && export OMP_NUM_THREADS=1
mkdir -p "$OUT"
COMMON=(--data relics --n-images "$N" --steps "$STEPS" --minutes "$MINUTES" --batch-size 32
        --lr "$LR" --adam-beta2 "$ADAM_BETA2" --warmup-steps "$WARMUP" --lr-decay "$LR_DECAY"
        --ema-decay "$EMA" --class-dropout-prob 0.1 --objective flow
        --time-sampling logit_normal --seed 0 --checkpoint-every 500 --device "$DEVICE" --quiet
        ${RESUME:+--resume})
# Build the Relics cache once, so the three runs do not all render 50,000 images.
python3 -c "from dit_mini.data.relics import make_relics; make_relics($N, seed=0)"
declare -A EXTRA=([dit_tiny]="--preset tiny" [unet_tiny]="--preset unet-tiny"
                  [latent_dit_tiny]="--preset tiny --patch-size 1 --vae assets/vae.safetensors")
for name in $MODELS; do
  [ -n "${EXTRA[$name]:-}" ] || { echo "unknown model $name (dit_tiny, unet_tiny, latent_dit_tiny)" >&2; exit 2; }
  # shellcheck disable=SC2086
  python3 -m dit_mini.cli train ${EXTRA[$name]} "${COMMON[@]}" --out "$OUT/$name" > "$OUT/$name.log" 2>&1 &
done
wait
python3 - "$OUT" $MODELS <<'PY'
import json, sys
from pathlib import Path
import torch
from dit_mini.registry import load_model, read_config, save_model
from dit_mini.storage import load_checkpoint

out = Path(sys.argv[1])
for name in sys.argv[2:]:
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
