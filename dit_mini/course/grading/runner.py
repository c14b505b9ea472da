"""Grade one submission: check the file, run it in its sandbox, probe it, compare, score.

Steps: (1) read the file (capped) and check it is a notebook; (2) read its cells' source for
answers that are the package's own (`compare.package_answers`); (3) copy it alone into a fresh
private folder and start the sandbox's launcher; (4) when the launcher reports "cells done",
draw a secret seed, make every probe's inputs (`probes.PROBES`), write them into the sandbox and
say "go"; (5) when the launcher finishes, or the wall time runs out, kill the sandbox's whole
process tree; (6) read the outputs as data, compute the references in this process from the
package, compare, and score each exercise. Without a sandbox (`bwrap=None`, only with the
instructor's explicit flag) the launcher runs as a plain child process with the same limits.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from .codec import decode, dump, encode, load, read_capped
from .compare import compare, package_answers
from .harness import HARNESSES
from .probes import probes_of
from .report import ExerciseGrade, NotebookGrade
from .sandbox import SANDBOX_HOME, Limits, prepare_home, sandbox_argv, sandbox_env

__all__ = ["MAX_NOTEBOOK_BYTES", "grade_submission", "read_notebook"]

MAX_NOTEBOOK_BYTES = 50 * 2**20


def read_notebook(path: Path):
    """(notebook, bytes) of a submitted file, or a ValueError that says why it is not one."""
    import nbformat  # deferred: the optional `test` extra

    data = read_capped(path, MAX_NOTEBOOK_BYTES)
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # noqa: BLE001 - whatever the file is, it is not a notebook
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(f"{type(error).__name__}: {first[:160]}") from None
    return nb, data


def _calls(exercises, seed: int) -> list[tuple]:
    """(exercise, probe, args) for every probe case, inputs drawn from the secret `seed`."""
    g = torch.Generator().manual_seed(seed)
    return [
        (name, probe, args)
        for name, _ in exercises
        for probe in probes_of(name)
        for args in probe.make(g)
    ]


def _reference(probe, args, cache: dict):
    key = (probe.exercise, probe.part, id(args))
    if key not in cache:
        tensors: dict = {}
        built = decode(encode(args, tensors), tensors)  # the kernel's exact inputs
        cache[key] = HARNESSES[probe.harness](probe.reference(), *built)
    return cache[key]


def _verdict(probe, args, result) -> str | None:
    """None when the call's output passes, else the reason."""
    if not isinstance(result, dict) or not result.get("ok"):
        error = result.get("error", "no output") if isinstance(result, dict) else "no output"
        plain = "defined" in str(error) or str(error).startswith("the probe")
        return str(error) if plain else f"your code: {error}"
    output = result.get("out")
    if probe.test is not None:
        return probe.test(output, args)
    return compare(output, _reference(probe, args, {}), probe.atol, probe.rtol)


def _launch(job_dir: Path, home: Path, bwrap: str | None, slot: int, threads: int, fast: bool):
    launcher = [sys.executable, "-m", "dit_mini.course.grading.launcher"]
    env = sandbox_env(threads, fast)
    if bwrap is None:
        env["HOME"] = env["TMPDIR"] = str(home)
        env["DIT_MINI_CACHE"] = str(home / ".cache")
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[3])
        argv = [*launcher, str(home / "job.json")]
        return subprocess.Popen(
            argv,
            cwd=home,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            text=True,
        )
    argv = sandbox_argv(bwrap, home, slot, [*launcher, f"{SANDBOX_HOME}/job.json"], env)
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
        umask=0o022,
    )


def _kill(proc) -> None:
    """End the sandbox: its process group, then bwrap (its pid namespace goes with it)."""
    for target in (lambda: os.killpg(proc.pid, signal.SIGKILL), proc.kill):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait()


def _converse(proc, deadline: float, on_cells_done) -> str:
    """Read the launcher's lines until it finishes; '' on success, else what went wrong."""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not selector.select(timeout=min(left, 5)):
            if time.monotonic() >= deadline:
                return "wall"
            continue
        line = proc.stdout.readline()
        if not line:
            return "ended"
        if line.strip() == "cells done":
            on_cells_done()
            proc.stdin.write("go\n")
            proc.stdin.flush()
        elif line.strip() == "finished":
            return ""


def _status(home: Path) -> dict:
    try:
        status = json.loads(read_capped(home / "status.json", 2**20))
        return status if isinstance(status, dict) else {}
    except (OSError, ValueError):
        return {}


def _memory_note(home: Path, limits: Limits) -> str:
    try:
        text = read_capped(home / "executed.ipynb", 256 * 2**20).decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""
    if '"ename": "MemoryError"' in text or "Cannot allocate memory" in text:
        return f"out of memory at the {limits.memory / 2**30:g} GiB limit"
    return ""


def _save_executed(home: Path, executed: Path | None) -> None:
    if executed is None:
        return
    try:
        data = read_capped(home / "executed.ipynb", 256 * 2**20)
    except (OSError, ValueError):
        return
    executed.parent.mkdir(parents=True, exist_ok=True)
    executed.write_bytes(data)


def grade_submission(
    submission,
    exercises: list[tuple[str, int]],
    limits: Limits,
    bwrap: str | None,
    slot: int = 0,
    threads: int = 1,
    fast: bool = True,
    allow_package_answers: bool = False,
    executed: Path | None = None,
    key: str = "",
) -> NotebookGrade:
    """Grade one `discover.Submission` on `exercises` [(name, points)]; see the module doc."""
    start = time.monotonic()
    grade = NotebookGrade(
        submission.student,
        submission.notebook,
        note=submission.note,
        file=str(submission.path or ""),
        key=key,
        sandboxed=bwrap is not None,
    )

    def everything(status: str, detail: str) -> NotebookGrade:
        grade.exercises = [ExerciseGrade(n, 0, p, status, detail) for n, p in exercises]
        grade.seconds = round(time.monotonic() - start, 1)
        return grade

    if submission.path is None:
        return everything("missing", f"no {submission.notebook} in the student's folder")
    try:
        nb, data = read_notebook(submission.path)
    except (OSError, ValueError) as error:
        return everything("not a notebook", f"not a notebook: {error}")
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    answers = {}
    for name, _ in exercises:
        for probe in probes_of(name):
            for learner in probe.names:
                answers.setdefault(learner, set()).update(p.split(":")[1] for p in probe.package)
    static_flags = package_answers(sources, answers)
    grade.phases["read"] = round(time.monotonic() - start, 2)
    home = Path(tempfile.mkdtemp(prefix="dit-mini-grade-"))
    try:
        return _run(
            grade,
            exercises,
            nb,
            data,
            home,
            limits,
            bwrap,
            slot,
            threads,
            fast,
            static_flags,
            allow_package_answers,
            executed,
            start,
        )
    finally:
        lap = time.monotonic()
        shutil.rmtree(home, ignore_errors=True)
        grade.phases["cleanup"] = round(time.monotonic() - lap, 2)


def _run(
    grade,
    exercises,
    nb,
    data,
    home,
    limits,
    bwrap,
    slot,
    threads,
    fast,
    static_flags,
    allow_package_answers,
    executed,
    start,
):
    (home / "submission.ipynb").write_bytes(data)
    root = SANDBOX_HOME if bwrap is not None else str(home)
    probe_dir = home / ".probe"
    prepare_home(home, slot) if bwrap is not None else (home / ".probe").mkdir()
    out_dir = home / ".probe" / "out"
    job = {
        "notebook": f"{root}/submission.ipynb",
        "executed": f"{root}/executed.ipynb",
        "status": f"{root}/status.json",
        "log": f"{root}/.tmp/launcher.log",
        "home": root,
        "probe_in": f"{root}/.probe",
        "probe_out": f"{root}/.probe/out",
        "timeout": limits.timeout,
        "import_timeout": limits.import_timeout,
        "max_output": limits.max_output,
        "limits": limits.for_launcher(bwrap is not None),
    }
    (home / ".tmp").mkdir(exist_ok=True)
    calls: list[tuple] = []

    def on_cells_done():
        lap = time.monotonic()
        calls.extend(_calls(exercises, secrets.randbits(62)))
        for i, (_, probe, args) in enumerate(calls):
            spec = {
                "harness": probe.harness,
                "names": list(probe.names),
                "args": args,
                "package": list(probe.package),
            }
            dump(spec, probe_dir / f"in-{i}")
        grade.phases["inputs"] = round(time.monotonic() - lap, 2)

    out_dir.mkdir()
    if bwrap is not None and os.geteuid() == 0:
        os.chown(out_dir, 61000 + slot, 61000 + slot)
        os.chmod(probe_dir, 0o755)
    job["t0"] = time.time()
    (home / "job.json").write_text(json.dumps(job))
    grade.phases["setup"] = round(time.monotonic() - start - grade.phases["read"], 2)
    proc = _launch(home, home, bwrap, slot, threads, fast)
    try:
        ended = _converse(proc, start + limits.wall, on_cells_done)
    finally:
        lap = time.monotonic()
        _kill(proc)
        grade.phases["kill"] = round(time.monotonic() - lap, 2)
    status = _status(home)
    lap = time.monotonic()
    _save_executed(home, executed)
    grade.phases["save_executed"] = round(time.monotonic() - lap, 2)
    inside = status.get("phases", {})
    if isinstance(inside, dict):
        grade.phases.update(
            {f"sandbox.{k}": float(v) for k, v in inside.items() if isinstance(v, (int, float))}
        )
    note = status.get("note", "") if isinstance(status.get("note"), str) else ""
    if ended == "wall":
        note = f"timed out after {limits.wall} s (the whole submission)"
    elif ended == "ended" and not note:
        note = "the sandbox ended early (its processes were killed)"
    note = _memory_note(home, limits) or note
    grade.note = "; ".join(x for x in (grade.note, note[:200]) if x)
    grade.timed_out_cells = [
        int(i) for i in status.get("timed_out_cells", []) if isinstance(i, int)
    ]
    cells = status.get("cells_seconds", 0.0)
    grade.cells_seconds = float(cells) if isinstance(cells, (int, float)) else 0.0
    timeouts = {i for i in status.get("probe_timeouts", []) if isinstance(i, int)}
    lap = time.monotonic()
    _score(grade, exercises, calls, out_dir, static_flags, allow_package_answers, limits, timeouts)
    grade.phases["score"] = round(time.monotonic() - lap, 2)
    grade.seconds = round(time.monotonic() - start, 1)
    return grade


def _score(grade, exercises, calls, out_dir, static_flags, allow, limits, timeouts) -> None:
    for name, points in exercises:
        mine = [(i, probe, args) for i, (n, probe, args) in enumerate(calls) if n == name]
        if not probes_of(name):
            grade.exercises.append(
                ExerciseGrade(
                    name, 0, points, "not probed", "the grader has no probe for this exercise"
                )
            )
            continue
        if not mine:
            detail = grade.note or "the submission's cells did not finish"
            grade.exercises.append(ExerciseGrade(name, 0, points, "not graded", detail))
            continue
        reason, flags, timed_out = None, [], False
        for i, probe, args in mine:
            try:
                result = load(out_dir / f"out-{i}", build=False)
            except ValueError as error:
                result = {"ok": False, "error": f"the probe left no usable output ({error})"}
            timed_out = timed_out or i in timeouts
            if isinstance(result, dict):
                flags += [str(f)[:120] for f in result.get("flags", []) if isinstance(f, str)][:4]
            flags += [static_flags[n] for n in probe.names if n in static_flags]
            try:
                why = _verdict(probe, args, result)
            except Exception as error:  # noqa: BLE001 - a malformed output is a wrong output
                why = f"unreadable output ({type(error).__name__})"
            if why and "NotImplementedError" in why:
                why = "not solved yet"
            if why and not reason:
                reason = f"{probe.part}: {why}" if probe.part else why
        flags = sorted(set(flags))
        if flags and not allow:
            grade.exercises.append(
                ExerciseGrade(
                    name,
                    0,
                    points,
                    "package answer",
                    "the answer is the package's own",
                    "; ".join(flags),
                )
            )
        elif reason is None:
            grade.exercises.append(
                ExerciseGrade(name, points, points, "passed", "", "; ".join(flags))
            )
        elif timed_out:
            grade.exercises.append(
                ExerciseGrade(name, 0, points, "timed out", f"timed out after {limits.timeout} s")
            )
        else:
            grade.exercises.append(
                ExerciseGrade(name, 0, points, "failed", reason[:200], "; ".join(flags))
            )


def submission_key(path: Path | None, salt: str) -> str:
    """The resume key: the file's hash with the solutions' and package's version."""
    digest = hashlib.sha256(salt.encode())
    if path is not None:
        digest.update(path.read_bytes()[: MAX_NOTEBOOK_BYTES + 1])
    return digest.hexdigest()[:24]
