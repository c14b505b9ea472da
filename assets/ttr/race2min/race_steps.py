"""Fixed-step quickstart variants (issue 24, 2026-12-07): `quickstart()` for N steps with one
thread (the step count, not the load, decides the model), then 500 samples from its checkpoint
(Euler 20, guidance 3, seed 1) graded by the relic classifier. Appends to race_steps.jsonl.

    DIT_MINI_THREADS=1 python assets/ttr/race2min/race_steps.py '{"name": "b2-0.95", "steps": 2100,
        "train": {"adam_beta2": 0.95}}'

The six records here ran before TrainConfig.adam_beta2 existed, on the quickstart recipe of then
(lr 3e-3, beta2 0.999); a top-level "beta2" replaced `dit_mini.train.session.make_adamw` by one
with betas (0.9, beta2), which is what the field does now. Training ran with one thread
(cpu_s ~ wall_s; two runs side by side); "threads" is the count after sampling, not training.
"""
import json, os, sys, time, dataclasses
import torch
from dit_mini.train.recipes import RECIPES, quickstart, sample_images
from dit_mini.metrics.classifier import score_samples
from dit_mini.models.pretrained import load_pretrained
spec = json.loads(sys.argv[1])
name, steps = spec["name"], spec["steps"]
from dit_mini.models.dit import DIT_PRESETS
for k, v in spec.get("presets", {}).items(): DIT_PRESETS[k] = v
base = RECIPES["quickstart"]
RECIPES[name] = dataclasses.replace(base, train=dataclasses.replace(base.train, **spec.get("train", {})), **spec.get("recipe", {}))
t0 = time.perf_counter(); c0 = time.process_time()
run = quickstart(f"runs/race2min/{name}", minutes=60, steps=steps, recipe=name, quiet=True)
train_s = time.perf_counter() - t0; cpu = time.process_time() - c0
images, y = sample_images(run["checkpoint"], 500, "euler", 20, 3.0, seed=1)
score = score_samples(images, y, load_pretrained("relic-classifier"))
rec = dict(spec=spec, steps=run["result"].step, wall_s=round(train_s, 1), cpu_s=round(cpu, 1),
           threads=torch.get_num_threads(), load=[round(x, 2) for x in os.getloadavg()],
           acc=score["class_accuracy"], fid=round(float(score["fid"]), 3))
print(json.dumps(rec), flush=True)
with open("assets/ttr/race2min/race_steps.jsonl", "a") as f: f.write(json.dumps(rec) + "\n")
