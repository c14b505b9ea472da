"""The grader's parts without a kernel: comparison, package-answer detection, file matching,
the data codec's caps, limits, and the probe table (every probe's reference runs on its own
fresh inputs and passes its own comparison)."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from dit_mini.course.grading import codec
from dit_mini.course.grading.compare import compare, package_answers
from dit_mini.course.grading.discover import find_submissions, normalize
from dit_mini.course.grading.harness import HARNESSES
from dit_mini.course.grading.probes import NOT_PROBED, PROBES
from dit_mini.course.grading.sandbox import Limits, nproc_per_namespace, sandbox_argv, sandbox_env
from dit_mini.course.hints import EXERCISES


def test_scalars_of_every_kind_compare_equal():
    for answer in (5, 5.0, np.int64(5), np.float32(5), torch.tensor(5), torch.tensor(5.0)):
        assert compare(answer, 5) is None, answer
        assert compare(5, answer) is None, answer
    assert "expected 5" in compare(np.int64(6), 5)
    assert compare(True, 1) is not None and compare("5", 5) is not None


def test_tensors_lists_and_dicts():
    x = torch.linspace(0, 1, 10)
    assert compare(x + 1e-7, x) is None
    assert "largest difference" in compare(x + 1e-2, x)
    assert "shape" in compare(x[:5], x)
    assert compare(x.numpy(), x) is None
    assert compare(torch.tensor([1, 2]), torch.tensor([1, 3])) == "the values differ"
    assert compare((1, [2.0, x]), (1, [2, x])) is None
    assert "item 0" in compare([1, 2], [2, 2])
    assert compare({"a": 1}, {"a": np.int32(1)}) is None and compare({"a": 1}, {"b": 1})


def test_package_answers_are_found_in_the_source():
    answers = {"MyDiT": {"DiT"}, "my_patchify": {"patchify"}, "my_sincos_1d": {"sincos_1d"}}
    found = package_answers([
        "from dit_mini import DiT\nfrom dit_mini.models.dit import patchify as pf",
        "class MyDiT(DiT):\n    pass", "my_patchify = lambda x, p: pf(x, p)",
        "import dit_mini\nmy_sincos_1d = dit_mini.models.embeddings.sincos_1d",
    ], answers)  # fmt: skip
    assert set(found) == set(answers), found
    honest = package_answers([
        "from dit_mini.models.dit import patchify\nimport torch",
        "def my_patchify(x, p):\n    '''Mine.'''\n    y = x.unfold(2, p, p)\n"
        "    return patchify(y, 1)",
        "class MyDiT(torch.nn.Module):\n    pass", "my_sincos_1d = None", "def broken(:",
    ], answers)  # fmt: skip
    assert honest == {}
    alias = package_answers(["from dit_mini import DiT\nMyDiT = DiT"], answers)
    assert alias == {"MyDiT": "MyDiT is the package's dit_mini:DiT"}


def test_file_names_are_matched_tolerantly(tmp_path):
    names = ["01_fog.ipynb", "05_mystic_lens.ipynb"]
    for raw in [
        "Copy of 01_fog.ipynb",
        "01_Fog.ipynb",
        "01_fog (1).ipynb",
        "copy of 01 Fog-2.ipynb",
    ]:
        assert normalize(raw) == "01_fog", raw
    (tmp_path / "ana" / "hw").mkdir(parents=True)
    (tmp_path / "ana" / "hw" / "01_FOG.ipynb").write_text("{}")
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "05 Mystic Lens (2).ipynb").write_text("{}")
    (tmp_path / "bob" / "notes.txt").write_text("")
    found = {(s.student, s.notebook): s for s in find_submissions([tmp_path], names)}
    assert found[("ana", "01_fog.ipynb")].path.name == "01_FOG.ipynb"
    assert "homework" not in found[("ana", "01_fog.ipynb")].note
    assert "'hw'" in found[("ana", "01_fog.ipynb")].note
    assert found[("ana", "05_mystic_lens.ipynb")].path is None
    assert found[("bob", "05_mystic_lens.ipynb")].note == "matched '05 Mystic Lens (2).ipynb'"
    with pytest.raises(FileNotFoundError, match="no file or folder"):
        find_submissions([tmp_path / "nowhere"], names)
    with pytest.raises(ValueError, match="is not a notebook"):
        find_submissions([tmp_path / "bob" / "notes.txt"], names)


def test_codec_round_trip_and_caps(tmp_path):
    value = {"a": (1, 2.5, torch.arange(3)), "b": [None, True, "s"], "g": codec.Generator(3)}
    codec.dump(value, tmp_path / "x")
    back = codec.load(tmp_path / "x")
    assert back["a"][0] == 1 and torch.equal(back["a"][2], torch.arange(3))
    assert isinstance(back["g"], torch.Generator) and back["b"] == [None, True, "s"]
    assert isinstance(codec.load(tmp_path / "x", build=False)["g"], codec.Generator)
    with pytest.raises(FileExistsError):
        codec.dump(value, tmp_path / "x")  # never over an existing file
    codec.dump(torch.zeros(2**20), tmp_path / "big")
    with pytest.raises(ValueError, match="cap"):
        codec.load(tmp_path / "big", max_bytes=2**20)
    os.symlink(tmp_path / "x.json", tmp_path / "link.json")
    os.symlink(tmp_path / "x.safetensors", tmp_path / "link.safetensors")
    with pytest.raises(ValueError, match="unreadable"):
        codec.load(tmp_path / "link")  # a symlink planted in the sandbox is not followed
    (tmp_path / "bad.json").write_text('{"$eval": "os.system(1)"}')
    (tmp_path / "bad.safetensors").write_bytes((tmp_path / "x.safetensors").read_bytes())
    with pytest.raises(ValueError, match="unexpected marker"):
        codec.load(tmp_path / "bad")
    deep = 0
    for _ in range(40):
        deep = [deep]
    with pytest.raises(ValueError, match="deeply"):
        codec.encode(deep, {})


def test_limits_and_sandbox_arguments(tmp_path):
    with pytest.raises(ValueError, match="Limits.timeout"):
        Limits(timeout=0)
    env = sandbox_env()
    assert env["DIT_MINI_GRADING"] == "1" and "DIT_MINI_CANARY" not in env
    argv = sandbox_argv("/usr/bin/bwrap", tmp_path, 0, ["python"], env)
    assert "--unshare-net" in argv and "--die-with-parent" in argv and "--clearenv" in argv
    binds = [argv[i + 1] for i, a in enumerate(argv) if a in ("--bind", "--ro-bind")]
    writable = [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"]
    assert sorted(writable) == [str(tmp_path), str(tmp_path / ".tmp")]  # the only writable places
    # of the notebooks folder only the exercises' data (hints, mistakes) is mounted, read-only
    from dit_mini.course.hints import exercises_dir

    data = str(exercises_dir().resolve())
    assert not any(b.endswith("/solutions") or b.endswith(".ipynb") for b in binds)
    assert all(b == data for b in binds if "notebooks" in b and b not in writable)
    assert not any(Path(data).glob("*.ipynb"))


def test_every_exercise_is_probed_or_listed():
    probed = {p.exercise for p in PROBES}
    assert probed | set(NOT_PROBED) == set(EXERCISES) and not probed & set(NOT_PROBED)
    assert len(probed) >= 36
    assert NOT_PROBED == [], f"{NOT_PROBED}: add a probe (README: every exercise has one)"


@pytest.mark.parametrize("probe", [p for p in PROBES if p.reference is not None],
                         ids=lambda p: f"{p.exercise}:{p.part or p.names[0]}")  # fmt: skip
def test_each_reference_passes_its_own_probe(probe):
    """The package's reference, called as a learner's answer would be, passes (the probe's inputs
    are valid, the draw is repeatable and the output survives the trip out of the sandbox)."""
    g = torch.Generator().manual_seed(1)
    for args in probe.make(g):
        tensors = {}
        built = codec.decode(codec.encode(args, tensors), tensors)
        expected = HARNESSES[probe.harness](probe.reference(), *built)
        again = HARNESSES[probe.harness](
            probe.reference(), *codec.decode(codec.encode(args, tensors), tensors)
        )
        assert compare(again, expected, probe.atol, probe.rtol) is None
        out: dict = {}
        back = codec.decode(codec.encode(again, out), out, build=False)
        assert compare(back, expected, probe.atol, probe.rtol) is None


def answer_cells(path) -> dict:
    """The names defined by a notebook's exercise cells (with every cell's imports), run here:
    what the probes would call in that notebook's kernel, without the rest of the notebook."""
    import ast

    import nbformat

    namespace: dict = {}
    for cell in nbformat.read(path, as_version=4).cells:
        try:
            tree = ast.parse(cell.source) if cell.cell_type == "code" else None
        except SyntaxError:
            continue
        if tree is None:
            continue
        imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        exec(compile(ast.Module(body=imports, type_ignores=[]), "<imports>", "exec"), namespace)
        if cell.metadata.get("nbgrader", {}).get("solution"):
            kinds = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
            try:
                exec(compile(tree, "<answer>", "exec"), namespace)
            except Exception:  # noqa: BLE001 - a cell that needs the notebook's state: its defs
                defs = [n for n in tree.body if isinstance(n, kinds)]
                exec(compile(ast.Module(body=defs, type_ignores=[]), "<defs>", "exec"), namespace)
    return namespace


def verdicts(folder) -> dict:
    """(exercise, part) -> the first reason a probe fails on `folder`'s answer cells, or None."""
    from pathlib import Path

    from dit_mini.course.grading.runner import _verdict

    found = {}
    for path in sorted(Path(folder).glob("*.ipynb")):
        namespace = answer_cells(path)
        for probe in [p for p in PROBES if p.exercise[:2] == path.name[:2]]:
            if any(n not in namespace for n in probe.names):
                continue  # a value computed by the notebook's other cells (10.latent_shape)
            for args in probe.make(torch.Generator().manual_seed(5)):
                tensors: dict = {}
                built = codec.decode(codec.encode(args, tensors), tensors)
                try:
                    answers = [namespace[n] for n in probe.names]
                    out = HARNESSES[probe.harness](*answers, *built)
                    back: dict = {}
                    result = {"ok": True, "out": codec.decode(codec.encode(out, back), back)}
                except Exception as error:  # noqa: BLE001 - the stubs raise
                    result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
                key = (probe.exercise, probe.part)
                found[key] = found.get(key) or _verdict(probe, args, result)
    return found


@pytest.mark.slow
def test_solutions_pass_every_probe_and_blank_copies_fail(monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("DIT_MINI_FAST", "1")
    root = Path(__file__).resolve().parents[1] / "notebooks"
    solved = verdicts(root / "solutions")
    assert len(solved) >= 60 and {k: v for k, v in solved.items() if v} == {}
    blank = verdicts(root)
    assert set(solved) <= set(blank)  # (the blank copy also leaves its value stubs at None)
    assert [k for k, v in blank.items() if v is None] == []


def test_report_rows_totals_and_no_formulas(tmp_path):
    import csv as csv_module
    import json

    from dit_mini.course.grading.report import ExerciseGrade, NotebookGrade, write_reports

    ana = NotebookGrade("ana", "01_fog.ipynb", [ExerciseGrade("01.snr", 1, 1, "passed")])
    bob = NotebookGrade("bob", "01_fog.ipynb", [ExerciseGrade("01.snr", 0, 1, "failed", "=1+1")])
    write_reports([bob, ana], tmp_path, {"sandboxed": True})
    with open(tmp_path / "grades.csv") as f:
        rows = list(csv_module.DictReader(f))
    assert [(r["student"], r["points"], r["detail"]) for r in rows] == [
        ("ana", "1", ""),
        ("bob", "0", "'=1+1"),  # a student's text is never a spreadsheet formula
    ]
    summary = (tmp_path / "summary.csv").read_text()
    assert "ana,(all),1,1" in summary and "(class),01.snr,1,2" in summary
    records = json.loads((tmp_path / "grades.json").read_text())
    assert records["header"] == {"sandboxed": True} and records["submissions"][0]["points"] == 1


def test_process_limit_per_mode():
    limits = Limits(processes=64)
    assert limits.for_launcher(sandboxed=False)["processes"] == -1
    # not root on an old kernel: plus the user's own processes (>= 1); Linux 5.14 and later count
    # a user namespace's processes apart (measured: tests/test_grading_unprivileged.py)
    if os.geteuid() == 0 or nproc_per_namespace():
        assert limits.for_launcher()["processes"] == 64
    else:
        assert limits.for_launcher()["processes"] >= 64 + 1
    assert nproc_per_namespace("6.18.44-fc-v1300") and nproc_per_namespace("5.14.0")
    assert not nproc_per_namespace("5.10.0-28-amd64") and not nproc_per_namespace("weird")


def probe_verdicts(exercise: str, answers: dict, seed: int) -> list:
    """The grader's verdict on each probe of `exercise` for the learner functions `answers`
    (called here, as the kernel would, on the inputs drawn from `seed`)."""
    from dit_mini.course.grading.probes import probes_of
    from dit_mini.course.grading.runner import _verdict

    found = []
    g = torch.Generator().manual_seed(seed)
    for probe in probes_of(exercise):
        for args in probe.make(g):
            tensors: dict = {}
            built = codec.decode(codec.encode(args, tensors), tensors)
            try:
                out = HARNESSES[probe.harness](*[answers[n] for n in probe.names], *built)
                back: dict = {}
                result = {"ok": True, "out": codec.decode(codec.encode(out, back), back)}
            except Exception as error:  # noqa: BLE001 - a wrong answer may raise
                result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
            found.append(_verdict(probe, args, result))
    return found


def test_cartographer_probes_tell_right_from_wrong():
    """Notebook 04's U-Net exercises, on fresh U-Net configs and maps: the honest answers pass,
    the common mistakes and an answer that only knows the notebook's own cases fail."""
    from dit_mini.models.unet import unet_config

    def shapes(config, size, extra=0):
        return [(w, size >> (i + extra), size >> (i + extra)) for i, w in enumerate(config.widths)]

    def halved_too_often(config, size):
        return shapes(config, size, extra=1)

    mine = unet_config("unet-tiny", base_channels=16, num_classes=0)  # the notebook's config
    known = {(mine.widths, s): shapes(mine, s) for s in (32, 64)}

    def lookup(config, size):  # the notebook's self-check cases, by heart
        return known.get((config.widths, size), known[(mine.widths, 32)])

    merges = {
        "right": lambda a, b: torch.cat([a, b], 1),
        "swapped": lambda a, b: torch.cat([b, a], 1),
        "added": lambda a, b: a + b[:, : a.shape[1]],
    }
    for seed in range(12):  # (seeds 3, 5, 6 and 7 draw a U-Net whose lowest level is 1 x 1)
        found = {
            name: probe_verdicts("04.contraction_shapes", {"contraction_shapes": fn}, seed)
            for name, fn in [("right", shapes), ("halved", halved_too_often), ("lookup", lookup)]
        }
        for name, fn in merges.items():
            found[f"merge {name}"] = probe_verdicts("04.merge_skip", {"merge_skip": fn}, seed)
        assert found["right"] == [None] * 3 and found["merge right"] == [None, None], found
        assert all(found["halved"]) and all(found["lookup"]), found
        assert all(found["merge swapped"]) and "differ" in found["merge swapped"][1]
        assert all(found["merge added"]) and "shape" in found["merge added"][1]


def test_configs_cross_as_markers():
    value = (codec.Config("unet-nano", {"base_channels": 8, "channel_mults": (1, 3)}, "unet"),)
    tensors: dict = {}
    data = codec.encode(value, tensors)
    built = codec.decode(data, tensors)[0]
    assert type(built).__name__ == "UNetConfig" and built.widths == (8, 24)
    assert codec.decode(data, tensors, build=False)[0].family == "unet"
    assert type(codec.decode(codec.encode(codec.Config("tiny"), {}), {})).__name__ == "DiTConfig"
    for body in (["x", {"$dict": []}, "gan"], ["x", 5], ["x"]):  # a family, overrides, length
        with pytest.raises(ValueError):
            codec.decode({"$config": body}, {})
