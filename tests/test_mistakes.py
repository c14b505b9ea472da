"""Every exercise's common wrong answers die, each with the message that names what killed it.

A data table (WRONG) lists, per exercise, realistic wrong answers and a text the failure message
must contain: the name of the mistake when notebooks/exercises/NN.toml lists it, else where the
first wrong value is. Each runs through `check` on small inputs the way the notebook's check cell
does (`RUNS`), never by executing notebooks. The right answer (the package's) passes the same
run, so a row that dies proves the check can tell them apart.
"""

import math

import pytest
import torch
from derive_cases import DERIVE_WRONG, run_derive  # tests/derive_cases.py
from einops import rearrange
from torch import nn

from dit_mini.course.exercises import check
from dit_mini.course.hints import EXERCISES
from dit_mini.course.mistakes import TRANSFORMS, variant
from dit_mini.course.new_game_plus import (
    ema_result,
    ema_update,
    euler_sample_cfg,
    fresh_output,
    loop_test,
    module_test,
    step_result,
    train_loop,
    train_step,
)
from dit_mini.data.datasets import ImageDataset
from dit_mini.diffusion.guidance import combine_guidance, drop_labels
from dit_mini.diffusion.samplers import FLOW_TIME_SCALE, ddim_timesteps
from dit_mini.diffusion.schedules import NoiseSchedule, cosine_schedule, linear_schedule
from dit_mini.metrics.flops import block_gflops
from dit_mini.models.attention import Attention, attention_weights
from dit_mini.models.dit import DiT, dit_config, modulate, patchify, unpatchify
from dit_mini.models.dit_block import DiTBlock
from dit_mini.models.embeddings import sincos_1d, sincos_2d, timestep_embedding
from dit_mini.studies.attention_maps import mean_attention_distance, merge_heads, split_heads

G = torch.Generator().manual_seed(0)


def rand(*shape):
    return torch.randn(*shape, generator=G)


X = rand(3, 3, 8, 8)
EPS = rand(3, 3, 8, 8)
Y = torch.tensor([0, 3, 9])
LINEAR = linear_schedule(100)


def toy_model(x, t, y=None):
    """A model whose output depends on x, t and y per image (so a wrong x_t shows)."""
    tb = t.to(x.dtype).reshape(-1, 1, 1, 1) / 1000
    return x * tb + 0.1 * (0 if y is None else y.to(x.dtype).reshape(-1, 1, 1, 1))


def eps_loss_ref(model, x0, y, t, eps, ab):
    a = ab[t].reshape(-1, 1, 1, 1)
    return (model(a.sqrt() * x0 + (1 - a).sqrt() * eps, t, y) - eps).pow(2).mean()


def flow_loss_ref(model, x0, y, t, eps):
    tb = t.reshape(-1, 1, 1, 1)
    return (model((1 - tb) * x0 + tb * eps, t * FLOW_TIME_SCALE, y) - (eps - x0)).pow(2).mean()


def ddim_ref(eps, x, t, t_prev, ab):
    a, a_prev = float(ab[t]), float(ab[t_prev]) if t_prev >= 0 else 1.0
    x0 = (x - (1 - a) ** 0.5 * eps) / a**0.5
    return a_prev**0.5 * x0 + (1 - a_prev) ** 0.5 * eps


def euler_ref(x, t, t_next):
    return x + (t_next - t) * toy_model(x, torch.full((len(x),), t * FLOW_TIME_SCALE), Y)


def receptive_ref(layers):
    size, jump = 1, 1
    for kernel, stride in layers:
        size, jump = size + (kernel - 1) * jump, jump * stride
    return size


def diversity_ref(features, labels):
    means = []
    for k in labels.unique():
        f = features[labels == k].double()
        if len(f) >= 2:
            means.append(torch.cdist(f, f).sum() / (len(f) * (len(f) - 1)))
    return float(torch.stack(means).mean())


def gaussian_ref(features):
    f = features.double()
    return f.mean(0), torch.cov(f.T)


def frechet_ref(mu1, s1, mu2, s2):
    from dit_mini.metrics.fid import frechet_distance

    return float(frechet_distance(mu1, s1, mu2, s2))


def kid_ref(x, y):
    x, y = x.double(), y.double()
    m, d = x.shape
    kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
    off = m * (m - 1)
    return float((kxx.sum() - kxx.trace()) / off + (kyy.sum() - kyy.trace()) / off - 2 * kxy.mean())


VOCAB = ["<pad>", "a", "red", "key", "ring", "sliding", "left"]


def tokenize_ref(captions, length):
    ids = torch.zeros(len(captions), length, dtype=torch.long)
    for i, text in enumerate(captions):
        words = [VOCAB.index(w) for w in text.lower().split()]
        ids[i, : len(words)] = torch.tensor(words, dtype=torch.long)
    return ids


def tubelets_ref(x, pt, p):
    return rearrange(x, "b c (t i) (h p) (w q) -> b (t h w) (i p q c)", i=pt, p=p, q=p)


def dropout_test(fn):
    """Notebook 08's predicate: several drop rates and null classes."""
    for p, null in ((0.1, 10), (0.5, 11), (0.0, 10), (1.0, 12)):
        y = torch.arange(20_000) % 10
        out = fn(y, p, null, torch.Generator().manual_seed(1))
        if not isinstance(out, torch.Tensor) or out.shape != y.shape:
            return f"expected a tensor of shape {tuple(y.shape)}"
        if out.dtype != y.dtype:
            return f"your labels are {out.dtype}, not {y.dtype}: the label table needs ints"
        share, error = (out == null).float().mean().item(), 5 * (p * (1 - p) / len(y)) ** 0.5
        if abs(share - p) > error + 1e-9:
            return f"at p = {p}, {share:.3f} of the labels were dropped"
        if not torch.equal(out[out != null], y[out != null]):
            return "some labels that were not dropped changed"
    return True


NANO = DiT(dit_config("nano", input_size=8, patch_size=2)).eval()
with torch.no_grad():  # a trained-looking model: no zero gates, no zero output layer
    for _p in NANO.parameters():
        _p.copy_(0.05 * torch.randn(_p.shape, generator=G))
TOKENS = rand(2, 16, 96)
COND = rand(2, 96)


def run(name: str, part: str, answer):
    """Check `answer` for exercise `name` (part `part`) the way its notebook's check cell does."""
    c = lambda *a, **k: check(name, answer, *a, part=part, quiet=True, **k)  # noqa: E731
    G.manual_seed(1)  # the same inputs whichever rows run before
    betas = torch.linspace(1e-3, 0.05, 20, dtype=torch.float64)
    if name == "00.to_model_range":
        px = torch.randint(0, 256, (2, 4, 4, 3), dtype=torch.uint8, generator=G)
        return c(ImageDataset.from_uint8(px, [0, 0], ("a",)).images, inputs=(px,))
    if name == "00.class_accuracy":
        logits, y = rand(8, 10), torch.arange(8)
        logits[torch.arange(4), torch.arange(4)] += 10
        return c(float((logits.argmax(1) == y).float().mean()), inputs=(logits, y))
    if name == "01.alpha_bar":
        return c(lambda b: NoiseSchedule(b).alpha_bar, cases=[(LINEAR.betas,), (betas,)])
    if name == "01.q_sample":
        t = torch.tensor([1, 50, 99])
        ref = lambda x0, eps, t, ab: LINEAR.add_noise(x0, eps, t)  # noqa: E731
        return c(ref, inputs=(X, EPS, t, LINEAR.alpha_bar))
    if name == "01.snr" and part.startswith("SNR"):
        return c(10 * torch.log10(LINEAR.snr()), inputs=(LINEAR.alpha_bar,))
    if name == "01.snr":
        s = cosine_schedule(100)
        snr = s.snr()
        return c(
            inputs=(s.alpha_bar,),
            test=lambda t: (
                (isinstance(t, int) and 0 < t < 100 and bool(snr[t] < 1 <= snr[t - 1]))
                or f"step {t!r} is not the first below 0 dB"
            ),
        )
    if name == "02.reparameterize":
        a = LINEAR.alpha_bar[torch.tensor([1, 50, 99])].float().reshape(-1, 1, 1, 1)
        expected = LINEAR.add_noise(X, EPS, torch.tensor([1, 50, 99]))
        return c(expected, inputs=(a.sqrt() * X, (1 - a).sqrt(), EPS))
    if name == "02.forward_chain" and part == "forward_step":
        one_link = lambda x, e, b: NoiseSchedule(torch.tensor([b])).add_noise(  # noqa: E731
            x, e, torch.zeros(len(x), dtype=torch.long)
        )
        return c(one_link, cases=[(X, EPS, b) for b in (1e-4, 0.02, 0.5)])
    if name == "02.forward_chain":

        def matches(x_t, x0=0.8, steps=30):
            a = LINEAR.alpha_bar[steps - 1].item()
            mean, std, n = a**0.5 * x0, (1 - a) ** 0.5, x_t.numel()
            m, s = x_t.mean().item(), x_t.std().item()
            return (
                abs(m - mean) < 5 * std / n**0.5 and abs(s - std) < 5 * std / (2 * n) ** 0.5
            ) or (f"measured mean {m:.3f} and std {s:.3f}; the jump gives {mean:.3f} and {std:.3f}")

        g = torch.Generator().manual_seed(4)
        return c(inputs=(torch.full((20_000,), 0.8), LINEAR.betas[:30].float(), g), test=matches)
    if name == "02.gradients_by_hand":

        def autograd(mu, sigma, eps, target):
            mu = torch.tensor(mu, requires_grad=True, dtype=torch.float64)
            sigma = torch.tensor(sigma, requires_grad=True, dtype=torch.float64)
            loss = ((mu + sigma * eps - target) ** 2).mean()
            return tuple(float(g) for g in torch.autograd.grad(loss, (mu, sigma)))

        e = rand(50).double()
        return c(autograd, cases=[(0.5, 1.0, e, 2.0), (-1.0, 0.3, e, 0.0)])
    if name == "03.eps_loss":
        t = torch.tensor([5, 50, 95])
        return c(eps_loss_ref, inputs=(toy_model, X, Y, t, EPS, LINEAR.alpha_bar))
    if name == "03.ddim_jump":
        return c(
            ddim_ref, cases=[(EPS, X, t, tp, LINEAR.alpha_bar) for t, tp in [(99, 79), (40, -1)]]
        )
    if name == "03.ddim_timesteps":
        return c(ddim_timesteps, cases=[(1000, 50), (1000, 7), (50, 50)])
    if name == "03.flow_loss":
        return c(flow_loss_ref, inputs=(toy_model, X, Y, torch.tensor([0.1, 0.5, 0.9]), EPS))
    if name == "03.euler_step":
        return c(euler_ref, cases=[(X, 1.0, 0.75), (EPS, 0.5, 0.25)])
    if name == "04.contraction_shapes":
        from dit_mini.models.unet import unet_config

        config = unet_config("unet-small")
        ref = lambda cfg, size: [  # noqa: E731
            (w, size // 2**i, size // 2**i) for i, w in enumerate(cfg.widths)
        ]
        return c(ref, cases=[(config, 32), (config, 64)])
    if name == "04.merge_skip":
        below, skip = rand(2, 4, 4, 4), rand(2, 3, 4, 4)
        return c(torch.cat([below, skip], dim=1), inputs=(below, skip))
    if name == "04.receptive_field":
        return c(receptive_ref, cases=[([(3, 1), (3, 1)],), ([(7, 2), (3, 2), (3, 1)],)])
    if name == "05.patchify":
        wide = torch.arange(2 * 1 * 4 * 8, dtype=torch.float32).reshape(2, 1, 4, 8)
        return c(patchify, cases=[(X, 4), (X, 2), (wide, 2)])
    if name == "05.context_window":

        def ref(size, p, heads, depth):
            tokens = (size // p) ** 2
            return {"tokens": tokens, "entries": depth * heads * tokens**2,
                    "megabytes": depth * heads * tokens**2 * 4 / 1e6}  # fmt: skip

        return c(ref, cases=[(32, 4, 3, 4), (64, 2, 6, 12)])
    if name == "05.sincos":
        return c(sincos_1d, cases=[(8, torch.arange(5)), (4, torch.tensor([0.0, 2.5, 100.0]))])
    if name == "06.attention_weights":
        return c(attention_weights, cases=[(rand(2, 3, 6, 16), rand(2, 3, 6, 16)),
                                           (rand(2, 3, 6, 64), rand(2, 3, 5, 64))])  # fmt: skip
    if name == "06.heads" and part == "split":
        return c(split_heads, inputs=(rand(2, 4, 12), 3))
    if name == "06.heads":
        return c(merge_heads, inputs=(rand(2, 3, 4, 4),))
    if name == "06.attention_distance":
        maps = torch.softmax(rand(2, 3, 64, 64), dim=-1)  # the notebook's 8 x 8 grid
        return c(mean_attention_distance, cases=[(maps, 8), (torch.eye(16), 4)])
    if name == "07.modulate":
        return c(modulate, cases=[(rand(3, 5, 8), rand(3, 8), rand(3, 8))])
    if name == "07.dit_block":
        block = DiTBlock(96, 3)
        with torch.no_grad():
            for p in block.parameters():
                p.copy_(0.1 * torch.randn(p.shape, generator=G))
            return c(lambda b, x, cc: b(x, cc), inputs=(block, TOKENS, COND))
    if name == "07.timestep_embedding":
        return c(timestep_embedding, cases=[(torch.tensor([0.0, 100.0, 999.0]), 16)])
    if name == "08.label_dropout":
        return c(test=dropout_test)
    if name == "08.guidance":
        cond, uncond = rand(2, 3, 4, 4), rand(2, 3, 4, 4)
        ref = lambda cc, u, w: combine_guidance(cc, u, w, pred_channels=cc.shape[1])  # noqa: E731
        return c(ref, cases=[(cond, uncond, w) for w in (0.0, 1.0, 3.0)])
    if name == "08.diversity":
        return c(diversity_ref, inputs=(rand(12, 5), torch.arange(12) % 3))
    if name == "09.block_gflops":
        return c(block_gflops, cases=[(64, 96, 4.0), (16, 48, 2.0)])
    if name == "09.sampling_bill":
        from dit_mini.studies.steps_vs_size import sampling_bill

        return c(sampling_bill, cases=[(0.182, 20), (0.182, 20, False), (0.181, 20, True, 0.35)])
    if name == "10.latent_shape":
        return c((4, 8, 8))
    if name == "10.kl":
        from dit_mini.models.vae import kl_divergence

        return c(kl_divergence, cases=[(rand(2, 4, 3, 3), rand(2, 4, 3, 3))])
    if name == "10.reparameterize":
        from dit_mini.models.vae import VAE

        mean, logvar = rand(2, 4, 3, 3), rand(2, 4, 3, 3)
        expected = VAE.reparameterize(mean, logvar, torch.Generator().manual_seed(3))
        return c(expected, inputs=(mean, logvar, torch.Generator().manual_seed(3)))
    if name == "11.frechet_1d":
        ref = lambda m1, s1, m2, s2: (m1 - m2) ** 2 + (s1 - s2) ** 2  # noqa: E731
        return c(ref, cases=[(0.0, 1.0, 3.0, 2.0), (-1.0, 0.5, 2.0, 1.5)], atol=1e-6)
    if name == "11.latent_scale":
        encode = lambda x: 0.7 * x[:, :2] + 0.1  # noqa: E731 - a stand-in for vae.encode
        return c(lambda f, x: 1.0 / float(f(x).std()), inputs=(encode, X))
    if name == "11.smelt_finish":
        return c(lambda s, z: z / s, inputs=(0.5, X))
    if name == "12.gaussian_fit":
        return c(gaussian_ref, cases=[(rand(30, 4),)])
    if name == "12.frechet":
        a, b = gaussian_ref(rand(40, 3)), gaussian_ref(1.3 * rand(40, 3) + 0.2)
        return c(frechet_ref, cases=[(*a, *b)], atol=1e-4)
    if name == "12.kid":
        return c(kid_ref, cases=[(rand(20, 4), rand(20, 4) * 1.3 + 0.2)], atol=1e-7)
    if name == "13.tokenize":
        return c(tokenize_ref, cases=[(["a red key sliding left", "A Ring", ""], 6)])
    if name == "13.tubelets":
        return c(tubelets_ref, cases=[(rand(2, 2, 6, 6, 6), 3, 2)])
    if name == "14.embeddings" and "sin-cos" in part:
        return c(timestep_embedding, cases=[(torch.tensor([0.0, 1.0, 250.5, 999.0]), 16)])
    if name == "14.embeddings":
        t = torch.tensor([1.0, 500.0])
        return c(test=module_test(NANO.t_embedder, (96,), (t,), axes=("image", "channel")))
    if name == "14.patches" and part == "unpatchify":
        return c(unpatchify, cases=[(patchify(X, 4), 4, 3)])
    if name == "14.patches":
        return c(patchify, cases=[(X, 4), (torch.arange(32.0).reshape(1, 2, 4, 4), 2)])
    if name == "14.positions":
        return c(sincos_2d, cases=[(16, 4), (8, 2)])
    if name == "14.attention":
        return c(
            test=module_test(
                NANO.blocks[0].attn, (96, 3), (TOKENS,), axes=("image", "token", "channel")
            )
        )
    if name == "14.block" and part == "modulate":
        return c(modulate, inputs=(TOKENS, COND, 0.5 * COND))
    if name == "14.block":  # the learner's class goes into the inputs of fresh_output
        return check(name, fresh_output, TOKENS, inputs=(answer, (96, 3), (TOKENS, COND)),
                     atol=0.0, rtol=0.0, part=part, quiet=True)  # fmt: skip
    if name == "14.final_layer":
        return c(
            test=module_test(
                NANO.final_layer, (96, 2, 3), (TOKENS, COND), axes=("image", "token", "channel")
            )
        )
    if name == "14.mydit":
        x, t = rand(2, 3, 8, 8), torch.tensor([999.0, 20.0])
        axes = ("image", "channel", "row", "col")
        return c(test=module_test(NANO, (NANO.config,), (x, t, Y[:2]), axes=axes))
    if name == "14.flow_loss":
        return c(flow_loss_ref, inputs=(toy_model, X, Y, torch.tensor([0.1, 0.5, 0.9]), EPS))
    if name == "14.train_step" and part == "EMA update":
        return c(ema_result(ema_update), inputs=())
    if name == "14.train_step":
        return c(step_result(train_step, steps=1), inputs=())
    if name == "14.train_loop":
        return c(test=loop_test)
    if name == "14.sampler":
        with torch.no_grad():
            noise = rand(2, 3, 8, 8)
            return c(euler_sample_cfg, cases=[(NANO, noise, Y[:2], 2, 3.0)], atol=1e-4)
    if name.startswith("14.quiz"):
        import hashlib

        digest = {"14.quiz_1": "e9d71f5e", "14.quiz_2": "84a51684", "14.quiz_3": "e9d71f5e"}
        return c(test=lambda a: hashlib.sha1(str(a).encode()).hexdigest()[:8] == digest[name])
    if (derived := run_derive(name, c)) is not None:  # the derive-and-predict exercises
        return derived
    raise KeyError(f"no run for {name} {part}")


# ----- the learner's wrong answers ------------------------------------------------------------


def cls_with(base, forward):
    """A learner's module class: the package's layout (so strict loading works), `forward` wrong."""
    return type("Mine", (base,), {"forward": forward})


def attn_unscaled(self, x):
    B, L, D = x.shape
    q, k, v = self.qkv(x).reshape(B, L, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    w = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
    return self.proj((w @ v).transpose(1, 2).reshape(B, L, D))


def attn_heads_interleaved(self, x):
    B, L, D = x.shape
    q, k, v = self.qkv(x).reshape(B, L, 3, -1, self.num_heads).permute(2, 0, 4, 1, 3)
    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    return self.proj((w @ v).transpose(1, 2).reshape(B, L, D))


def block_ungated(self, x, c):
    s1, sc1, g1, s2, sc2, g2 = self.adaLN_modulation(c).chunk(6, dim=1)
    x = x + self.attn(modulate(self.norm1(x), s1, sc1))
    return x + self.mlp(modulate(self.norm2(x), s2, sc2))


def block_no_residual(self, x, c):
    s1, sc1, g1, s2, sc2, g2 = self.adaLN_modulation(c).chunk(6, dim=1)
    x = g1[:, None] * self.attn(modulate(self.norm1(x), s1, sc1))
    return g2[:, None] * self.mlp(modulate(self.norm2(x), s2, sc2))


def final_scale_first(self, x, c):
    scale, shift = self.adaLN_modulation(c).chunk(2, dim=1)
    return self.linear(modulate(self.norm_final(x), shift, scale))


def final_no_norm(self, x, c):
    shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
    return self.linear(modulate(x, shift, scale))


def embedder_sines_first(self, t):
    return self.mlp(timestep_embedding(t, self.frequency_size).roll(self.frequency_size // 2, 1))


def embedder_raw_time(self, t):
    return self.mlp(timestep_embedding(t / FLOW_TIME_SCALE, self.frequency_size))


def dit_no_positions(self, x, t, y=None):
    h = self.x_embedder(x)
    cond = self.t_embedder(t) + self.y_embedder(y)
    for block in self.blocks:
        h = block(h, cond)
    return unpatchify(self.final_layer(h, cond), self.patch_size, self.out_channels)


def dit_no_label(self, x, t, y=None):
    h = self.x_embedder(x) + self.pos_embed
    cond = self.t_embedder(t)
    for block in self.blocks:
        h = block(h, cond)
    return unpatchify(self.final_layer(h, cond), self.patch_size, self.out_channels)


@torch.no_grad()
def ema_swapped(ema, model, decay):
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, decay)  # keeps 1 - decay of the old weights


def ema_with_gradients(ema, model, decay):
    for e, p in zip(ema.parameters(), model.parameters()):
        e.mul_(decay).add_(p, alpha=1 - decay)  # in place on a leaf that requires grad


def step_noise_first(model, ema, optimizer, x0, y, generator):
    from dit_mini.course.new_game_plus import FLOW
    from dit_mini.diffusion.losses import make_loss

    loss_fn = make_loss(FLOW)
    t, eps = loss_fn.draw(x0, generator)  # the draws in the wrong order: labels last
    y = drop_labels(y, 0.1, 10, generator)
    loss = loss_fn(model, x0, y, t=t, eps=eps)
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    ema_update(ema, model, 0.995)
    return loss.item()


def step_unclipped(model, ema, optimizer, x0, y, generator):
    return train_step(model, ema, optimizer, x0, y, generator, grad_clip=0.0)


def loop_no_warmup(step, model, ema, optimizer, images, labels, steps, batch_size=16, lr=3e-3,
                   warmup=100, seconds=None, generator=None, on_step=None):  # fmt: skip
    return train_loop(step, model, ema, optimizer, images, labels, steps, batch_size, lr, 1,
                      seconds, generator, on_step)  # fmt: skip


def loop_same_batch(step, model, ema, optimizer, images, labels, steps, batch_size=16, lr=3e-3,
                    warmup=100, seconds=None, generator=None, on_step=None):  # fmt: skip
    history = []
    for s in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, (s + 1) / warmup)
        history.append(step(model, ema, optimizer, images[:batch_size], labels[:batch_size],
                            generator))  # fmt: skip
        if on_step:
            on_step(s, history[-1])
    return history


def sampler(direction=1.0, guided=True):
    def sample(model, x_T, y, steps=20, cfg_scale=3.0, null_class=10):
        x = x_T
        for k in range(steps):
            t, t_next = 1 - k / steps, 1 - (k + 1) / steps
            tm = torch.full((len(x),), t * FLOW_TIME_SCALE)
            v_y, v_null = model(x, tm, y), model(x, tm, torch.full_like(y, null_class))
            v = v_null + cfg_scale * (v_y - v_null) if guided else v_y
            x = x + direction * (t_next - t) * v
        return x

    return sample


def q_sample_no_sqrt(x0, eps, t, ab):
    a = ab[t].float().reshape(-1, 1, 1, 1)
    return a * x0 + (1 - a) * eps


def q_sample_minus(x0, eps, t, ab):
    a = ab[t].float().reshape(-1, 1, 1, 1)
    return a.sqrt() * x0 - (1 - a).sqrt() * eps


def q_sample_swapped(x0, eps, t, ab):
    a = ab[t].float().reshape(-1, 1, 1, 1)
    return (1 - a).sqrt() * x0 + a.sqrt() * eps


def eps_loss_x0_target(model, x0, y, t, eps, ab):
    a = ab[t].reshape(-1, 1, 1, 1)
    return (model(a.sqrt() * x0 + (1 - a).sqrt() * eps, t, y) - x0).pow(2).mean()


def eps_loss_one_step(model, x0, y, t, eps, ab):
    a = ab[t[0]]  # every image noised to the first image's step
    return (model(a.sqrt() * x0 + (1 - a).sqrt() * eps, t, y) - eps).pow(2).mean()


def flow_loss_swapped(model, x0, y, t, eps):
    return flow_loss_ref(model, eps, y, t, x0)


def flow_loss_unscaled_time(model, x0, y, t, eps):
    tb = t.reshape(-1, 1, 1, 1)
    return (model((1 - tb) * x0 + tb * eps, t, y) - (eps - x0)).pow(2).mean()


def sincos(first, second, flip=False, interleave=False, max_period=10000.0):
    """A 1-D embedding (dim, positions) with the halves in the order given."""

    def embed(dim, positions):
        k = torch.arange(dim // 2, dtype=torch.float64)
        omega = max_period ** (-k / (dim // 2))
        omega = omega.flip(0) if flip else omega
        a = positions.double()[:, None] * omega[None]
        halves = [getattr(a, first)(), getattr(a, second)()]
        if interleave:
            return torch.stack(halves, dim=-1).flatten(1)
        return torch.cat(halves, dim=1)

    return embed


def time_embed(first, second, flip=False, interleave=False):
    fn = sincos(first, second, flip, interleave)
    return lambda t, dim=256, max_period=10000.0: fn(dim, t).float()


def pos2d(rows_first=False, cos_first=False):
    def embed(dim, grid):
        rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
        one = sincos("cos", "sin") if cos_first else sincos_1d
        a, b = one(dim // 2, cols.flatten()), one(dim // 2, rows.flatten())
        return torch.cat([b, a] if rows_first else [a, b], dim=1).float()

    return embed


def patchify_channels_first(x, p):
    return rearrange(x, "b c (h p) (w q) -> b (h w) (c p q)", p=p, q=p)


def patchify_column_major(x, p):
    return rearrange(x, "b c (h p) (w q) -> b (w h) (p q c)", p=p, q=p)


def unpatchify_transposed(tokens, p, channels):
    return unpatchify(tokens, p, channels).transpose(-2, -1)


def tokens_as_float(captions, length):
    return tokenize_ref(captions, length).float()


def tokens_case_sensitive(captions, length):
    ids = torch.zeros(len(captions), length, dtype=torch.long)
    for i, text in enumerate(captions):
        words = [VOCAB.index(w) if w in VOCAB else 0 for w in text.split()]
        ids[i, : len(words)] = torch.tensor(words, dtype=torch.long)
    return ids


def drop_hard_coded(y, p, null_class, generator=None):
    return torch.where(torch.rand(len(y), generator=generator) < 0.1, null_class, y)


def drop_inverted(y, p, null_class, generator=None):
    return torch.where(
        torch.rand(len(y), generator=generator) > p, torch.full_like(y, null_class), y
    )


def drop_float(y, p, null_class, generator=None):
    return torch.where(torch.rand(len(y), generator=generator) < p, float(null_class), y.float())


def kid_biased(x, y):
    x, y = x.double(), y.double()
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    return float(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())


FRESH_ATTN = "its parameters do not match"

P = "the boss's"  # a part name that no mistake limits itself to
WRONG = [
    # (exercise, part, the learner's wrong answer, text its failure message must contain)
    ("00.to_model_range", "", lambda px: torch.as_tensor(px).float().permute(0, 3, 1, 2) / 255,
     "your values run from 0 to 1: the model's range is -1 to 1 (0 -> -1, 255 -> +1)"),
    ("00.to_model_range", "", lambda px: (torch.as_tensor(px).float() / 127.5 - 1).permute(0, 3, 2, 1),
     "your rows and columns are swapped: the channel axis moves to position 1, the rows and columns keep their order"),
    ("00.to_model_range", "", lambda px: torch.as_tensor(px).float() / 127.5 - 1, "expected shape (2, 3, 4, 4) (image, channel, row, col), got (2, 4, 4, 3)"),
    ("00.class_accuracy", "", lambda lg, y: (lg.argmax(1) != y).float().mean().item(), "you returned the error rate (the share of wrong guesses), not the accuracy"),
    ("00.class_accuracy", "", lambda lg, y: int((lg.argmax(1) == y).sum()), "expected 0.75, got 6"),
    ("01.alpha_bar", "", lambda b: torch.cumsum(1 - b, 0), "you summed instead of multiplied: alpha_bar is a running product (cumprod), not a running sum"),
    ("01.alpha_bar", "", lambda b: torch.cumprod(b, 0), "you multiplied the betas themselves: each step keeps 1 - beta of the signal"),
    ("01.alpha_bar", "", lambda b: 1 - b, "the first wrong value is at timestep 1"),
    ("01.q_sample", "linear", q_sample_swapped, "your weights are swapped: sqrt(alpha_bar) goes with the clean image, sqrt(1 - alpha_bar) with the noise"),
    ("01.q_sample", "linear", q_sample_minus, "your noise has the wrong sign: the noise is added, not subtracted"),
    ("01.q_sample", "linear", q_sample_no_sqrt, "the first wrong value is at image 0, channel 0, row 0, col 0"),
    ("01.snr", "SNR in dB", lambda ab: 10 * torch.log(ab / (1 - ab)), "you used the natural logarithm: decibels use log10"),
    ("01.snr", "SNR in dB", lambda ab: 20 * torch.log10(ab / (1 - ab)), "you took 20 log10, the decibels of an amplitude ratio: SNR is a power ratio, 10 log10"),
    ("01.snr", "SNR in dB", lambda ab: 10 * torch.log10((1 - ab) / ab), "your ratio is upside down: SNR is signal power over noise power"),
    ("01.snr", "first step below 0 dB", lambda ab: int((ab < 0.5).nonzero()[0]) - 1, "step 48 is not the first below 0 dB"),
    ("01.snr", "first step below 0 dB", lambda ab: (ab < 0.5).nonzero()[0], "step tensor([49]) is not the first below 0 dB"),
    ("02.reparameterize", "the forward process", lambda mu, s, e: mu + s**2 * e, "the first wrong value is at image 0, channel 0, row 0, col 0"),
    ("02.reparameterize", "the forward process", lambda mu, s, e: mu * s + e, "the first wrong value is at image 0, channel 0, row 0, col 0"),
    ("02.forward_chain", "forward_step", lambda x, e, b: b**0.5 * x + (1 - b) ** 0.5 * e, "your weights are swapped: the previous image keeps sqrt(1 - beta), the fresh noise gets sqrt(beta)"),
    ("02.forward_chain", "forward_step", lambda x, e, b: (1 - b) * x + b * e, "the first wrong value is at image 0, channel 0, row 0, col 0"),
    ("02.forward_chain", "300 steps", lambda x0, betas, g: x0 * (1 - betas).prod().sqrt(), "measured mean 0.504 and std 0.000; the jump gives 0.504 and 0.776"),
    ("02.forward_chain", "300 steps", lambda x0, betas, g: x0 + torch.randn(x0.shape, generator=g), "measured mean 0.795 and std 0.995; the jump gives 0.504 and 0.776"),
    ("02.gradients_by_hand", "", lambda m, s, e, t: ((m + s * e - t).mean(), ((m + s * e - t) * e).mean()), "you forgot the factor 2 of the derivative of a square"),
    ("02.gradients_by_hand", "", lambda m, s, e, t: ((2 * (t - m - s * e)).mean(), (2 * (t - m - s * e) * e).mean()), "your gradients have the wrong sign: the residual is prediction minus target"),
    ("02.gradients_by_hand", "", lambda m, s, e, t: ((2 * (m + s * e - t)).mean(), (2 * (m + s * e - t)).mean()), "on input set 1 of 2: item 1: expected 2.69389, got -3.33534"),
    ("03.eps_loss", "", eps_loss_x0_target, "expected 1.31699, got 1.24596"),
    ("03.eps_loss", "", eps_loss_one_step, "expected 1.31699, got 1.40339"),
    ("03.ddim_jump", "", lambda e, x, t, tp, ab: ddim_ref(e, x, tp, t, ab), "you jumped the wrong way: from step t to the earlier step t_prev, not from t_prev to t"),
    ("03.ddim_jump", "", lambda e, x, t, tp, ab: ddim_ref(e, x, t, max(tp, 0), ab), "the first wrong value is at image 0, channel 0, row 0, col 0"),
    ("03.ddim_timesteps", "", lambda T, S: [T - 1 - i * (T / S) for i in range(S)], "on input set 1 of 3: item 0: your answer 999.0 is a float but timesteps index the schedule"),
    ("03.ddim_timesteps", "", lambda T, S: [T - 1 - i * (T // S) for i in range(S)], "on input set 2 of 3: item 1: expected 856, got 857"),
    ("03.ddim_timesteps", "", lambda T, S: list(range(0, T, T // S))[::-1], "on input set 1 of 3: item 0: expected 999, got 980"),
    ("03.flow_loss", "", flow_loss_swapped, "you swapped the image and the noise: the road starts at the clean image at t = 0 and ends at pure noise at t = 1"),
    ("03.flow_loss", "", flow_loss_unscaled_time, "expected 2.38482, got 2.55707"),
    ("03.euler_step", "", lambda x, t, tn: x + (t - tn) * toy_model(x, torch.full((len(x),), t * FLOW_TIME_SCALE), Y), "your step goes the wrong way in time: from t to t_next the time falls, so multiply the velocity by t_next - t"),
    ("03.euler_step", "", lambda x, t, tn: x + (tn - t) * toy_model(x, torch.full((len(x),), float(t)), Y), "the first wrong value is at image 0, channel 0, row 0, col 0"),
    ("04.contraction_shapes", "", lambda cfg, size: [(w, size // 2 ** (i + 1), size // 2 ** (i + 1)) for i, w in enumerate(cfg.widths)], "you halved once too often: level 0 keeps the input's size"),
    ("04.contraction_shapes", "", lambda cfg, size: [(w, size / 2**i, size / 2**i) for i, w in enumerate(cfg.widths)], "on input set 1 of 2: item 0: item 1: your answer 32.0 is a float but shapes are whole numb"),
    ("04.merge_skip", "", lambda below, skip: torch.cat([skip, below], dim=1), "the first wrong value is at image 0, channel 0, row 0, col 0"),
    ("04.merge_skip", "", lambda below, skip: torch.cat([below, skip], dim=0), "your code raised RuntimeError: Sizes of tensors must match except in dimension 0. Expected"),
    ("04.receptive_field", "", lambda layers: receptive_ref(layers[::-1]), "you walked the layers from the top: start with the first layer, the one that sees the input"),
    ("04.receptive_field", "", lambda layers: 1 + sum(k - 1 for k, _ in layers), "on input set 2 of 2: expected 19, got 11"),
    ("05.patchify", "", patchify_channels_first, "the first wrong value is at image 0, token 0, channel 1"),
    ("05.patchify", "", patchify_column_major, "the first wrong value is at image 0, token 1, channel 0"),
    ("05.context_window", "", lambda s, p, h, d: {"tokens": (s // p) ** 2, "entries": d * h * (s // p) ** 4, "megabytes": d * h * (s // p) ** 4 * 8 / 1e6}, "you counted 8 bytes per number: float32 takes 4"),
    ("05.context_window", "", lambda s, p, h, d: {"tokens": s / p, "entries": d * h * (s // p) ** 4, "megabytes": d * h * (s // p) ** 4 * 4 / 1e6}, "your answer 8.0 is a float but tokens and entries are counts: return an int"),
    ("05.sincos", "", sincos("cos", "sin"), "your cosines come first: this embedding puts all sines first, then all cosines"),
    ("05.sincos", "", sincos("sin", "cos", interleave=True), "your sines and cosines are interleaved: concatenate all sines, then all cosines"),
    ("05.sincos", "", sincos("sin", "cos", flip=True), "your embedding's frequencies run the wrong way: they fall from 1 towards 1/10000 as the channel grows"),
    ("06.attention_weights", "", lambda q, k: torch.softmax(q @ k.transpose(-2, -1), dim=-1), "you forgot to divide the scores by sqrt(d), the square root of the key width"),
    ("06.attention_weights", "", lambda q, k: torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-2), "your softmax runs over the queries: each query's weights over the keys must sum to 1"),
    ("06.heads", "split", lambda x, h: rearrange(x, "b l (d h) -> b h l d", h=h), "the first wrong value is at image 0, head 0, token 0, channel 1"),
    ("06.heads", "split", lambda x, h: rearrange(x, "b l (h d) -> b l h d", h=h), "expected shape (2, 3, 4, 4) (image, head, token, channel), got (2, 4, 3, 4)"),
    ("06.heads", "merge", lambda x: rearrange(x, "b h l d -> b l (d h)"), "the first wrong value is at image 0, token 0, channel 1"),
    ("06.attention_distance", "", lambda w, g: mean_attention_distance(w, g) / w.shape[-1], "you averaged over the keys: the weights already sum to 1, so sum weight times distance over the keys"),
    ("06.attention_distance", "", lambda w, g: w.sum(-1).mean(-1), "the first wrong value is at image 0, head 0"),
    ("07.modulate", "", lambda x, shift, scale: x * (1 + shift[:, None]) + scale[:, None], "your shift and scale are swapped"),
    ("07.modulate", "", lambda x, shift, scale: x * scale[:, None] + shift[:, None], "you multiplied by scale, not by (1 + scale): adaLN keeps the normalised tokens when scale is 0"),
    ("07.dit_block", "", lambda b, x, c: cls_with(DiTBlock, block_ungated).forward(b, x, c), "the first wrong value is at image 0, token 0, channel 0"),
    ("07.dit_block", "", lambda b, x, c: cls_with(DiTBlock, block_no_residual).forward(b, x, c), "the first wrong value is at image 0, token 0, channel 0"),
    ("07.timestep_embedding", "", time_embed("sin", "cos"), "your sines come first: the timestep embedding puts all cosines first, then all sines"),
    ("07.timestep_embedding", "", time_embed("cos", "sin", flip=True), "your embedding's frequencies run the wrong way: they fall from 1 towards 1/10000 as the channel grows"),
    ("08.label_dropout", "", drop_hard_coded, "at p = 0.5, 0.100 of the labels were dropped"),
    ("08.label_dropout", "", drop_inverted, "at p = 0.1, 0.900 of the labels were dropped"),
    ("08.label_dropout", "", drop_float, "your labels are torch.float32, not torch.int64: the label table needs ints"),
    ("08.guidance", "", lambda c, u, w: c + w * (u - c), "your guidance walks away from the condition: start from the unconditional prediction and move towards the conditional one"),
    ("08.guidance", "", lambda c, u, w: c + w * (c - u), "you started from the conditional prediction: that is guidance at scale + 1"),
    ("08.guidance", "", lambda c, u, w: w * c + u, "the first wrong value is at image 0, channel 0, row 0, col 0"),
    ("08.diversity", "", lambda f, y: diversity_ref(f, y) * 0 + float(torch.cdist(f, f).mean()), "expected 2.99305, got 2.51012"),
    ("08.diversity", "", lambda f, y: float(torch.stack([torch.cdist(f[y == k], f[y == k]).mean() for k in y.unique()]).mean()), "expected 2.99305, got 2.24479"),
    ("09.block_gflops", "", lambda n, d, r=4.0: 2 * block_gflops(n, d, r), "you counted two flops per multiply-add: this bill counts multiply-adds"),
    ("09.block_gflops", "", lambda n, d, r=4.0: block_gflops(n, d, r) - 2 * n * n * d / 1e9, "on input set 1 of 2: expected 0.00791962, got 0.00713318"),
    ("09.block_gflops", "", lambda n, d, r=4.0: 1e9 * block_gflops(n, d, r), "you forgot to convert to billions (divide by 1e9)"),
    ("09.sampling_bill", "", lambda g, s, guidance=True, dec=0.0: s * g + dec, "on input set 1 of 3: expected 7.28, got 3.64"),
    ("09.sampling_bill", "", lambda g, s, guidance=True, dec=0.0: s * (2 if guidance else 1) * (g + dec), "on input set 3 of 3: expected 7.59, got 21.24"),
    ("10.latent_shape", "latent shape", (4, 16, 16), "item 1: expected 8, got 16"),
    ("10.latent_shape", "latent shape", (4, 8.0, 8.0), "item 1: your answer 8.0 is a float but shapes are whole numbers: divide with //: return an"),
    ("10.kl", "", lambda m, lv: m**2 + lv.exp() - 1 - lv, "you forgot the factor 1/2"),
    ("10.kl", "", lambda m, lv: -0.5 * (m**2 + lv.exp() - 1 - lv), "your KL has the wrong sign: a KL divergence is never negative"),
    ("10.kl", "", lambda m, lv: 0.5 * (m**2 + lv - 1 - lv.exp()), "the first wrong value is at image 0, channel 0, row 0, col 0"),
    ("10.reparameterize", "the draw", lambda m, lv, g: m + lv.exp() * torch.randn(m.shape, generator=g), "the first wrong value is at image 0, channel 0, row 0, col 0"),
    ("10.reparameterize", "the draw", lambda m, lv, g: m + (0.5 * lv).exp() * torch.randn(m.shape), "the first wrong value is at image 0, channel 0, row 0, col 0"),
    ("11.frechet_1d", "", lambda m1, s1, m2, s2: (m1 - m2) ** 2 + (s1**2 - s2**2) ** 2, "you compared the variances: the Frechet distance compares the standard deviations"),
    ("11.frechet_1d", "", lambda m1, s1, m2, s2: ((m1 - m2) ** 2 + (s1 - s2) ** 2) ** 0.5, "you took a square root: the Frechet distance here is the squared one"),
    ("11.latent_scale", "", lambda f, x: float(f(x).std()), "you returned the standard deviation: the scale is one over it"),
    ("11.latent_scale", "", lambda f, x: 1.0 / float(f(x).abs().max()), "expected 1.38568, got 0.336582"),
    ("11.smelt_finish", "finish", lambda s, z: z * s, "the first wrong value is at image 0, channel 0, row 0, col 0"),
    ("11.smelt_finish", "finish", lambda s, z: z, "the first wrong value is at image 0, channel 0, row 0, col 0"),
    ("12.gaussian_fit", "", lambda f: (f.double().mean(0), torch.cov(f.double().T, correction=0)), "the first wrong value is at feature 0, feature 0"),
    ("12.gaussian_fit", "", lambda f: (f.double().mean(1), torch.cov(f.double().T)), "item 0: expected shape (4,) (feature), got (30,)"),
    ("12.frechet", "", lambda m1, s1, m2, s2: float((m1 - m2).square().sum() + s1.trace() + s2.trace() - 2 * (s1 @ s2).trace().sqrt()), "expected 1.12197, got 4.492"),
    ("12.frechet", "", lambda m1, s1, m2, s2: float((m1 - m2).square().sum() + s1.trace() + s2.trace() - torch.linalg.eigvals(s1 @ s2).real.sqrt().sum()), "expected 1.12197, got 5.22689"),
    ("12.kid", "", kid_biased, "expected 2.96409, got 6.51965"),
    ("12.kid", "", lambda x, y: kid_ref(x, y) * x.shape[0], "expected 2.96409, got 59.2818"),
    ("13.tokenize", "", tokens_as_float, "your answer is float32 but token ids must be integers: nn.Embedding needs int64"),
    ("13.tokenize", "", tokens_case_sensitive, "the first wrong value is at caption 1, word 0"),
    ("13.tubelets", "", lambda x, pt, p: tubelets_ref(x, p, pt), "your tubelet sizes are swapped: pt cuts time, p cuts height and width"),
    ("13.tubelets", "", lambda x, pt, p: rearrange(x, "b c (t i) (h p) (w q) -> b (t h w) (c i p q)", i=pt, p=p, q=p), "the first wrong value is at image 0, token 0, channel 1"),
    ("14.embeddings", "sin-cos timestep embedding", time_embed("sin", "cos"), "your sines come first: the timestep embedding puts all cosines first, then all sines"),
    ("14.embeddings", "sin-cos timestep embedding", time_embed("cos", "sin", flip=True), "your embedding's frequencies run the wrong way: they fall from 1 towards 1/max_period"),
    ("14.embeddings", "timestep embedder", cls_with(type(NANO.t_embedder), embedder_raw_time), "the first wrong value is at image 0, channel 0"),
    ("14.patches", "patchify", patchify_channels_first, "the first wrong value is at image 0, token 0, channel 1"),
    ("14.patches", "unpatchify", unpatchify_transposed, "the first wrong value is at image 0, channel 0, row 0, col 1"),
    ("14.positions", "2-D position embedding", pos2d(rows_first=True), "your column and row halves are swapped: the first half embeds each token's column, the second its row"),
    ("14.positions", "2-D position embedding", pos2d(cos_first=True), "your sines and cosines are swapped inside each half: sines first, then cosines"),
    ("14.attention", P, cls_with(Attention, attn_unscaled), "the first wrong value is at image 0, token 0, channel 0"),
    ("14.attention", P, cls_with(Attention, attn_heads_interleaved), "the first wrong value is at image 0, token 0, channel 0"),
    ("14.block", "modulate", lambda x, shift, scale: x * (1 + shift[:, None]) + scale[:, None], "your shift and scale are swapped"),
    ("14.block", "modulate", lambda x, shift, scale: x * scale[:, None] + shift[:, None], "you multiplied by scale, not by (1 + scale)"),
    ("14.block", "a fresh block is the identity", cls_with(DiTBlock, block_ungated), "the first wrong value is at image 0, token 0, channel 0"),
    ("14.final_layer", P, cls_with(type(NANO.final_layer), final_scale_first), "the first wrong value is at image 0, token 0, channel 0"),
    ("14.final_layer", P, cls_with(type(NANO.final_layer), final_no_norm), "the first wrong value is at image 0, token 0, channel 0"),
    ("14.mydit", P, cls_with(DiT, dit_no_positions), "the first wrong value is at image 0, channel 0, row 0, col 0"),
    ("14.mydit", P, cls_with(DiT, dit_no_label), "the first wrong value is at image 0, channel 0, row 0, col 0"),
    ("14.flow_loss", "the loss on the boss", flow_loss_swapped, "you swapped the image and the noise: the road starts at the clean image at t = 0 and ends at pure noise at t = 1"),
    ("14.flow_loss", "the loss on the boss", flow_loss_unscaled_time, "expected 2.38482, got 2.55707"),
    ("14.train_step", "EMA update", lambda: ema_result(ema_swapped), "the first wrong value is at index [0, 0, 0]"),
    ("14.train_step", "EMA update", lambda: ema_result(ema_with_gradients), "your code raised RuntimeError: a leaf Variable that requires grad is being used in an in-p"),
    ("14.train_step", "two steps", lambda: step_result(step_noise_first, steps=1), "item 0: expected 2.48225, got 2.34718"),
    ("14.train_step", "two steps", lambda: step_result(step_unclipped, steps=1), "the first wrong value is at index [6, 171]"),
    ("14.train_loop", "the loop", loop_no_warmup, "learning rates [0.8, 0.8, 0.8, 0.8, 0.8, 0.8], expected [0.2, 0.4, 0.6, 0.8, 0.8, 0.8] (steps=6"),
    ("14.train_loop", "the loop", loop_same_batch, "every step got the same batch: draw random indices with the generator each step"),
    ("14.sampler", "", sampler(direction=-1.0), "the first wrong value is at image 0, channel 0, row 0, col 0"),
    ("14.sampler", "", sampler(guided=False), "the first wrong value is at image 0, channel 0, row 0, col 0"),
    ("14.quiz_1", "", "a", "the test failed"),
    ("14.quiz_1", "", "c", "the test failed"),
    ("14.quiz_2", "", "a", "the test failed"),
    ("14.quiz_2", "", "b", "the test failed"),
    ("14.quiz_3", "", "a", "the test failed"),
    ("14.quiz_3", "", "c", "the test failed"),
]  # fmt: skip


WRONG += DERIVE_WRONG


@pytest.mark.parametrize(
    "name, part, answer, says", WRONG, ids=[f"{r[0]}-{i}" for i, r in enumerate(WRONG)]
)
def test_a_common_wrong_answer_dies_and_says_why(name, part, answer, says):
    verdict = run(name, part, answer)
    assert not verdict, f"{name} ({part}): this wrong answer lit the bonfire"
    assert says in verdict.reason


def test_every_exercise_has_at_least_two_wrong_answers():
    counts = {name: 0 for name in EXERCISES}
    for name, *_ in WRONG:
        counts[name] += 1
    assert {n: c for n, c in counts.items() if c < 2} == {}


def test_every_listed_mistake_is_named_by_a_wrong_answer():
    """Each mistake of the data files is the diagnosis of at least one row of WRONG."""
    named = {says for *_, says in WRONG}
    for known in EXERCISES.values():
        for mistake in known.mistakes:
            assert mistake.says in named, f"{known.name}: no wrong answer shows {mistake.says!r}"


def test_numeric_failures_say_where_in_the_learners_terms():
    for name, part, answer, _says in WRONG:
        reason = run(name, part, answer).reason
        if name != "14.train_step":  # a state dict: its reasons name the parameter
            assert "flat index" not in reason and "index [" not in reason, (name, reason)


def test_the_vocabulary_of_transforms():
    x = torch.arange(8.0).reshape(2, 4)
    assert torch.equal(
        variant(x, None, [("swap_halves", 1)]), torch.tensor([[2.0, 3, 0, 1], [6, 7, 4, 5]])
    )
    assert torch.equal(variant(x, None, [("reverse_halves", 1)])[0], torch.tensor([1.0, 0, 3, 2]))
    assert torch.equal(
        variant(x, None, [("interleave_halves", 1)])[0], torch.tensor([0.0, 2, 1, 3])
    )
    assert torch.equal(variant(x, None, [("swap_quarters", 1)])[0], torch.tensor([1.0, 0, 3, 2]))
    f = torch.tensor([0.5, 0.5, 0.5])
    assert torch.allclose(variant(f.cumprod(0), None, [("cumsum_for_cumprod", 0)]), f.cumsum(0))
    sub = lambda a, b: a - b  # noqa: E731
    assert variant(sub, (5, 2), [("swap", [0, 1])]) == -3
    assert variant(sub, (5, 2), [("arg_plus", [1, 1]), ("times", 10)]) == 20
    assert variant(sub, (5, 2), [("update_times", [0, -1])]) == 7  # 5 - (3 - 5)
    assert variant(lambda a: a, ([1, 2],), [("arg_reverse", 0)]) == [2, 1]
    assert variant({"a": 2, "b": 3}, None, [("scale_keys", {"a": 2})]) == {"a": 4, "b": 3}
    with pytest.raises(TypeError, match="needs a reference function"):
        variant(3.0, None, [("swap", [0, 1])])
    assert {"swap", "negate", "flip", "transpose", "square", "cumsum_for_cumprod"} <= TRANSFORMS
