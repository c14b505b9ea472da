"""The grader run by an ordinary user (not root): bubblewrap then builds each sandbox in a user
namespace (one user, 65534 inside, mapped to the grader's own), with no per-job user ids.

A small class (honest, tampered, stealing, a daemon, a fork bomb) is graded by a grader process
that runs as user 65534 (`setpriv` when the tests run as root; as it is otherwise), with
--jobs 2. As root, a Python that user 65534 cannot reach (one under /root, as on the
development machine) is shown to it read-only in a mount namespace of its own (`reach`);
nothing else changes. Asserted: exact points and status, nothing outside a sandbox read or
changed, the grader's environment not leaked, the process limit held per submission, no process
left. Skipped only where this kernel refuses unprivileged user namespaces (or bubblewrap is
missing).
"""

import csv
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from test_grading import (  # noqa: E402
    FULL,
    HONEST,
    LIMITS,
    MARKER,
    WRONG,
    cells,
    processes_with,
    steal_source,
    zero,
)

from dit_mini.course.grading.sandbox import bwrap_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534
CANARY = "canary-of-the-unprivileged-grader-9d2b"
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
GRADE = """import json, sys
from dit_mini.course.grading import Limits, grade_paths
limits = Limits(**json.loads(sys.argv[3]))
grades = grade_paths([sys.argv[1]], out=sys.argv[2], jobs=2, limits=limits)
print("graded", len(grades), "sandboxed", all(g.sandboxed for g in grades))
"""


def hidden_from_nobody(path: Path) -> Path | None:
    """The highest folder above `path` that user 65534 may not enter (None: it reaches it)."""
    for folder in [*reversed(path.parents), path][:-1]:
        if not folder.stat().st_mode & stat.S_IXOTH:
            return folder
    return None


def reach(paths: list[Path]) -> list[str]:
    """bwrap arguments (run as root: a mount namespace, nothing else) that show user 65534 each
    of `paths` at its own place, read-only, where a private folder above it hides it (a Python
    under /root, as on the development machine)."""
    args, covered = [], set()
    for path in paths:
        top = hidden_from_nobody(path)
        if top is None:
            continue
        if top not in covered:
            covered.add(top)
            args += ["--perms", "0755", "--tmpfs", str(top)]
        for folder in [p for p in reversed(path.parents) if top in p.parents]:
            args += ["--perms", "0755", "--dir", str(folder)]
        args += ["--ro-bind", str(path), str(path)]
    return ["bwrap", "--dev-bind", "/", "/", *args] if args else []


def needed() -> list[Path]:
    """What the grader must read: the interpreter's prefixes and the checkout."""
    prefixes = {Path(p).resolve() for p in (sys.base_prefix, sys.prefix, sys.exec_prefix)}
    return sorted(prefixes | {ROOT})


def private(paths: list[Path]) -> list[Path]:
    """Those of `paths` that other users may not read and enter themselves (not `reach`able)."""
    return [p for p in paths if p.stat().st_mode & 0o005 != 0o005]


def unprivileged(command: list[str]) -> list[str]:
    """`command` run as an ordinary user: user 65534 when the tests run as root."""
    if os.geteuid() != 0:
        return command
    return [*reach(needed()), *AS_NOBODY, *command]


def user_namespaces_refused(bwrap: str) -> str:
    """Why bubblewrap cannot build a user-namespace sandbox as an ordinary user here ('' if it
    can)."""
    probe = [bwrap, "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY), "--unshare-pid",
             "--unshare-net", "--die-with-parent", "--ro-bind", "/", "/", "true"]  # fmt: skip
    run = subprocess.run(unprivileged(probe), capture_output=True, text=True, timeout=60)
    return "" if run.returncode == 0 else (run.stderr.strip() or f"exit status {run.returncode}")


def build_class(klass: Path, honest_copy: Path, base: Path) -> dict:
    """Five submissions of 01_fog.ipynb; returns student -> {exercise: (points, status)}."""
    steal = steal_source(
        [(str(honest_copy), "a"), (str(base / "canary.txt"), "r"),
         (str(base / "report" / "grades.csv"), "w"), (str(base / "home" / "x"), "w"),
         ("/opt/dit_mini/dit_mini/__init__.py", "a"),
         (str(ROOT / "notebooks" / "solutions" / "01_fog.ipynb"), "r")]
    )  # fmt: skip
    bomb = """import os, signal, time
children = []
try:
    while len(children) < 2000:
        pid = os.fork()
        if pid == 0:
            time.sleep(10**6)
        children.append(pid)
except OSError as error:
    print("FORKS REFUSED after", len(children), type(error).__name__)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)"""
    daemon = f"""import subprocess, os
code = "import time  # {MARKER}\\nwhile True: time.sleep(0.5)"
subprocess.Popen(["python", "-c", code], start_new_session=True)"""
    patched = (
        "import torch, numpy, math\ntorch.allclose = lambda *a, **k: True\n"
        "math.isclose = lambda *a, **k: True\nnumpy.allclose = lambda *a, **k: True"
    )
    submissions = {
        "honest": (FULL, [HONEST]),
        "patched": (zero("failed"), [WRONG, patched]),
        "steal": (FULL, [HONEST, steal]),
        "daemon": (FULL, [HONEST, daemon]),
        "fork_bomb": (FULL, [HONEST, bomb]),
    }
    for student, (_, sources) in submissions.items():
        (klass / student).mkdir(parents=True)
        nbformat.write(cells(*sources), klass / student / "01_fog.ipynb")
    return {student: expected for student, (expected, _) in submissions.items()}


@pytest.fixture(scope="module")
def graded():
    bwrap = bwrap_path()
    if bwrap is None:
        pytest.skip("bubblewrap cannot build a sandbox here (.ci/run installs it)")
    if os.geteuid() == 0 and (closed := private(needed())):
        pytest.skip(f"{closed[0]} is private to root: user 65534 cannot run this Python")
    if why := user_namespaces_refused(bwrap):
        pytest.skip(f"this kernel refuses unprivileged user namespaces: {why}")
    # A folder that user 65534 can reach (pytest's tmp_path is private to root): the class and
    # the canary stay root's (read-only to the grader), the report and home are the grader's.
    base = Path(tempfile.mkdtemp(prefix="dit-mini-unprivileged-"))
    try:
        base.chmod(0o755)
        klass = base / "class"
        expected = build_class(klass, klass / "honest" / "01_fog.ipynb", base)
        (base / "canary.txt").write_text("the canary")
        for folder in ("report", "home"):
            (base / folder).mkdir()
            if os.geteuid() == 0:
                os.chown(base / folder, NOBODY, NOBODY)
        hashes = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in klass.rglob("*.ipynb")}
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(base / "home"),
            "PYTHONPATH": str(ROOT),
            "DIT_MINI_CACHE": str(base / "home" / "cache"),
            "DIT_MINI_FAST": "1",
            "DIT_MINI_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "DIT_MINI_CANARY": CANARY,
        }
        limits = json.dumps(LIMITS.__dict__)
        command = [sys.executable, "-c", GRADE, str(klass), str(base / "report"), limits]
        run = subprocess.run(
            unprivileged(command), env=env, cwd=base / "home", capture_output=True, text=True,
            timeout=900,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-3000:]
        with open(base / "report" / "grades.csv") as f:
            rows = list(csv.DictReader(f))
        yield base, expected, rows, hashes, run.stdout
    finally:
        shutil.rmtree(base, ignore_errors=True)


def executed(base: Path, student: str) -> str:
    nb = nbformat.read(base / "report" / "notebooks" / student / "01_fog.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    return "\n".join(str(o.get("text", "")) + str(o.get("evalue", "")) for o in outputs)


def test_points_and_status_as_an_ordinary_user(graded):
    base, expected, rows, _, stdout = graded
    assert "sandboxed True" in stdout
    assert json.loads((base / "report" / "grades.json").read_text())["header"]["sandboxed"]
    got: dict = {}
    for row in rows:
        if row["status"] != "missing":
            got.setdefault(row["student"], {})[row["exercise"]] = (
                int(row["points"]),
                row["status"],
            )
    assert got == expected


def test_the_sandbox_held_without_root(graded):
    base, _, _, hashes, _ = graded
    for path, digest in hashes.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, path
    steal = executed(base, "steal")
    assert CANARY not in steal and "the canary" not in steal and "LEAKED" not in steal
    assert "WROTE" not in steal and steal.count("REFUSED") >= 6 and "NETWORK REFUSED" in steal
    processes = [line for line in steal.splitlines() if line.startswith("PROC ")]
    assert processes and not any("grade_paths" in line for line in processes)
    bomb = executed(base, "fork_bomb")
    assert "FORKS REFUSED after" in bomb  # the process limit held, counted per sandbox
    assert int(bomb.split("FORKS REFUSED after ")[1].split()[0]) < LIMITS.processes


def test_no_process_is_left_without_root(graded):
    assert processes_with(MARKER) == []
    # this checkout's sandboxes (bwrap binds its package) and launchers, not those of another
    # checkout graded beside this one
    package = str(ROOT / "dit_mini")
    assert [p for p in processes_with(package) if "bwrap" in p or "launcher" in p] == []
