"""Accuracy curve of a quickstart variant (issue 24, 2026-12-07): `train_and_grade` with one
thread, 500 guided samples (Euler 20, guidance 3) graded every K steps. Appends to curves.jsonl.

    DIT_MINI_THREADS=1 python assets/ttr/race2min/curve.py '{"name": "b2-0.95-lr4e-3",
        "train": {"steps": 3000, "adam_beta2": 0.95, "lr": 4e-3}}'

The first two records ran on the quickstart recipe of then (lr 3e-3, beta2 0.999, changed by
"train"); the last two on the recipe of now (lr 4e-3, beta2 0.95), changed by "train".
"""
import json, os, sys, time, dataclasses
import torch
from dit_mini.train.recipes import RECIPES, model_from_preset
from dit_mini.diffusion.losses import DiffusionConfig
from dit_mini.data.datasets import load_dataset
from dit_mini.studies.graded_training import train_and_grade
spec = json.loads(sys.argv[1])
r = RECIPES["quickstart"]
cfg = dataclasses.replace(r.train, **spec.get("train", {}))
diff = DiffusionConfig(**{**r.diffusion, **spec.get("diffusion", {})})
data = load_dataset("relics", train=True, n=r.n_images, size=32)
torch.manual_seed(cfg.seed)
model = model_from_preset(spec.get("preset", "nano"), 32, 10, 0.1)
t0 = time.perf_counter()
res, points = train_and_grade(model, diff, data, cfg, every_steps=spec.get("every", 250), n_eval=500, sampler="euler", sample_steps=20, cfg_scale=3.0)
rec = dict(spec=spec, wall=round(time.perf_counter()-t0), points=[(p["step"], round(p["class_accuracy"],3), round(float(p["fid"]),2)) for p in points if p["step"] >= 1000])
print(json.dumps(rec), flush=True)
with open("assets/ttr/race2min/curves.jsonl", "a") as f: f.write(json.dumps(rec) + "\n")
