"""Package-level promises: importing has no side effects, every module declares __all__."""

import importlib
import pkgutil
import subprocess
import sys

import dit_mini

PROBE = r"""
import os, sys, torch
before_files = set(os.listdir("."))
rng = torch.get_rng_state().clone()
flags = (torch.backends.cudnn.benchmark, torch.get_num_threads(), torch.get_default_dtype(),
         torch.are_deterministic_algorithms_enabled())
import importlib
for mod in {mods}:
    importlib.import_module("dit_mini." + mod)
assert torch.equal(rng, torch.get_rng_state()), "import used the global RNG"
assert flags == (torch.backends.cudnn.benchmark, torch.get_num_threads(), torch.get_default_dtype(),
                 torch.are_deterministic_algorithms_enabled()), "import changed torch flags"
assert set(os.listdir(".")) == before_files, "import wrote files"
"""


def _modules():
    """Every module of the package, subpackages included, as 'models.dit' style names."""
    return sorted(
        m.name.removeprefix("dit_mini.")
        for m in pkgutil.walk_packages(dit_mini.__path__, "dit_mini.")
        if not m.ispkg and not m.name.endswith("__main__")
    )


def test_import_has_no_side_effects(tmp_path):
    probe = PROBE.replace("{mods}", repr(_modules()))
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout == "", f"importing dit_mini printed {out.stdout!r}"


def test_every_module_declares_all():
    for mod in _modules():
        module = importlib.import_module(f"dit_mini.{mod}")
        assert hasattr(module, "__all__"), f"dit_mini.{mod} has no __all__"
        for name in module.__all__:
            assert hasattr(module, name), f"dit_mini.{mod}.__all__ lists missing {name!r}"
