"""Steady training-step time of the quickstart recipe (issue 24, 2026-12-07): `fit` on 20,000
relics, the time of steps 30..530 with the trainer's thread choice. Arguments: BATCH or
BATCH:PRESET:PATCH, e.g. `python assets/ttr/race2min/step_time.py 8 16 16:nano:8`.
Run it as separate processes to compare malloc settings (step_time_malloc.py)."""
import time, torch, sys, dataclasses
from dit_mini.train.recipes import RECIPES, model_from_preset
from dit_mini.diffusion.losses import DiffusionConfig, make_loss
from dit_mini.data.datasets import load_dataset
from dit_mini.train.trainer import fit
r = RECIPES["quickstart"]
data = load_dataset("relics", train=True, n=20000, size=32)
for arg in sys.argv[1:]:
    b, preset, patch = arg.split(":") if arg.count(":")==2 else (arg, "nano", "4")
    b = int(b)
    torch.manual_seed(0)
    from dit_mini.models.dit import DiT, dit_config
    model = DiT(dit_config(preset, input_size=32, num_classes=10, class_dropout_prob=0.1, patch_size=int(patch)))
    marks = {}
    def cb(step, loss):
        if step in (30, 530): marks[step] = time.perf_counter()
    cfg = dataclasses.replace(r.train, steps=531, batch_size=b, checkpoint_every=10**9)
    fit(model, make_loss(DiffusionConfig(**r.diffusion)), data, cfg, quiet=True, callback=cb)
    ms = (marks[530]-marks[30])/500*1000
    print(arg, round(ms,1), "ms/step", round(1000*b/ms), "img/s", torch.get_num_threads(), flush=True)
