"""Grade one submission: check the file, run it in its sandbox, probe it, compare, score.

Steps: (1) read the file (capped) and check it is a notebook; (2) read its cells' source for
answers that are the package's own (`compare.package_answers`); (3) copy it alone into a fresh
private folder and start the sandbox's launcher; (4) when the launcher reports "cells done",
write the grading run's probe inputs (`calls.NotebookCalls`: drawn from a secret seed once per
run and notebook) into the sandbox and say "go"; (5) when the launcher finishes, or the wall
time runs out, kill the sandbox's whole process tree; (6) read the outputs as data, compare
them with the references (computed in this process from the package, once per run), and score
each exercise. `GradingOptions` holds what is the same for every submission of a run. Without
a sandbox (`bwrap=None`, only with the instructor's explicit flag) the launcher runs as a plain
child process with the same limits.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .calls import NotebookCalls
from .codec import decode, encode, load, read_capped
from .compare import compare, package_answers
from .harness import HARNESSES
from .probes import probes_of
from .report import ExerciseGrade, NotebookGrade
from .sandbox import SANDBOX_HOME, UID_BASE, Limits, converse, end, prepare_home, start

__all__ = [
    "MAX_NOTEBOOK_BYTES",
    "GradingOptions",
    "grade_submission",
    "read_notebook",
    "submission_key",
]

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


def _reference(probe, args):
    """The package's output for `probe` on `args` (as the kernel decodes them), computed here."""
    tensors: dict = {}
    built = decode(encode(args, tensors), tensors)  # the kernel's exact inputs
    return HARNESSES[probe.harness](probe.reference(), *built)


def _verdict(probe, args, result, expected=None) -> str | None:
    """None when the call's output passes, else the reason. `expected()` gives the reference
    (default: computed now from the package)."""
    if not isinstance(result, dict) or not result.get("ok"):
        error = result.get("error", "no output") if isinstance(result, dict) else "no output"
        plain = "defined" in str(error) or str(error).startswith("the probe")
        return str(error) if plain else f"your code: {error}"
    output = result.get("out")
    if probe.test is not None:
        return probe.test(output, args)
    reference = expected() if expected is not None else _reference(probe, args)
    return compare(output, reference, probe.atol, probe.rtol)


@contextmanager
def _timed(phases: dict, name: str):
    """Add the seconds the block takes to `phases[name]`."""
    lap = time.monotonic()
    try:
        yield
    finally:
        phases[name] = round(phases.get(name, 0.0) + time.monotonic() - lap, 2)


@dataclass(frozen=True)
class GradingOptions:
    """How one grading run treats every submission: its `limits`, the `bwrap` binary (None:
    unsandboxed, only with the instructor's explicit flag), the kernel's `threads`, FAST mode,
    and whether answers that are the package's own may earn points."""

    limits: Limits = field(default_factory=Limits)
    bwrap: str | None = None
    threads: int = 1
    fast: bool = True
    allow_package_answers: bool = False

    def __post_init__(self):
        if self.threads < 1:
            raise ValueError(f"GradingOptions.threads must be at least 1, got {self.threads}")


@dataclass(frozen=True)
class _Work:
    """One submission on its way through `_run`: what was read, where it runs, what it needs."""

    exercises: list
    data: bytes
    home: Path
    slot: int
    static_flags: dict
    executed: Path | None
    start: float
    calls: NotebookCalls


def _status(home: Path) -> dict:
    try:
        status = json.loads(read_capped(home / "status.json", 2**20))
        return status if isinstance(status, dict) else {}
    except (OSError, ValueError):
        return {}


def _executed(home: Path) -> bytes:
    try:
        return read_capped(home / "executed.ipynb", 256 * 2**20)
    except (OSError, ValueError):
        return b""


def _memory_note(executed: bytes, limits: Limits) -> str:
    if b'"ename": "MemoryError"' in executed or b"Cannot allocate memory" in executed:
        return f"out of memory at the {limits.memory / 2**30:g} GiB limit"
    return ""


def _static_flags(nb, exercises) -> dict:
    """Learner name -> flag, for answers whose source binds them to the package's own."""
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    answers: dict = {}
    for name, _ in exercises:
        for probe in probes_of(name):
            for learner in probe.names:
                answers.setdefault(learner, set()).update(p.split(":")[1] for p in probe.package)
    return package_answers(sources, answers)


def grade_submission(
    submission,
    exercises: list[tuple[str, int]],
    options: GradingOptions,
    calls: NotebookCalls | None = None,
    slot: int = 0,
    executed: Path | None = None,
    key: str = "",
) -> NotebookGrade:
    """Grade one `discover.Submission` on `exercises` [(name, points)]; see the module doc.
    `calls`: the run's probe calls of this notebook (default: drawn for this submission alone);
    `executed`: where to save the executed notebook."""
    start = time.monotonic()
    grade = NotebookGrade(
        submission.student,
        submission.notebook,
        note=submission.note,
        file=str(submission.path or ""),
        key=key,
        sandboxed=options.bwrap is not None,
    )

    def everything(status: str, detail: str) -> NotebookGrade:
        grade.exercises = [ExerciseGrade(n, 0, p, status, detail) for n, p in exercises]
        grade.seconds = round(time.monotonic() - start, 1)
        return grade

    if submission.path is None:
        return everything("missing", f"no {submission.notebook} in the student's folder")
    with _timed(grade.phases, "read"):
        try:
            nb, data = read_notebook(submission.path)
        except (OSError, ValueError) as error:
            return everything("not a notebook", f"not a notebook: {error}")
        static_flags = _static_flags(nb, exercises)
    home = Path(tempfile.mkdtemp(prefix="dit-mini-grade-"))
    try:
        calls = calls if calls is not None else NotebookCalls(exercises, secrets.randbits(62))
        work = _Work(exercises, data, home, slot, static_flags, executed, start, calls)
        return _run(grade, work, options)
    finally:
        with _timed(grade.phases, "cleanup"):
            shutil.rmtree(home, ignore_errors=True)


def _job(work: _Work, options: GradingOptions) -> dict:
    """The launcher's job file: where everything is inside the sandbox, and the limits."""
    root = SANDBOX_HOME if options.bwrap is not None else str(work.home)
    limits = options.limits
    return {
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
        "limits": limits.for_launcher(options.bwrap is not None),
        "sandboxed": options.bwrap is not None,
        "t0": time.time(),
    }


def _run(grade: NotebookGrade, work: _Work, options: GradingOptions) -> NotebookGrade:
    home, limits, sandboxed = work.home, options.limits, options.bwrap is not None
    with _timed(grade.phases, "setup"):
        (home / "submission.ipynb").write_bytes(work.data)
        probe_dir, out_dir = home / ".probe", home / ".probe" / "out"
        prepare_home(home, work.slot) if sandboxed else probe_dir.mkdir()
        (home / ".tmp").mkdir(exist_ok=True)
        out_dir.mkdir()
        if sandboxed and os.geteuid() == 0:
            os.chown(out_dir, UID_BASE + work.slot, UID_BASE + work.slot)
            os.chmod(probe_dir, 0o755)
        (home / "job.json").write_text(json.dumps(_job(work, options)))
    probed = []

    def on_cells_done():
        with _timed(grade.phases, "inputs"):
            try:
                work.calls.write(probe_dir)
                probed.append(True)
            except OSError as error:  # (unsandboxed or not root: the folder is the student's)
                why = f"the probes' inputs could not be written ({error.strerror})"
                grade.note = "; ".join(x for x in (grade.note, why) if x)

    proc = start(home, work.slot, options.bwrap, options.threads, options.fast)
    try:
        ended = converse(proc, work.start + limits.wall, on_cells_done)
    finally:
        with _timed(grade.phases, "kill"):
            end(proc)
    with _timed(grade.phases, "save_executed"):
        status, executed = _status(home), _executed(home)
        if work.executed is not None and executed:
            work.executed.parent.mkdir(parents=True, exist_ok=True)
            work.executed.write_bytes(executed)
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
    note = _memory_note(executed, limits) or note
    grade.note = "; ".join(x for x in (grade.note, note[:200]) if x)
    grade.timed_out_cells = [
        int(i) for i in status.get("timed_out_cells", []) if isinstance(i, int)
    ]
    cells = status.get("cells_seconds", 0.0)
    grade.cells_seconds = float(cells) if isinstance(cells, (int, float)) else 0.0
    timeouts = {i for i in status.get("probe_timeouts", []) if isinstance(i, int)}
    with _timed(grade.phases, "score"):
        calls = work.calls.calls if probed else []
        _score(grade, work, calls, out_dir, options, timeouts)
    grade.phases["compare"] = round(grade.phases["score"] - grade.phases.get("references", 0), 2)
    grade.seconds = round(time.monotonic() - work.start, 1)
    return grade


def _exercise(grade, work, name, mine, out_dir, timeouts) -> tuple[str | None, list, bool]:
    """(the first reason a call of exercise `name` fails, its flags, whether one timed out)."""
    reason, flags, timed_out = None, [], False
    for i, call in mine:
        try:
            result = load(out_dir / f"out-{i}", build=False)
        except ValueError as error:
            result = {"ok": False, "error": f"the probe left no usable output ({error})"}
        timed_out = timed_out or i in timeouts
        if isinstance(result, dict):
            flags += [str(f)[:120] for f in result.get("flags", []) if isinstance(f, str)][:4]
        flags += [work.static_flags[n] for n in call.probe.names if n in work.static_flags]

        def expected(i=i):
            with _timed(grade.phases, "references"):
                return work.calls.reference(i)

        try:
            why = _verdict(call.probe, call.args, result, expected)
        except Exception as error:  # noqa: BLE001 - a malformed output is a wrong output
            why = f"unreadable output ({type(error).__name__})"
        if why and "NotImplementedError" in why:
            why = "not solved yet"
        if why and not reason:
            reason = f"{call.probe.part}: {why}" if call.probe.part else why
    return reason, sorted(set(flags)), timed_out


def _score(grade, work: _Work, calls, out_dir, options: GradingOptions, timeouts) -> None:
    for name, points in work.exercises:
        mine = [(i, call) for i, call in enumerate(calls) if call.exercise == name]
        if not probes_of(name):
            detail = "the grader has no probe for this exercise"
            grade.exercises.append(ExerciseGrade(name, 0, points, "not probed", detail))
            continue
        if not mine:
            detail = grade.note or "the submission's cells did not finish"
            grade.exercises.append(ExerciseGrade(name, 0, points, "not graded", detail))
            continue
        reason, flags, timed_out = _exercise(grade, work, name, mine, out_dir, timeouts)
        if flags and not options.allow_package_answers:
            row = (0, "package answer", "the answer is the package's own", "; ".join(flags))
        elif reason is None:
            row = (points, "passed", "", "; ".join(flags))
        elif timed_out:
            row = (0, "timed out", f"timed out after {options.limits.timeout} s", "")
        else:
            row = (0, "failed", reason[:200], "; ".join(flags))
        grade.exercises.append(ExerciseGrade(name, row[0], points, *row[1:]))


def submission_key(path: Path | None, salt: str) -> str:
    """The resume key: the file's hash with the solutions' and package's version."""
    digest = hashlib.sha256(salt.encode())
    if path is not None:
        digest.update(path.read_bytes()[: MAX_NOTEBOOK_BYTES + 1])
    return digest.hexdigest()[:24]
