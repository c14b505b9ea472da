"""How far small pixel changes move real relics in Inception-feature FID (issue 24, point 4).

500 real relics that no ruler uses (seed 777: not the training set, 0, nor the reference or floor
sets), changed in ways too small to change what they show, each scored like a model's samples:
Inception-feature FID at n = 500 against the 500 reference relics, beside the real-vs-real floor.
Run from the repository root (about 12 minutes on one CPU thread):

    python assets/scores/inception_sensitivity/sensitivity.py assets/scores/inception_sensitivity/sensitivity.json
"""

import json
import sys

import torch
import torch.nn.functional as F

from dit_mini.data.relics import make_relics
from dit_mini.metrics.evaluation import evaluate_samples, feature_extractor

torch.set_num_threads(1)
extractor = feature_extractor("inception")
real = make_relics(500, seed=777).images
g = torch.Generator().manual_seed(0)
variants = {
    "real (seed 777)": real,
    "noise 0.02": real + 0.02 * torch.randn(real.shape, generator=g),
    "noise 0.05": real + 0.05 * torch.randn(real.shape, generator=g),
    "blur 3x3": F.avg_pool2d(F.pad(real, (1, 1, 1, 1), mode="replicate"), 3, 1),
    "quantized 16 levels": torch.round((real + 1) * 7.5) / 7.5 - 1,
}
rows = {}
for name, x in variants.items():
    r = evaluate_samples(x.clamp(-1, 1), features="inception", n_reference=500, extractor=extractor)
    rows[name] = {"fid": round(r["fid"], 2), "fid_floor": round(r["fid_floor"], 2)}
    print(name, rows[name], flush=True)
json.dump(rows, open(sys.argv[1], "w"), indent=1)
