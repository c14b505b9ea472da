import pytest
import torch
from matplotlib.figure import Figure

from dit_mini.course.viz_guidance import guidance_view, samples_at_scale, tradeoff_figure
from dit_mini.data.relics import make_relics
from dit_mini.diffusion.losses import DiffusionConfig, generate
from dit_mini.models.dit import DiT, dit_config
from dit_mini.studies.guidance_study import guidance_sweep, score_sweep, within_class_diversity


def test_diversity_is_the_mean_distance_within_each_class():
    features = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0], [1.0, 1.0], [7.0, 7.0]])
    labels = torch.tensor([0, 0, 1, 1, 2])  # class 2 has one sample and is skipped
    assert within_class_diversity(features, labels) == pytest.approx((5.0 + 0.0) / 2)
    three = torch.tensor([[0.0], [1.0], [3.0]])  # pairs: 1, 3, 2 -> mean 2
    assert within_class_diversity(three, torch.zeros(3)) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="at least 2"):
        within_class_diversity(features[:1], labels[:1])


@pytest.fixture(scope="module")
def sweep():
    torch.manual_seed(0)
    model = DiT(dit_config("nano", depth=1, input_size=8, num_classes=3)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0, 0.05)
    config = DiffusionConfig(objective="flow")
    return model, config, guidance_sweep(model, config, [0, 1, 4], per_class=2, steps=3, seed=5)


def test_sweep_shares_noise_and_labels_across_scales(sweep):
    model, config, result = sweep
    assert result["scales"] == [0.0, 1.0, 4.0]
    assert result["labels"].tolist() == [0, 0, 1, 1, 2, 2]
    assert all(s.shape == (6, 3, 8, 8) for s in result["samples"].values())
    # scale 1 is plain conditional sampling from the same starting noise
    x_T = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    plain = generate(model, config, y=result["labels"], steps=3, x_T=x_T).clamp(-1, 1)
    assert torch.allclose(result["samples"][1.0], plain, atol=1e-6)
    assert not torch.allclose(result["samples"][0.0], result["samples"][4.0])
    again = guidance_sweep(model, config, [4], per_class=2, steps=3, seed=5)
    assert torch.equal(again["samples"][4.0], result["samples"][4.0])


def test_scale_zero_is_the_guided_sampler_in_one_pass(sweep):
    model, config, result = sweep
    x_T = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    two_pass = generate(model, config, y=result["labels"], steps=3, cfg_scale=0.0, x_T=x_T)
    assert torch.allclose(result["samples"][0.0], two_pass.clamp(-1, 1), atol=1e-5)
    calls = []
    hook = model.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    guidance_sweep(model, config, [0], per_class=2, steps=3, seed=5)
    hook.remove()
    assert calls == [6, 6, 6]  # one forward of the 6 samples per step, not one of 12


def test_samples_at_scale_puts_classes_in_columns(sweep):
    _, _, result = sweep
    grid = samples_at_scale(result, 4.0)
    assert grid.shape == (2, 3, 3, 8, 8)
    assert torch.equal(grid[1, 2], result["samples"][4.0][5])  # second draw of class 2
    with pytest.raises(ValueError, match="was not sampled"):
        samples_at_scale(result, 2.5)


def test_scores_of_real_and_blank_images():
    real = make_relics(20, seed=123)
    order = real.labels.argsort()
    images, labels = real.images[order], real.labels[order]
    fake = {"scales": [0.0, 1.0], "labels": labels,
            "samples": {0.0: torch.zeros_like(images), 1.0: images}}  # fmt: skip
    scores = score_sweep(fake, n_reference=200)
    assert scores["class_accuracy"][1] == 1.0  # the classifier knows real relics
    assert scores["diversity"][0] == pytest.approx(0.0, abs=1e-9)  # identical grey squares
    assert scores["diversity"][1] > 0 and scores["real_diversity"] > 0
    assert scores["fid"][0] > scores["fid"][1]
    assert scores["n"] == 20
    for figure in (tradeoff_figure(scores), guidance_view(fake, scores, 1.0, list("abcdefghij"))):
        assert isinstance(figure, Figure)
    view = guidance_view(fake, scores, 1.0, list("abcdefghij"), rows=2)
    assert view.axes[0].images[0].get_array().shape == (2 * 32, 10 * 32, 3)
