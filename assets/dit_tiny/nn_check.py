"""Memorization check: distance from each sample to its nearest training relic, against the same
for held-out real relics (seed 777)."""
import json, sys, torch
from dit_mini.data.relics import make_relics
from dit_mini.metrics.evaluation import load_samples
torch.set_num_threads(1)
train = make_relics(50_000, seed=0).images.flatten(1)
def nn_dist(x):
    x = x.flatten(1)
    d = torch.cdist(x, train)  # (n, 50000)
    return d.min(1).values
out = {}
for name, x in (("held-out real (seed 777)", make_relics(500, seed=777).images),
                ("retrained dit-tiny samples", load_samples(sys.argv[1])[0])):
    d = nn_dist(x.clamp(-1, 1))
    out[name] = {"median": round(d.median().item(), 3), "p10": round(d.quantile(0.1).item(), 3),
                 "min": round(d.min().item(), 3), "below_1": int((d < 1).sum())}
    print(name, out[name], flush=True)
json.dump(out, open(sys.argv[2], "w"), indent=1)
