"""The scoreboard: the course's models graded with both rulers, and the samplers compared.

Two studies whose results fill the README's results table (`assets/scores/`):

1. `score_models`: every shipped model (plus reference rows: VAE reconstructions, an unguided
   DiT, pixel noise) graded by FID/KID in Inception features and in the Relics classifier's
   features, each beside the real-vs-real floor at the same n, and the Spearman rank correlation
   between the two rulers' FIDs: how far the fast ruler of FAST mode can stand in for Inception.
2. `compare_samplers`: one checkpoint sampled with DDPM (all 1000 steps), DDIM 50 and 25 steps
   and Euler 20 steps (flow models run under DDPM/DDIM through `samplers.FlowAsEps`): relic FID,
   class accuracy and images per second of each.
3. `compare_guidance`: one checkpoint sampled at several classifier-free guidance scales: relic
   FID and class accuracy against the scale (fidelity against diversity, notebook 08).

    python -m dit_mini.studies.scoreboard models --out assets/scores --n-relic 500 --n-inception 250
    python -m dit_mini.studies.scoreboard samplers --checkpoint runs/q/checkpoint.pt --n 200 --out
    ...
    python -m dit_mini.studies.scoreboard guidance --checkpoint assets/dit_tiny.safetensors --out
    ...
    python -m dit_mini.studies.scoreboard report --out assets/scores   # the README's tables, as
    markdown

Taught in notebook 12 (fidelity); numbers quoted in the README.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ..data.relics import make_relics
from ..metrics.evaluation import FLOOR_SEED, evaluate_samples, feature_extractor
from ..models.pretrained import asset_path, load_pretrained
from ..runtime import machine_info
from ..train.recipes import sample_images

__all__ = [
    "spearman",
    "draw_contestants",
    "score_models",
    "compare_samplers",
    "compare_guidance",
    "markdown_tables",
    "main",
]

SHIPPED = ("dit-tiny", "unet-tiny", "latent-dit-tiny")
SAMPLER_RUNS = (("ddpm", 1000), ("ddim", 50), ("ddim", 25), ("euler", 20))
GUIDANCE_SCALES = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def spearman(a, b) -> float:
    """Spearman rank correlation of two equal-length sequences (ties get their mean rank)."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if a.shape != b.shape or a.dim() != 1 or len(a) < 2:
        raise ValueError(f"need two 1-D sequences of equal length >= 2; got {a.shape}, {b.shape}")

    def ranks(x):
        r = torch.empty_like(x)
        r[x.argsort()] = torch.arange(len(x), dtype=x.dtype)
        for v in x.unique():  # ties: the mean of their ranks
            r[x == v] = r[x == v].mean()
        return r

    ra, rb = ranks(a) - ranks(a).mean(), ranks(b) - ranks(b).mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def draw_contestants(
    n: int, steps: int = 20, cfg_scale: float = 3.0, seed: int = 0, models=SHIPPED
) -> dict[str, dict]:
    """Images to grade: each shipped model (Euler, guided), the tiny DiT unguided, VAE
    reconstructions of real relics and per-pixel noise; each with labels and seconds taken.

    Shapes: each entry's 'images' (n, 3, 32, 32) in [-1, 1], 'labels' (n,) or None.
    """
    out = {}
    runs = [(m, cfg_scale) for m in models] + [("dit-tiny", 1.0)] * ("dit-tiny" in models)
    for name, w in runs:
        tic = time.perf_counter()
        images, labels = sample_images(asset_path(name), n, steps=steps, cfg_scale=w, seed=seed)
        key = name if w == cfg_scale else f"{name} (no guidance)"
        out[key] = {"images": images, "labels": labels, "seconds": time.perf_counter() - tic}
    relics = make_relics(2 * n, seed=FLOOR_SEED + 1)  # relics that no other set uses
    real, labels = relics.images, relics.labels
    vae = load_pretrained("vae")
    with torch.no_grad():
        recon = vae.decode(vae.encode(real[:n])[0]).clamp(-1, 1)
    g = torch.Generator().manual_seed(seed)
    noise = real[n:].mean(0) + real[n:].std(0) * torch.randn(n, 3, 32, 32, generator=g)
    out["VAE reconstructions"] = {"images": recon, "labels": labels[:n], "seconds": None}
    out["pixel noise"] = {"images": noise.clamp(-1, 1), "labels": None, "seconds": None}
    return out


def score_models(contestants: dict[str, dict], n_relic: int, n_inception: int) -> dict:
    """Relic-feature scores (first n_relic images, with class accuracy) and Inception scores
    (first n_inception) of every contestant, and the rank correlation of the two FIDs (None
    for a single contestant)."""
    rows = []
    relic, inception = feature_extractor("relic"), feature_extractor("inception")
    for name, c in contestants.items():
        labels = None if c["labels"] is None else c["labels"][:n_relic]
        r = evaluate_samples(c["images"][:n_relic], "relic", extractor=relic, labels=labels)
        tic = time.perf_counter()
        i = evaluate_samples(
            c["images"][:n_inception], "inception", n_reference=2 * n_inception, extractor=inception
        )
        rows.append({"name": name, "sample_seconds": c["seconds"], "relic": r, "inception": i,
                     "inception_seconds": time.perf_counter() - tic})  # fmt: skip
    relic_fid, inception_fid = ([r[k]["fid"] for r in rows] for k in ("relic", "inception"))
    rho = spearman(relic_fid, inception_fid) if len(rows) > 1 else None
    return {"rows": rows, "spearman_fid": rho, "n_relic": n_relic, "n_inception": n_inception}


def compare_samplers(checkpoint, n: int, cfg_scale: float = 3.0, seed: int = 0, runs=SAMPLER_RUNS):
    """Relic FID, class accuracy and images/s of one checkpoint under each (sampler, steps)."""
    rows = []
    for sampler, steps in runs:
        tic = time.perf_counter()
        images, labels = sample_images(
            checkpoint, n, sampler=sampler, steps=steps, cfg_scale=cfg_scale, seed=seed
        )
        seconds = time.perf_counter() - tic
        scores = evaluate_samples(images, "relic", labels=labels)
        rows.append({"sampler": sampler, "steps": steps, "seconds": seconds,
                     "images_per_s": n / seconds, **scores})  # fmt: skip
    return {"checkpoint": str(checkpoint), "n": n, "cfg_scale": cfg_scale, "rows": rows}


def compare_guidance(checkpoint, n: int, scales=GUIDANCE_SCALES, steps: int = 20, seed: int = 0):
    """Relic FID and class accuracy of one checkpoint (default sampler) at each guidance scale."""
    rows = []
    for w in scales:
        images, labels = sample_images(checkpoint, n, steps=steps, cfg_scale=w, seed=seed)
        rows.append({"cfg_scale": w, **evaluate_samples(images, "relic", labels=labels)})
    return {"checkpoint": str(checkpoint), "n": n, "steps": steps, "rows": rows}


def _model_rows(models: dict) -> list[str]:
    lines = [
        f"| model | Inception FID (n={models['n_inception']}) | KID | relic FID "
        f"(n={models['n_relic']}) | class accuracy |",
        "|---|---|---|---|---|",
    ]
    first = models["rows"][0]
    floor_i, floor_r = first["inception"], first["relic"]
    lines.append(f"| real relics (floor) | {floor_i['fid_floor']:.2f} | {floor_i['kid_floor']:.4f} "
                 f"| {floor_r['fid_floor']:.2f} | |")  # fmt: skip
    for r in models["rows"]:
        i, rel = r["inception"], r["relic"]
        acc = f"{rel['class_accuracy']:.1%}" if "class_accuracy" in rel else "-"
        lines.append(f"| {r['name']} | {i['fid']:.2f} | {i['kid']:.4f} +- {i['kid_std']:.4f} "
                     f"| {rel['fid']:.2f} | {acc} |")  # fmt: skip
    if models.get("spearman_fid") is not None:
        lines.append(f"\nSpearman rank correlation of the two FIDs over these "
                     f"{len(models['rows'])} rows: {models['spearman_fid']:.2f}")  # fmt: skip
    return lines


def markdown_tables(folder) -> str:
    """The results of the studies saved in `folder` (models, samplers, guidance) as markdown."""
    folder, out = Path(folder), []
    if (folder / "models.json").is_file():
        out += _model_rows(json.loads((folder / "models.json").read_text())) + [""]
    if (folder / "samplers.json").is_file():
        res = json.loads((folder / "samplers.json").read_text())
        out += [
            f"| sampler | steps | images/s | relic FID (n={res['n']}) | floor | class accuracy |",
            "|---|---|---|---|---|---|",
        ]
        for r in res["rows"]:
            speed, acc = f"{r['images_per_s']:.2f}", f"{r['class_accuracy']:.0%}"
            out.append(f"| {r['sampler']} | {r['steps']} | {speed} | {r['fid']:.2f} | "
                       f"{r['fid_floor']:.2f} | {acc} |")  # fmt: skip
        out.append("")
    if (folder / "guidance.json").is_file():
        res = json.loads((folder / "guidance.json").read_text())
        out += [f"| guidance scale | relic FID (n={res['n']}) | floor | class accuracy |",
                "|---|---|---|---|"]  # fmt: skip
        out += [f"| {r['cfg_scale']:g} | {r['fid']:.2f} | {r['fid_floor']:.2f} | "
                f"{r['class_accuracy']:.0%} |" for r in res["rows"]]  # fmt: skip
    return "\n".join(out).rstrip()


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m dit_mini.studies.scoreboard", description=__doc__)
    p.add_argument("study", choices=("models", "samplers", "guidance", "report"))
    p.add_argument("--out", required=True, help="folder for the JSON results (report: read)")
    p.add_argument("--n-relic", type=int, default=500, help="models: samples for relic scores")
    p.add_argument("--n-inception", type=int, default=250, help="models: samples for Inception")
    p.add_argument("--checkpoint", help="samplers, guidance: the checkpoint to sample")
    p.add_argument("--n", type=int, default=200, help="samplers, guidance: samples per row")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.study == "report":
        print(markdown_tables(args.out))
        return {}
    if args.study == "models":
        if args.n_inception > args.n_relic:
            raise ValueError("--n-inception must not exceed --n-relic (it grades a prefix)")
        result = score_models(draw_contestants(args.n_relic), args.n_relic, args.n_inception)
    elif not args.checkpoint:
        raise ValueError(f"the {args.study} study needs --checkpoint PATH")
    elif args.study == "samplers":
        result = compare_samplers(args.checkpoint, args.n)
    else:
        result = compare_guidance(args.checkpoint, args.n)
    result["machine"] = machine_info()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.study}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
