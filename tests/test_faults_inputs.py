"""Fault injection, inputs (issue 25): every bad input of the public API and the command line is
refused where it enters, with a message naming the argument and the fix, before any work or
write; images of every PNG flavour decode correctly; every command an error message suggests
exists and runs."""

import json
import math
import re
import subprocess
import sys
import urllib.error
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import dit_mini
from dit_mini import storage
from dit_mini.cli.main import main
from dit_mini.data import datasets
from dit_mini.data.datasets import load_image_folder
from dit_mini.diffusion.losses import DiffusionConfig, generate, make_loss
from dit_mini.diffusion.schedules import make_schedule
from dit_mini.metrics.evaluation import check_samples, evaluate_samples
from dit_mini.models.dit import DiT, StateDictMismatch, dit_config
from dit_mini.registry import read_config, save_model
from dit_mini.runtime import pick_device
from dit_mini.storage import read_header
from dit_mini.train.config import TrainConfig
from dit_mini.train.memory import BatchTooLarge, activation_bytes

sys.path.insert(0, str(Path(__file__).parent))
from test_train import config, fit, tiny_data, tiny_model  # noqa: E402

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DiT(dit_config("nano", hidden_size=32, depth=1, num_heads=2, input_size=16)).eval()


def good(n=2):
    return torch.randn(n, 3, 16, 16), torch.tensor([1, 500][:n]), torch.tensor([0, 9][:n])


# ----- DiT.forward -----

BAD_FORWARD = [
    (lambda x, t, y: (x.double(), t, y), TypeError, r"x_t is torch.float64 but the model's "
     r"weights are torch.float32: pass x.to\(torch.float32\)"),
    (lambda x, t, y: (x.half(), t, y), TypeError, "x_t is torch.float16 but the model"),
    (lambda x, t, y: ((x * 127 + 127).to(torch.uint8), t, y), TypeError,
     r"x_t is torch.uint8.*x.float\(\) / 127.5 - 1"),
    (lambda x, t, y: (x.tolist(), t, y), TypeError, "x_t must be a torch.Tensor"),
    (lambda x, t, y: (x, torch.tensor([5000, 1]), y), ValueError, r"t must lie in \[0, 1000\]"),
    (lambda x, t, y: (x, torch.tensor([-1, 1]), y), ValueError, r"t must lie in \[0, 1000\]"),
    (lambda x, t, y: (x, torch.tensor([math.nan, 1.0]), y), ValueError, "t holds NaN"),
    (lambda x, t, y: (x, t, [0, 9]), TypeError, r"y \(class labels\) must be an integer "
     r"torch.Tensor.*got list: pass torch.tensor\(y"),
    (lambda x, t, y: (x, t, y.float()), TypeError, r"must be integers; got torch.float32"),
    (lambda x, t, y: (x, t, torch.tensor([0, 11])), ValueError,
     r"class labels y must lie in \[0, 10\].*got 0..11"),
    (lambda x, t, y: (x, t, torch.tensor([-1, 0])), ValueError, "must lie in"),
    (lambda x, t, y: (x.index_fill(0, torch.tensor([1]), math.nan), t, y), ValueError,
     "x_t holds NaN or infinite values in 1 of 2 images"),
    (lambda x, t, y: (x[:, :1], t, y), ValueError, "expects 3 input channels, got 1"),
    (lambda x, t, y: (x, t[:1], y), ValueError, r"t must be \(B,\)"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "error", "message"), BAD_FORWARD)
def test_bad_forward_inputs_name_the_argument_and_the_fix(model, make, error, message):
    with pytest.raises(error, match=message):
        model(*make(*good()))


def test_good_forward_inputs_pass(model):
    x, t, y = good()
    assert model(x, t, y).shape == x.shape
    assert model(x, torch.tensor([0.5, 999.5]), torch.tensor([10, 3])).shape == x.shape  # null
    assert model(x, 7, None).shape == x.shape  # a scalar t, the null class


def test_load_state_dict_of_another_preset_names_both(model):
    other = DiT(dit_config("tiny", input_size=16))
    with pytest.raises(
        StateDictMismatch,
        match=r"weights are of a 'tiny' \(depth 6, width "
        r"192, patch 4\) DiT but this model is a custom \(depth 1, width 32",
    ):
        model.load_state_dict(other.state_dict())  # fmt: skip
    with pytest.raises(RuntimeError):  # still a RuntimeError, as nn.Module raises
        model.load_state_dict(other.state_dict())


# ----- losses, schedules, sampling -----


class Recorder(torch.nn.Module):
    """A model that records the t it is called with."""

    out_channels = 3

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.seen = []

    def forward(self, x, t, y=None):
        self.seen.append(t.clone())
        return x * self.w


def test_a_given_t_without_eps_is_honoured():
    x0 = torch.zeros(3, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    for cfg, t in [(DiffusionConfig(), torch.tensor([5, 10, 999])),
                   (DiffusionConfig(objective="flow"), torch.tensor([0.1, 0.5, 1.0]))]:  # fmt: skip
        net = Recorder()
        make_loss(cfg)(net, x0, None, g, t=t)
        scale = 1000.0 if cfg.is_flow else 1
        assert torch.allclose(net.seen[0].float(), t.float() * scale)


BAD_LOSS = [
    (DiffusionConfig(), dict(t=torch.tensor([0.5, 0.2])), TypeError, "takes integer timesteps"),
    (DiffusionConfig(objective="flow"), dict(t=torch.tensor([5, 10])), TypeError,
     r"continuous times t in \[0, 1\]; got integer.*t.float\(\) / 1000"),
    (DiffusionConfig(), dict(t=torch.tensor([5, 5000])), ValueError, r"t must lie in \[0, 999\]"),
    (DiffusionConfig(objective="flow"), dict(t=torch.tensor([math.nan, 0.5])), ValueError,
     r"t must lie in \[0, 1\]"),
    (DiffusionConfig(), dict(t=torch.tensor([5])), ValueError, r"t must be \(B,\) = \(2,\)"),
    (DiffusionConfig(), dict(eps=torch.zeros(2, 3, 4, 4)), ValueError, "eps must be noise shaped"),
]  # fmt: skip


@pytest.mark.parametrize(("cfg", "given", "error", "message"), BAD_LOSS)
def test_bad_loss_inputs(cfg, given, error, message):
    with pytest.raises(error, match=message):
        make_loss(cfg)(Recorder(), torch.zeros(2, 3, 8, 8), None, None, **given)


def test_schedule_steps_out_of_range_are_refused():
    s = make_schedule()
    for t in (-1, 1000, 2000, torch.tensor([0, 1000])):
        with pytest.raises(ValueError, match=r"timesteps must lie in \[0, 1000\)"):
            s.snr(t)
    with pytest.raises(ValueError, match="whole numbers"):
        s.snr(torch.tensor([0.5]))
    assert s.snr(torch.tensor([0, 999])).shape == (2,)


@pytest.mark.parametrize("scale", [math.nan, math.inf, -1.0])
def test_generate_refuses_an_unusable_guidance_scale(model, scale):
    with pytest.raises(ValueError, match="is not a usable guidance scale"):
        generate(model, DiffusionConfig(), y=torch.tensor([0, 1]), steps=2, cfg_scale=scale)


# ----- configs and fit -----

BAD_CONFIGS = [
    (lambda: TrainConfig(steps=2.5), TypeError, "steps must be an integer; got 2.5"),
    (lambda: TrainConfig(batch_size="8"), TypeError, "batch_size must be an integer"),
    (lambda: TrainConfig(grad_clip=math.nan), ValueError, "grad_clip must be a finite number.*"
     "--grad-clip"),
    (lambda: TrainConfig(lr=math.inf), ValueError, "lr must be a finite number"),
    (lambda: TrainConfig(checkpoint_minutes=-1), ValueError, "checkpoint_minutes"),
    (lambda: DiffusionConfig(weighting="min_snr", min_snr_gamma=-1), ValueError,
     "min_snr_gamma must be a finite number > 0.*negative"),
    (lambda: DiffusionConfig(min_snr_gamma=math.nan), ValueError, "min_snr_gamma"),
]  # fmt: skip


@pytest.mark.parametrize(("build", "error", "message"), BAD_CONFIGS)
def test_bad_configs(build, error, message):
    with pytest.raises(error, match=message):
        build()


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (lambda x: (x + 1) * 127.5, r"like 0..255 pixels.*x / 127.5 - 1"),
        (lambda x: (x + 1) / 2, r"like \[0, 1\] pixels.*x \* 2 - 1"),
        (lambda x: x.index_fill(0, torch.tensor([3]), math.inf), "1 training image"),
    ],
)
def test_fit_refuses_images_outside_minus_one_one(tmp_path, images, message):
    x, y = tiny_data()
    with pytest.raises(ValueError, match=message):
        fit(tiny_model(), make_loss(), (images(x), y), config(steps=2), tmp_path / "r")
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_an_absurd_batch_gets_an_estimate_before_anything_is_allocated(tmp_path):
    net = tiny_model()
    need = activation_bytes(net, 10**7)
    with pytest.raises(BatchTooLarge, match=r"batch_size 10000000 needs about [\d,.]+ GiB.*"
                       "lower --batch-size"):  # fmt: skip
        fit(net, make_loss(), tiny_data(), config(steps=2, batch_size=10**7), tmp_path / "r")
    assert need > 2**38 and list((tmp_path / "r").iterdir()) == []  # nothing written


def test_cli_absurd_batch_size(capsys, tmp_path):
    argv = ["train", "--preset", "nano", "--n-images", "16", "--steps", "1", "--batch-size",
            "200000", "--quiet", "--device", "cpu", "--out", str(tmp_path / "r")]  # fmt: skip
    assert main(argv) == 2
    assert "lower --batch-size" in capsys.readouterr().err
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_unknown_device():
    with pytest.raises(ValueError, match="unknown device 'foo'; use cpu, cuda, cuda:N or mps"):
        pick_device("foo")


# ----- data -----


def test_16_bit_palette_and_alpha_images_decode_correctly(tmp_path):
    grey16 = np.full((8, 8), 32768, dtype=np.uint16)  # mid-grey, not white
    Image.fromarray(grey16).save(tmp_path / "a16.png")
    palette = Image.new("P", (8, 8))
    palette.putpalette([0, 0, 255] * 256)
    palette.save(tmp_path / "b_palette.png")
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(tmp_path / "c_clear.png")  # fully clear
    Image.new("RGBA", (8, 8), (255, 0, 0, 255)).save(tmp_path / "d_red.png")  # opaque
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_image_folder(tmp_path, size=8)
    notes = [str(w.message) for w in caught]
    assert len(notes) == 1 and "2 of 4 images" in notes[0] and "composited over white" in notes[0]
    mean = data.images.mean(dim=(2, 3))  # (N, 3) in [-1, 1]
    assert torch.allclose(mean[0], torch.full((3,), 0.0039), atol=0.02)  # 16-bit mid-grey
    assert torch.allclose(mean[1], torch.tensor([-1.0, -1.0, 1.0]), atol=0.01)  # palette blue
    assert torch.allclose(mean[2], torch.ones(3), atol=0.01)  # clear: the white behind
    assert torch.allclose(mean[3], torch.tensor([1.0, -1.0, -1.0]), atol=0.01)  # opaque red


def test_cifar10_offline_is_a_network_problem(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(datasets.urllib.request, "urlopen", offline)
    with pytest.raises(ValueError, match="cannot download .*a network problem.*check the "
                       "internet connection"):  # fmt: skip
        datasets.load_cifar10(root=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


# ----- fid -----

BAD_SAMPLES = [
    (lambda x: (x + 1) * 127.5, r"like 0..255 pixels; FID expects \[-1, 1\]: convert them with "
     r"x / 127.5 - 1"),
    (lambda x: (x + 1) / 2, r"like \[0, 1\] pixels.*x \* 2 - 1"),
    (lambda x: x[:, :1], r"1 channels; FID features need RGB \(3\): repeat grey images"),
    (lambda x: x.index_fill(0, torch.tensor([2]), math.nan), "1 of 8 samples hold NaN"),
    (lambda x: x * 10, "far outside"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "message"), BAD_SAMPLES)
def test_fid_refuses_samples_that_would_score_wrongly(make, message):
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    with pytest.raises(ValueError, match=message):
        evaluate_samples(make(x), extractor=lambda im: pytest.fail("features were computed"))


def test_fid_refuses_labels_outside_the_classes():
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    with pytest.raises(ValueError, match=r"labels lie in 0..12 but the classifier knows "
                       r"classes 0..9"):  # fmt: skip
        check_samples(x, torch.tensor([0, 1, 2, 12]), num_classes=10)
    with pytest.raises(ValueError, match="4 integer class ids"):
        check_samples(x, torch.tensor([0.0, 1.0, 2.0, 3.0]), num_classes=10)


# ----- the command line: outputs checked before the work -----


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    net = DiT(dit_config("nano", hidden_size=32, depth=1, num_heads=2))
    path = tmp_path_factory.mktemp("w") / "ema.safetensors"
    return str(save_model(net, path, extra={"diffusion": {"objective": "flow"}}))


@pytest.fixture
def no_sampling(monkeypatch):
    def refuse(*args, **kwargs):
        pytest.fail("sampled before checking the outputs")

    monkeypatch.setattr(sys.modules["dit_mini.cli.main"], "sample_images", refuse)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "{tmp}/grid"], r"grid has no extension; a sample grid \(--out\) needs one of "
         r".png"),
        (["--out", "{tmp}/grid.xyz"], r"has '.xyz'; a sample grid"),
        (["--out", "{tmp}"], "has no extension"),
        (["--out", "{tmp}/folder.png"], "is a folder; give a file name"),
        (["--out", "/proc/nope/grid.png"], "cannot write in /proc/nope"),
        (["--save-samples", "{tmp}/s.npz"], r"a samples file \(--save-samples\) needs one of .pt"),
        (["--save-samples", "/proc/nope/s.pt"], "cannot write in /proc/nope"),
        (["--nrow", "-3"], r"--nrow -3: give the number of images per grid row, >= 1"),
    ],
)  # fmt: skip
def test_sample_outputs_are_checked_before_sampling(capsys, tmp_path, weights, no_sampling,
                                                    extra, message):  # fmt: skip
    (tmp_path / "folder.png").mkdir()
    argv = ["sample", "--checkpoint", weights, *[a.format(tmp=tmp_path) for a in extra]]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]), err


def test_a_full_disk_while_saving_samples_keeps_the_previous_file(capsys, tmp_path, weights,
                                                                  monkeypatch):  # fmt: skip
    previous = tmp_path / "s.pt"
    previous.write_bytes(b"previous samples")
    real_save = torch.save

    def enospc(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and "images" in obj:
            f.write(b"half")
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1 vs 2")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", enospc)
    argv = ["sample", "--checkpoint", weights, "--n", "2", "--steps", "1", "--threads", "1",
            "--out", str(tmp_path / "g.png"), "--save-samples", str(previous)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "the disk is full: could not write" in err and "previous s.pt is intact" in err
    assert previous.read_bytes() == b"previous samples"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png", "s.pt"]


# ----- every command an error message suggests exists and runs -----

SUGGESTED = re.compile(r"`((?:python -m|dit-mini) [^`{]+)")


def suggested_commands() -> set[str]:
    """Backticked commands in the package's sources (messages and docs), and the upgrade one."""
    found = {storage.UPGRADE_COMMAND}
    for path in Path(dit_mini.__file__).parent.rglob("*.py"):
        found |= {m.strip() for m in SUGGESTED.findall(path.read_text())}
    return found


def test_every_suggested_command_exists():
    modules, subcommands = set(), set()
    for command in suggested_commands():
        words = command.split()
        if words[0] == "python":
            modules.add(words[2])
        else:
            subcommands.add(words[1])
    assert "dit_mini.registry" in modules and "train" in subcommands
    for sub in sorted(subcommands):
        with pytest.raises(SystemExit) as done:
            main([sub, "--help"])
        assert done.value.code == 0, sub
    for module in sorted(modules):
        proc = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, (module, proc.stderr[-500:])


def test_the_upgrade_command_that_a_storage_error_suggests_runs(tmp_path):
    net = DiT(dit_config("nano", hidden_size=32, depth=1, num_heads=2))
    old = tmp_path / "old.safetensors"
    legacy_config = {"model": {"kind": "dit", **json.loads(json.dumps(net.config.__dict__))}}
    save_file(net.state_dict(), old, metadata={"config": json.dumps(legacy_config)})
    with pytest.raises(storage.CheckpointError) as caught:
        read_header(old)
    command = re.search(r"`([^`]+)`", str(caught.value)).group(1)
    assert command.startswith(storage.UPGRADE_COMMAND)
    words = command.split()
    proc = subprocess.run([sys.executable, *words[1:]], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-500:]
    assert read_config(old)["model"]["kind"] == "dit"
