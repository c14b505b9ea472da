"""Figures of notebook 09 (DPS): Gflops counted, mapped and set against sample quality.

The DiT paper (Peebles & Xie, arXiv 2212.09748) measures a model's cost in Gflops (multiply-adds
of one forward pass, Table 4) and shows that FID falls as they grow (Figs. 2, 6, 8). These
functions draw the package's counts beside the paper's (`table4_figure`), how Gflops grow with
patch size and width (`gflops_map_figure`), the cost of one config part by part for the
notebook's sliders (`cost_view`), and the toy scaling study of `dit_mini.studies.scaling`
(`plot_scaling`), and sampling steps against model size (`steps_vs_size_figure`, the paper's
Fig. 10 on relics). Each returns a `matplotlib.figure.Figure` (no pyplot).

The scaling study writes data (JSON lines); this module draws it, also from the command line:

    python -m dit_mini.course.viz_dps assets/scaling/scaling.jsonl assets/scaling/scaling.png
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from ..metrics.flops import block_cost_parts, count_gflops, count_params
from ..models.dit import DiT, dit_config
from ..studies.scaling import load_results

__all__ = ["SIZE_COLOURS", "PATCH_MARKERS", "table4_figure", "gflops_map_figure", "cost_view",
           "plot_scaling", "steps_vs_size_figure", "main"]  # fmt: skip

SIZE_COLOURS = {"S": "tab:green", "M": "tab:blue", "L": "tab:red"}
PATCH_MARKERS = {8: "s", 4: "o", 2: "^"}
PART_COLOURS = {"projections": "tab:blue", "mlp": "tab:orange", "attention": "tab:red",
                "adaln": "tab:gray", "embed + final": "tab:olive"}  # fmt: skip


def _meta_cost(input_size: int, width: int, depth: int, patch: int, heads: int) -> tuple:
    """(Gflops counted by the flop counter, parameters) of a DiT, built on 'meta' (no memory)."""
    config = dit_config("nano", input_size=input_size, hidden_size=width, depth=depth,
                        num_heads=heads, patch_size=patch)  # fmt: skip
    with torch.device("meta"):
        model = DiT(config)
    return count_gflops(model), count_params(model)


def _plain_log_ticks(ax, axis: str, ticks: Sequence[float] | None = None) -> None:
    """Log axis with plain tick labels (the chosen ticks, no minor-tick labels)."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    if ticks is not None:
        target.set_ticks(list(ticks), labels=[f"{t:g}" for t in ticks])
    target.set_minor_formatter(NullFormatter())


def table4_figure(reports: Sequence[dict]) -> Figure:
    """Counted against published: each config's Gflops beside the paper's (log scale), and how far
    the package's Gflops and params lie from the paper's, in percent. `reports` are
    `flops.gflops_report` dicts that carry 'paper_gflops' and 'paper_params_M'."""
    reports = [r for r in reports if "paper_gflops" in r]
    if not reports:
        raise ValueError("no report carries the paper's numbers; pass gflops_report('DiT-S/2')...")
    fig = Figure(figsize=(11, 4.2))
    bars, gaps = fig.subplots(1, 2)
    x = torch.arange(len(reports)).tolist()
    names = [r["name"].removeprefix("DiT-") for r in reports]
    bars.bar([i - 0.2 for i in x], [r["paper_gflops"] for r in reports], 0.4, label="paper")
    bars.bar([i + 0.2 for i in x], [r["gflops"] for r in reports], 0.4, label="dit_mini count")
    bars.set(yscale="log", ylabel="Gflops per image (log scale)", title="Table 4: Gflops")
    for ax in (bars, gaps):
        ax.set_xticks(x, labels=names, rotation=45)
        ax.grid(alpha=0.3, axis="y")
    bars.legend(fontsize=8)
    for key, paper, marker in (
        ("gflops", "paper_gflops", "o"),
        ("params_M", "paper_params_M", "s"),
    ):
        gap = [100 * (r[key] / r[paper] - 1) for r in reports]
        gaps.plot(x, gap, marker, label=key.replace("_M", ""))
    gaps.axhline(0, color="gray", linewidth=1)
    gaps.set(ylabel="count / paper - 1 (%)", ylim=(-1, 1),
             title="difference from the paper's rounded numbers")  # fmt: skip
    gaps.legend(fontsize=8)
    fig.tight_layout()
    return fig


def gflops_map_figure(
    widths: Sequence[int] = (48, 96, 128, 192, 256), patches: Sequence[int] = (8, 4, 2),
    depth: int = 4, input_size: int = 32, heads: int = 4,
) -> Figure:  # fmt: skip
    """Gflops against patch size (a line per width) and against width (a line per patch size),
    counted on DiTs of one depth for input_size x input_size RGB images."""
    table = {(w, p): _meta_cost(input_size, w, depth, p, heads)[0] for w in widths for p in patches}
    fig = Figure(figsize=(10, 4))
    by_patch, by_width = fig.subplots(1, 2)
    for w in widths:
        by_patch.plot(patches, [table[w, p] for p in patches], "o-", label=f"width {w}")
    for p in patches:
        tokens = (input_size // p) ** 2
        by_width.plot(widths, [table[w, p] for w in widths], PATCH_MARKERS.get(p, "o") + "-",
                      label=f"patch {p} ({tokens} tokens)")  # fmt: skip
    by_patch.set(xlabel="patch size P", xscale="log")
    _plain_log_ticks(by_patch, "x", patches)
    by_patch.invert_xaxis()  # smaller patches (more tokens) to the right
    by_width.set(xlabel="width D", xscale="log")
    _plain_log_ticks(by_width, "x", widths)
    for ax in (by_patch, by_width):
        ax.set(yscale="log", ylabel="Gflops per image (log scale)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(f"DiTs of depth {depth} on {input_size}x{input_size} images", fontsize=10)
    fig.tight_layout()
    return fig


def cost_view(width: int, depth: int, patch: int, input_size: int = 32, rows=None) -> Figure:
    """One DiT's bill: Gflops split by part (the block formula times the depth; the rest is patch
    embedding and final layer) with tokens and params; with scaling-study `rows`, where that
    many Gflops sit among the trained configs."""
    heads = next(h for h in (4, 3, 2, 1) if width % h == 0)
    total, params = _meta_cost(input_size, width, depth, patch, heads)
    tokens = (input_size // patch) ** 2
    parts = {k: depth * v for k, v in block_cost_parts(tokens, width).items()}
    parts["embed + final"] = max(total - sum(parts.values()), 0.0)
    fig = Figure(figsize=(10, 3.6))
    bill, board = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
    left = 0.0
    for name, value in parts.items():
        bill.barh(0, value, left=left, color=PART_COLOURS[name],
                  label=f"{name}: {100 * value / total:.0f} %")  # fmt: skip
        left += value
    bill.set(xlabel="Gflops per image", yticks=[], xlim=(0, total * 1.02))
    bill.set_title(f"width {width}, depth {depth}, patch {patch}: {tokens} tokens, "
                   f"{params / 1e6:.2f} M params, {total:.4f} Gflops", fontsize=9)  # fmt: skip
    bill.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3)
    if rows:
        _loss_against_gflops(board, rows)
        board.axvline(total, color="black", linestyle="--", linewidth=1, label="this build")
        board.set_title("dashed: this build among the trained grid", fontsize=9)
    else:
        board.set_axis_off()
    fig.tight_layout()
    return fig


def _loss_against_gflops(ax, rows, key: str = "final_loss", hollow: bool = False) -> None:
    for r in rows:
        colour = SIZE_COLOURS.get(r["size"], "black")
        style = dict(facecolors="none", edgecolors=colour, linewidths=1.5) if hollow else {}
        ax.scatter(r["gflops"], r[key], marker=PATCH_MARKERS.get(r["patch_size"], "o"), s=55,
                   color=None if hollow else colour, zorder=3, **style)  # fmt: skip
        if not hollow:
            ax.annotate(r["name"], (r["gflops"], r[key]), fontsize=7, xytext=(4, 3),
                        textcoords="offset points")  # fmt: skip
    ax.set(xscale="log", xlabel="Gflops per image (log scale)", ylabel=key.replace("_", " "))
    _plain_log_ticks(ax, "x")
    ax.grid(alpha=0.3, which="both")


def plot_scaling(rows: Sequence[dict], overlay: Sequence[dict] = ()) -> Figure:
    """The toy version of the paper's main figure: final loss and FID against Gflops (colour =
    size, marker = patch), and every config's loss curve against training images. `overlay`
    rows (a FAST re-run) are drawn hollow and, on the curves, as black dots."""
    if not rows:
        raise ValueError("no results to plot; run dit_mini.studies.scaling.run_scaling_study first")
    fig = Figure(figsize=(14, 4.2))
    loss_ax, fid_ax, curve_ax = fig.subplots(1, 3)
    _loss_against_gflops(loss_ax, rows)
    _loss_against_gflops(fid_ax, rows, "fid")
    floor = sum(r["fid_floor"] for r in rows) / len(rows)
    fid_ax.axhline(floor, color="gray", linestyle=":", label=f"real-vs-real floor {floor:.2f}")
    fid_ax.set(yscale="log", ylabel=f"FID, relic features (n = {rows[0]['n']})")
    fid_ax.legend(fontsize=8)
    for r in (r for r in rows if r["loss_curve"]):
        images, loss = zip(*r["loss_curve"])
        curve_ax.plot(images, loss, color=SIZE_COLOURS.get(r["size"], "black"),
                      linestyle={8: ":", 4: "--", 2: "-"}.get(r["patch_size"], "-"),
                      label=r["name"], linewidth=1.2)  # fmt: skip
    for r in overlay:
        _loss_against_gflops(loss_ax, [r], hollow=True)
        if r["loss_curve"]:
            images, loss = zip(*r["loss_curve"])
            curve_ax.plot(images, loss, "k.", markersize=4)
    low = min((loss for r in rows for _, loss in r["loss_curve"]), default=1.0)
    high = max(r["final_loss"] for r in [*rows, *overlay])
    curve_ax.set(xlabel="training images", ylabel="training loss (10-step means)",
                 ylim=(low * 0.95, high * 1.3))  # fmt: skip
    curve_ax.grid(alpha=0.3)
    if any(r["loss_curve"] for r in rows):
        curve_ax.legend(fontsize=7, ncol=3)
    n_images = rows[0]["images"]
    title = f"{len(rows)} toy DiTs, {n_images:,} training images each"
    if overlay:
        title += f"; hollow markers / black dots: FAST re-run ({overlay[0]['images']:,} images)"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def steps_vs_size_figure(rows: Sequence[dict]) -> Figure:
    """FID (left) and class accuracy (right) against the Gflops of one finished sample, one line
    per model through its step counts (each point labelled with its steps); the dashed line is
    the real-vs-real FID floor. Rows come from `dit_mini.studies.steps_vs_size.steps_vs_size`.
    """
    if not rows:
        raise ValueError("no rows to draw; run steps_vs_size first")
    fig = Figure(figsize=(10, 3.8))
    left, right = fig.subplots(1, 2)
    names = list(dict.fromkeys(row["name"] for row in rows))
    colours = ["tab:red", "tab:blue", "tab:green", "tab:purple"]
    for name, colour in zip(names, colours):
        mine = sorted((r for r in rows if r["name"] == name), key=lambda r: r["steps"])
        x = [r["gflops_per_sample"] for r in mine]
        label = f"{name} ({mine[0]['gflops_per_pass']:.3f} Gflops per pass)"
        for ax, key, scale in ((left, "fid", 1.0), (right, "class_accuracy", 100.0)):
            y = [scale * r[key] for r in mine]
            ax.plot(x, y, "o-", color=colour, label=label)
            for xi, yi, r in zip(x, y, mine):
                ax.annotate(f"{r['steps']}", (xi, yi), textcoords="offset points", xytext=(4, 4),
                            fontsize=8, color=colour)  # fmt: skip
    left.axhline(rows[0]["fid_floor"], color="grey", linestyle="--", linewidth=1,
                 label="real-vs-real floor")  # fmt: skip
    spent = [r["gflops_per_sample"] for r in rows]
    ticks = [2.0**k for k in range(-10, 11) if min(spent) / 1.5 <= 2.0**k <= 1.5 * max(spent)]
    for ax in (left, right):
        ax.set_xscale("log")
        _plain_log_ticks(ax, "x", ticks)  # 0.25, 0.5, 1, ...: no crowded minor-tick labels
        ax.set_xlabel("Gflops per finished sample (steps x 2 passes x Gflops per pass)")
        ax.grid(alpha=0.3, which="both")
    left.set_ylabel("FID (relic features), lower is better")
    right.set_ylabel("class accuracy (%)")
    left.set_title("numbers at the points: Euler steps", fontsize=10)
    left.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv=None) -> None:
    """python -m dit_mini.course.viz_dps RESULTS.jsonl PNG: draw a scaling study's results."""
    p = argparse.ArgumentParser(description="draw the results of dit_mini.studies.scaling")
    p.add_argument("results", help="the study's results file (JSON lines)")
    p.add_argument("png", help="the PNG file to write")
    args = p.parse_args(argv)
    plot_scaling(load_results(args.results)).savefig(args.png, dpi=100)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
