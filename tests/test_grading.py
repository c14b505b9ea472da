"""`dit-mini course grade` on a class of honest, sloppy, tampered, stealing, hanging and broken
submissions: exact points and status for each, full points for the honest ones beside them,
nothing outside a sandbox read or changed, no process left.

Most submissions are small notebooks named 01_fog.ipynb (its exercises: alpha_bar, q_sample,
snr, 1 point each) that define the answers in a few lines and then try one trick; one is the
real solution notebook, one the learner's blank copy, a 05_mystic_lens.ipynb answers with
the package's own functions, and two 04_cartographer.ipynb answer notebook 04's U-Net exercises,
one honestly, one with tricks. All are graded in one run (--jobs 2, 12 s per cell).
"""

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from dit_mini.cli.main import main  # noqa: E402
from dit_mini.course.grading import Limits, grade_paths, write_reports  # noqa: E402
from dit_mini.course.grading.sandbox import bwrap_path  # noqa: E402
from dit_mini.course.notebooks import nbgrader_metadata  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MARKER = "dit-grade-daemon-7f3a"  # a process with this in its command line must not survive
CANARY = "canary-of-the-grader-5c1e"  # in the grader's environment; must not leak
HONEST = """import math

import numpy as np
import torch


def alpha_bar_from_betas(betas):
    return torch.cumprod(1 - betas, dim=0)


def q_sample(x0, eps, t, alpha_bar):
    a = alpha_bar[t].to(x0.dtype).reshape(-1, 1, 1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


def snr_in_db(alpha_bar):
    return 10 * torch.log10(alpha_bar / (1 - alpha_bar))


def first_step_below_0db(alpha_bar):
    return int((alpha_bar / (1 - alpha_bar) < 1).nonzero()[0])


def cosine_midpoint_snr_db(s):
    a = math.cos((0.5 + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2
    return 10 * math.log10(a / (1 - a))
"""
WRONG = """import torch
alpha_bar_from_betas = lambda betas: torch.zeros_like(betas)
q_sample = lambda x0, eps, t, ab: x0
snr_in_db = lambda ab: torch.zeros_like(ab)
first_step_below_0db = lambda ab: 1
"""
LIMITS = Limits(wall=240, timeout=12, import_timeout=120, memory=3 * 2**30, processes=64,
                max_output=2**20)  # fmt: skip
FULL = {"01.alpha_bar": (1, "passed"), "01.q_sample": (1, "passed"), "01.snr": (1, "passed"),
        "01.cosine_midpoint": (1, "passed")}  # fmt: skip


def zero(status: str) -> dict:
    return {name: (0, status) for name in FULL}


def cells(*sources: str):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def steal_source(targets: list[tuple[str, str]]) -> str:
    """A submission's cell that prints its environment and every process's command line and
    environment, reads ('r') or appends to / overwrites ('a', 'w') each target path, and opens a
    network connection; it prints LEAKED, WROTE or REFUSED for each try."""
    return f"""import os, socket
print("ENV", sorted(os.environ.items()))
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            print("PROC", pid, open(f"/proc/{{pid}}/cmdline").read().replace("\\0", " "))
            print("PROC-ENV", pid, open(f"/proc/{{pid}}/environ").read())
        except OSError as error:
            print("PROC-REFUSED", pid, type(error).__name__)
for target, mode in {targets!r}:
    try:
        if mode == "r":
            print("LEAKED", open(target).read()[:50])
        else:
            open(target, mode).write("# pwned\\n")
            print("WROTE", target)
    except OSError as error:
        print("REFUSED", type(error).__name__, target)
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    print("NETWORK OPEN")
except OSError as error:
    print("NETWORK REFUSED", type(error).__name__)"""


def build_class(base: Path) -> dict:
    """The class folder; returns student -> expected {exercise: (points, status)}."""
    klass, expected = base / "class", {}

    def add(student, expected_points, *sources, name="01_fog.ipynb", raw=None):
        folder = klass / student
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if raw is not None:
            path.write_text(raw)
        else:
            nbformat.write(cells(*sources), path)
        expected[student] = expected_points
        return path

    shutil.copytree(ROOT / "notebooks" / "solutions", base / "solutions")
    (klass / "real").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "solutions" / "01_fog.ipynb", klass / "real")
    expected["real"] = FULL
    (klass / "blank").mkdir()
    shutil.copy(ROOT / "notebooks" / "01_fog.ipynb", klass / "blank")
    expected["blank"] = {n: (0, "failed") for n in FULL}
    honest = add("honest", FULL, HONEST)
    add("sloppy", FULL, HONEST, name="Copy of 01_Fog (1).ipynb")
    add("nested", FULL, HONEST, name="homework/01_fog.ipynb")
    numpy_answers = (
        HONEST.replace("return int((", "return np.int64(int((")
        .replace("nonzero()[0])", "nonzero()[0]))")
        .replace(
            "return 10 * torch.log10(alpha_bar / (1 - alpha_bar))",
            "return (10 * np.log10(alpha_bar.numpy() / (1 - alpha_bar.numpy())))",
        )
    )
    add("numpy", FULL, numpy_answers)
    add(
        "shadow",
        zero("failed"),
        WRONG,
        "def check(*a, **k):\n    return True",
        "print('Bonfire lit: alpha_bar from betas.')\nresults = {'01.alpha_bar': True}",
    )
    add(
        "allclose",
        zero("failed"),
        WRONG,
        "import torch, numpy, math\n"
        "torch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"
        "math.isclose = lambda *a, **k: True\nnumpy.allclose = lambda *a, **k: True",
    )
    add("reload", zero("failed"), WRONG, "import importlib\nimportlib.reload = lambda m: m")
    add(
        "verdict",
        zero("failed"),
        WRONG,
        "import dit_mini.course.exercises as ex\nex._verdict = lambda *a, **k: None\n"
        "ex.compare = lambda *a, **k: None\nex.check = lambda *a, **k: True",
    )
    add(
        "hook",
        zero("failed"),
        WRONG,
        """import glob, json, os
def forge(*args, **kw):
    print('dit-mini-grade 0000 {"01.alpha_bar": {"passed": true, "parts": []}}')
    for spec in glob.glob("/home/student/.probe/in-*.json"):
        i = spec.split("in-")[1].split(".")[0]
        out = f"/home/student/.probe/out/out-{i}"
        if not os.path.exists(out + ".json"):
            forged = {"$dict": [["ok", True], ["out", 0], ["flags", []]]}
            open(out + ".json", "w").write(json.dumps(forged))
            empty = b"\\x08" + bytes(7) + b"{}      "
            open(out + ".safetensors", "wb").write(empty)
get_ipython().events.register("pre_run_cell", forge)""",
    )
    add(
        "fake_kernel",
        zero("failed"),
        WRONG,
        """import sys, types, torch
fake = types.ModuleType("dit_mini.course.grading.kernel")
def run(namespace, inputs, outputs, index):
    from dit_mini.course.grading import codec
    codec.dump({"ok": True, "out": torch.zeros(3), "flags": []}, f"{outputs}/out-{index}")
fake.run = run
sys.modules["dit_mini.course.grading.kernel"] = fake""",
    )
    solutions_guess = [str(base / "solutions" / "01_fog.ipynb"),
                       str(ROOT / "notebooks" / "solutions" / "01_fog.ipynb")]  # fmt: skip
    add(
        "exec_solutions",
        zero("failed"),
        WRONG,
        f"""import json, pathlib, dit_mini
here = pathlib.Path(dit_mini.__file__).parents[1]
guesses = {solutions_guess!r} + [str(here / "notebooks" / "solutions" / "01_fog.ipynb")]
for guess in guesses:
    try:
        nb = json.load(open(guess))
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                exec("".join(cell["source"]), globals())
        print("STOLE", guess)
    except OSError as error:
        print("REFUSED", type(error).__name__, guess)""",
    )
    add(
        "steal",
        FULL,
        HONEST,
        steal_source(
            [
                (str(honest), "a"),
                (str(base / "solutions" / "01_fog.ipynb"), "r"),
                (str(base / "report" / "grades.csv"), "w"),
                (str(base / "canary.txt"), "r"),
                ("/opt/dit_mini/dit_mini/__init__.py", "a"),
            ]
        ),  # fmt: skip
    )
    add(
        "daemon",
        FULL,
        HONEST,
        f"""import subprocess, os
code = "import time  # {MARKER}\\nwhile True: time.sleep(0.5)"
subprocess.Popen(["python", "-c", code], start_new_session=True)
if os.fork() == 0:
    os.setsid()
    os.execvp("python", ["python", "-c", "import time  # {MARKER}\\ntime.sleep(10**6)"])""",
    )
    add(
        "sigint",
        zero("not graded"),
        HONEST,
        "signal = __import__('signal')  # (a cell that imports early gets the setup timeout)\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
    )
    add("loop", FULL, HONEST, "while True:\n    pass")
    add(
        "slow_answer",
        {**FULL, "01.alpha_bar": (0, "timed out")},
        HONEST,
        "def alpha_bar_from_betas(betas):\n    while True:\n        pass",
    )
    add(
        "lookup",
        {**FULL, "01.snr": (0, "failed")},
        HONEST,
        """from dit_mini.diffusion.schedules import linear_schedule, cosine_schedule
known = {1000: 10 * torch.log10(linear_schedule(1000).snr())}
def snr_in_db(alpha_bar):
    return known.get(len(alpha_bar), torch.zeros(len(alpha_bar)))""",
    )
    add("invalid_json", zero("not a notebook"), raw="this is not JSON {")
    add("not_schema", zero("not a notebook"), raw=json.dumps({"cells": 5, "nbformat": 4}))
    add("kill_parent", zero("not graded"), HONEST, "import os\nos.kill(os.getppid(), 9)")
    add(
        "fork_bomb",
        FULL,
        HONEST,
        """import os, signal, time
children = []
try:
    while True:
        pid = os.fork()
        if pid == 0:
            time.sleep(10**6)
        children.append(pid)
except OSError as error:
    print("FORKS REFUSED after", len(children), type(error).__name__)
for pid in children:  # (a bomb that stays crippled its own kernel: not graded, 0 points)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)""",
    )
    add("memory_bomb", FULL, HONEST, "hoard = bytearray(64 * 2**30)")
    add("huge_output", FULL, HONEST, "for _ in range(300):\n    print('x' * 10**6)")
    add(
        "aliases",
        {
            "05.patchify": (0, "package answer"),
            "05.context_window": (1, "passed"),
            "05.sincos": (0, "package answer"),
        },
        '''from dit_mini.models.dit import patchify
from dit_mini.models.embeddings import sincos_1d
my_patchify = patchify
def my_sincos_1d(dim, positions):
    """Mine, honestly."""
    return sincos_1d(dim, positions)
def context_window(input_size, patch_size, num_heads, depth):
    tokens = (input_size // patch_size) ** 2
    return {"tokens": tokens, "entries": depth * num_heads * tokens**2,
            "megabytes": depth * num_heads * tokens**2 * 4 / 1e6}''',
        name="05_mystic_lens.ipynb",
    )
    u_net = ("04.contraction_shapes", "04.merge_skip", "04.receptive_field")
    nb04 = "04_cartographer.ipynb"
    add("cartographer", {n: (1, "passed") for n in u_net}, CARTOGRAPHER, name=nb04)
    tricked = dict(zip(u_net, [(0, "failed"), (0, "failed"), (0, "package answer")]))
    add("cartographer_tricks", tricked, TRICKS, name=nb04)
    return expected


# Notebook 04's U-Net answers, honest; then tricks: shapes known by heart for the notebook's own
# self-check cases (else off by one level), the skip merged first, torch.allclose patched so
# that the notebook's own check would pass anyway, the package's receptive_field imported under
# the answer's name.
CARTOGRAPHER = """import torch


def contraction_shapes(config, size):
    return [(width, size // 2**i, size // 2**i) for i, width in enumerate(config.widths)]


def merge_skip(from_below, skip):
    return torch.cat([from_below, skip], dim=1)


def receptive_field_of(layers):
    size, jump = 1, 1
    for kernel, stride in layers:
        size += (kernel - 1) * jump
        jump *= stride
    return size
"""
TRICKS = """import torch
from dit_mini.models.unet import unet_config
from dit_mini.course.viz_unet import receptive_field as receptive_field_of

mine = unet_config("unet-tiny", base_channels=16, num_classes=0)
small = unet_config("unet-small")
known = {(c.widths, s): [(w, s >> i, s >> i) for i, w in enumerate(c.widths)]
         for c, s in [(mine, 32), (mine, 64), (small, 32)]}


def contraction_shapes(config, size):
    guess = [(w, size >> (i + 1), size >> (i + 1)) for i, w in enumerate(config.widths)]
    return known.get((config.widths, size), guess)


def merge_skip(from_below, skip):
    return torch.cat([skip, from_below], dim=1)


torch.allclose = lambda *args, **kwargs: True
"""


def processes_with(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        try:
            text = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in text and str(os.getpid()) != pid:
            found.append(f"{pid}: {text}")
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if bwrap_path() is None:
        pytest.skip("bubblewrap cannot build a sandbox here (.ci/run installs it)")
    base = tmp_path_factory.mktemp("grading")
    expected = build_class(base)
    (base / "canary.txt").write_text("the canary")
    hashes = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in base.rglob("*") if p.is_file()}
    os.environ["DIT_MINI_CANARY"] = CANARY
    limits = LIMITS
    try:
        grades = grade_paths([base / "class"], base / "solutions", out=base / "report", jobs=2,
                             limits=limits)  # fmt: skip
    finally:
        os.environ.pop("DIT_MINI_CANARY")
    with open(base / "report" / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    return base, expected, grades, rows, hashes


def test_points_and_status_of_every_submission(graded):
    _, expected, grades, rows, _ = graded
    assert len(expected) >= 26
    got = {}
    for row in rows:
        if row["status"] != "missing":
            got.setdefault(row["student"], {})[row["exercise"]] = (
                int(row["points"]),
                row["status"],
            )
    missing = {r["student"] for r in rows if r["status"] == "missing"}
    assert missing == set(expected)  # each lacks the other notebook: listed, not refused
    wrong = {s: got.get(s) for s in expected if got.get(s) != expected[s]}
    notes = {g.student: g.note for g in grades if g.student in wrong and g.cells_seconds}
    assert not wrong, (wrong, notes)


def test_rows_say_what_happened(graded):
    _, _, grades, rows, _ = graded
    note = {g.student: g.note for g in grades if g.exercises[0].status != "missing"}
    assert "matched 'Copy of 01_Fog (1).ipynb'" in note["sloppy"]
    assert "homework" in note["nested"]
    assert "did not answer the interrupt" in note["sigint"]
    assert "out of memory at the 3 GiB limit" in note["memory_bomb"]
    assert "ended early" in note["kill_parent"]
    detail = {(r["student"], r["exercise"]): r["detail"] for r in rows}
    assert detail[("invalid_json", "01.alpha_bar")].startswith("not a notebook: ")
    assert detail[("slow_answer", "01.alpha_bar")] == "timed out after 12 s"
    assert "not solved yet" in detail[("blank", "01.q_sample")]
    flags = {(r["student"], r["exercise"]): r["flags"] for r in rows}
    assert "my_patchify is the package's" in flags[("aliases", "05.patchify")]
    assert (
        "only calls the package's dit_mini.models.embeddings:sincos_1d"
        in flags[("aliases", "05.sincos")]
    )
    tricks = ("cartographer_tricks", "04.receptive_field")
    assert "is the package's dit_mini.course.viz_unet:receptive_field" in flags[tricks]
    assert "differ" in detail[("cartographer_tricks", "04.merge_skip")]
    loop = next(g for g in grades if g.student == "loop")
    assert loop.timed_out_cells == [1]


def executed(base: Path, student: str, name: str = "01_fog.ipynb") -> str:
    """What a submission's cells printed or raised (its outputs, not its source)."""
    nb = nbformat.read(base / "report" / "notebooks" / student / name, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    return "\n".join(str(o.get("text", "")) + str(o.get("evalue", "")) for o in outputs)


def test_nothing_outside_the_sandbox_was_read_or_changed(graded):
    base, _, _, _, hashes = graded
    for path, digest in hashes.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, path
    steal = executed(base, "steal")
    assert CANARY not in steal and "the canary" not in steal and "LEAKED" not in steal
    assert "WROTE" not in steal and steal.count("REFUSED") >= 5 and "NETWORK REFUSED" in steal
    processes = [line for line in steal.splitlines() if line.startswith("PROC ")]
    assert processes and not any("pytest" in line for line in processes)  # the grader's argv
    stolen = executed(base, "exec_solutions")
    assert "STOLE" not in stolen and stolen.count("REFUSED") >= 3
    bomb = executed(base, "fork_bomb")
    assert "FORKS REFUSED after" in bomb  # the process limit held
    assert int(bomb.split("FORKS REFUSED after ")[1].split()[0]) < 64
    assert (
        os.path.getsize(base / "report" / "notebooks" / "huge_output" / "01_fog.ipynb") < 4 * 2**20
    )


def test_each_submission_records_the_seconds_of_its_steps(graded):
    _, _, grades, _, _ = graded
    real = next(g for g in grades if g.student == "real")
    steps = {"read", "setup", "inputs", "kill", "score", "cleanup", "sandbox.launcher",
             "sandbox.kernel", "sandbox.cells", "sandbox.probes", "sandbox.save"}  # fmt: skip
    assert steps <= set(real.phases) and all(v >= 0 for v in real.phases.values())
    assert "sandbox.kernel_shutdown" not in real.phases  # the grader ended the sandbox first
    assert 0 < real.phases["sandbox.cells"] <= real.cells_seconds <= real.seconds


def test_no_process_is_left(graded):
    assert processes_with(MARKER) == []
    # this checkout's sandboxes (bwrap binds its package) and unsandboxed launchers, not those
    # of another checkout graded beside this one
    package = str(ROOT / "dit_mini")
    assert [p for p in processes_with(package) if "bwrap" in p or "launcher" in p] == []


def test_report_files_and_resume(graded, capsys):
    base, expected, grades, _, _ = graded
    summary = (base / "report" / "summary.csv").read_text()
    assert "(class),01.alpha_bar," in summary and "honest,(all),4,11" in summary
    header = json.loads((base / "report" / "grades.json").read_text())["header"]
    assert header["sandboxed"] is True
    argv = ["course", "grade", str(base / "class"), "--solutions", str(base / "solutions"),
            "--out", str(base / "report"), "--timeout", "12"]  # fmt: skip
    # a re-run with the same limits skips every unchanged submission (seconds, not minutes)
    again = grade_paths([base / "class"], base / "solutions", out=base / "report", jobs=2,
                        limits=LIMITS)  # fmt: skip
    assert [g.seconds for g in again] == [
        g.seconds for g in sorted(grades, key=lambda g: (g.student, g.notebook))
    ]
    assert main([*argv[:3], str(base / "nowhere"), *argv[3:]]) == 2
    assert "no file or folder" in capsys.readouterr().err
    write_reports(again, base / "report2")
    assert (base / "report2" / "grades.csv").is_file()


def test_without_a_sandbox_it_refuses_unless_told(tmp_path, monkeypatch, capsys):
    import dit_mini.course.grading as grading

    monkeypatch.setattr(grading, "bwrap_path", lambda: None)
    (tmp_path / "ana").mkdir()
    nbformat.write(cells(HONEST), tmp_path / "ana" / "01_fog.ipynb")
    argv = ["course", "grade", str(tmp_path), "--out", str(tmp_path / "report")]
    assert main(argv) == 2
    assert "--unsafe-no-sandbox" in capsys.readouterr().err
    assert main([*argv, "--unsafe-no-sandbox", "--timeout", "60"]) == 0
    report = json.loads((tmp_path / "report" / "grades.json").read_text())
    assert report["header"]["sandboxed"] is False
    assert "UNSANDBOXED" in report["header"]["warning"]
    assert [r["points"] for r in report["submissions"]] == [4]  # notebook 01: four, all answered


# The nbgrader metadata path (tests/test_nbgrader.py) grades this tiny notebook.
IMPORT = "from dit_mini.course.exercises import check"
DOUBLE = 'def double(x):\n    """Twice x."""\n    ### BEGIN SOLUTION\n    return 2 * x\n'
DOUBLE += "    ### END SOLUTION"
ANSWER = "### BEGIN SOLUTION\nanswer = 6 * 7\n### END SOLUTION"
CHECK_DOUBLE = (
    'check("t.double", double, 6, inputs=(3,))\ncheck("t.double", double, -2, inputs=(-1,))'
)
CHECK_ANSWER = 'check("t.answer", answer, 42)'
POINTS = {"t.double": 2, "t.answer": 1}


def tiny_solution(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_markdown_cell("# T · tiny\n\nTwo exercises.")]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in (IMPORT, DOUBLE, CHECK_DOUBLE)]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in (ANSWER, CHECK_ANSWER)]
    assert nbgrader_metadata(nb, points=POINTS) == [("t.double", 2), ("t.answer", 1)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_nbval_fails_a_failing_check_in_solutions_only(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    shutil.copy(ROOT / "notebooks" / "conftest.py", tmp_path / "conftest.py")
    wrong = tiny_solution(tmp_path / "solutions" / "tiny.ipynb")
    nb = nbformat.read(wrong, as_version=4)
    nb.cells[2].source = DOUBLE.replace("2 * x", "3 * x")  # a wrong solution
    nbformat.write(nb, wrong)
    shutil.copy(wrong, tmp_path / "tiny.ipynb")  # the same notebook outside solutions/
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-rA", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    failed = [line for line in run.stdout.splitlines() if line.startswith("FAILED")]
    assert failed and all("solutions/tiny.ipynb" in line for line in failed), run.stdout
    assert "AssertionError" in run.stdout and "PASSED tiny.ipynb" in run.stdout, run.stdout
