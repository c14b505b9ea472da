"""One row of the equal-images sweep (assets/ttr/RESULTS.md, table 1): train a recipe for a number
of steps with the trainer's algorithm (AdamW, warm-up, clipping, label dropout, EMA with warm-up)
and grade EMA and raw weights with the relic classifier at each checkpoint. GPU or CPU."""

import argparse
import copy
import json
import os
import time

import numpy as np
import torch
from PIL import Image

from dit_mini.metrics.classifier import load_classifier, score_samples
from dit_mini.diffusion.losses import DiffusionConfig, generate, make_loss
from dit_mini.models.dit import DiT, dit_config
from dit_mini.diffusion.guidance import drop_labels
from dit_mini.data.relics import make_relics

p = argparse.ArgumentParser()
p.add_argument("--name", required=True)
p.add_argument("--preset", default="nano")
p.add_argument("--model", default="{}")
p.add_argument("--diff", default='{"objective": "flow"}')
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--warmup", type=int, default=100)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--ema", type=float, default=0.995)
p.add_argument("--evals", default="500,1000,1500,2000,3000")
p.add_argument("--steps", type=int, default=20)
p.add_argument("--cfg", default="1,4")
p.add_argument("--sampler", default=None)
p.add_argument("--n_data", type=int, default=20000)
p.add_argument("--wd", type=float, default=0.0)
p.add_argument("--clip", type=float, default=1.0)
p.add_argument("--drop", type=float, default=0.1)
p.add_argument("--out", default=os.environ.get("OUT", "/tmp"))
a = p.parse_args()
dev = "cuda" if torch.cuda.is_available() else "cpu"
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
if dev == "cpu":
    torch.set_num_threads(1)
torch.manual_seed(0)
data = make_relics(a.n_data, 0)
X, Y = data.images.to(dev), data.labels.to(dev)
model = DiT(dit_config(a.preset, **json.loads(a.model))).to(dev)
ema = copy.deepcopy(model).requires_grad_(False)
dc = DiffusionConfig(**json.loads(a.diff))
loss_fn = make_loss(dc)
opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.wd)
gen = torch.Generator(dev).manual_seed(0)
clf = load_classifier(device=dev)
evals = [int(s) for s in a.evals.split(",")]
cfgs = [float(c) for c in a.cfg.split(",")]
step, t0, losses = 0, time.perf_counter(), []
log = open(f"{a.out}/sweep_{a.name}.jsonl", "w")
for target in evals:
    model.train()
    while step < target:
        idx = torch.randint(0, len(X), (a.batch,), generator=gen, device=dev)
        y = drop_labels(Y[idx], a.drop, model.null_class, gen)
        loss = loss_fn(model, X[idx], y, gen)
        for g in opt.param_groups:
            g["lr"] = a.lr * min(1.0, (step + 1) / max(1, a.warmup))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if a.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        d = min(a.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, q in zip(ema.parameters(), model.parameters()):
                e.lerp_(q, 1 - d)
        losses.append(loss.item())
        step += 1
    for which, net in (("ema", ema), ("raw", model)):
        net.eval()
        for cfg in cfgs:
            g2 = torch.Generator(dev).manual_seed(1)
            y = torch.arange(10, device=dev).repeat_interleave(10)
            x = generate(
                net, dc, y=y, sampler=a.sampler, steps=a.steps, cfg_scale=cfg, generator=g2
            )
            s = score_samples(x.cpu(), y.cpu(), clf)
            r = dict(
                name=a.name,
                step=step,
                images=step * a.batch,
                loss=float(np.mean(losses[-100:])),
                net=which,
                cfg=cfg,
                acc=s["class_accuracy"],
                fid=round(s["fid"], 2),
                floor=round(s["fid_floor"], 2),
                wall=round(time.perf_counter() - t0, 1),
            )
            log.write(json.dumps(r) + "\n")
            log.flush()
            if which == "ema" and cfg == cfgs[-1] and target in (evals[1], evals[-1]):
                u = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
                g = u.reshape(10, 10, 32, 32, 3).transpose(0, 2, 1, 3, 4).reshape(320, 320, 3)
                Image.fromarray(g).save(f"{a.out}/grid_{a.name}_{step}.png")
