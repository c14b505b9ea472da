"""Inside the sandbox: set the limits, run the submission's cells, then the probe cells.

`python -P .../dit_mini/course/grading/launcher.py job.json` is the first process in a
submission's sandbox (a script: it needs only nbclient, not the package and torch). It (1)
makes itself non-dumpable, so the kernel it starts (same user) cannot read its file
descriptors or memory; (2) sets the resource limits that the kernel inherits: address
space, CPU time, open files, file size, processes, no core dumps; (3) keeps its stdin and stdout
(the grader's control pipe) to itself and points the kernel's at /dev/null and a log file;
(4) runs the notebook's code cells with nbclient, a per-cell timeout (the first code cells
that import, the setup, get the longer `import_timeout`), outputs capped at `max_output`
bytes; a kernel that ignores the interrupt after a timeout is killed; (5) tells the grader
"cells done" and waits for "go": only then are the probes' fresh inputs in its folder;
(6) runs one probe cell per exercise (`dit_mini.course.grading.kernel.run` on that exercise's
calls, listed in the grader's cells.json) with the per-exercise timeout; (7) saves the executed
notebook and a status file and says "finished" (sandboxed: before the kernel's shutdown, as the
grader then ends the whole sandbox at once). Nothing it writes decides points: the grader
compares the probe outputs itself.
Used by `dit_mini.course.grading.runner`.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys
import time

__all__ = ["main"]

PR_SET_DUMPABLE = 4
SETUP_CELLS = 3  # of the first code cells, those that import get `import_timeout`


def _limit(limits: dict) -> None:
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    table = {
        resource.RLIMIT_AS: limits["memory"],
        resource.RLIMIT_CPU: limits["cpu"],
        resource.RLIMIT_NOFILE: limits["files"],
        resource.RLIMIT_FSIZE: limits["file_size"],
        resource.RLIMIT_NPROC: limits["processes"],
        resource.RLIMIT_CORE: 0,
    }
    for which, value in table.items():
        if value >= 0:  # (-1: left as it is)
            resource.setrlimit(which, (value, value))


def _control(log_path: str):
    """Keep the grader's pipes on private descriptors; the kernel inherits /dev/null and a log."""
    ctl_in, ctl_out = os.fdopen(os.dup(0), "r"), os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    return ctl_in, ctl_out


def _client(nb, job: dict):
    from nbclient import NotebookClient  # deferred: the `test` extra

    cap = job["max_output"]

    class CappedClient(NotebookClient):
        """Drops a cell's outputs once the notebook's outputs pass `cap` bytes."""

        seen = 0
        capped = False

        def output(self, outs, msg, display_id, cell_index):
            size = len(json.dumps(msg.get("content", {})))
            CappedClient.seen += size
            if CappedClient.seen > cap:
                if not CappedClient.capped:
                    CappedClient.capped = True
                    note = {"name": "stderr", "text": f"[grader: outputs cut at {cap} bytes]\n"}
                    outs.append(__import__("nbformat").v4.new_output("stream", **note))
                return None
            return super().output(outs, msg, display_id, cell_index)

    error = {"ename": "CellTimeout", "evalue": "timed out", "traceback": []}
    return CappedClient(
        nb,
        timeout=job["timeout"],
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout=error,
        kernel_name="python3",
        resources={"metadata": {"path": job["home"]}},
    )


def _run_cell(client, cell, index: int, timeout: int) -> bool:
    """Run one cell with `timeout`; True when it finished in time."""
    client.timeout = timeout
    start = time.monotonic()
    client.execute_cell(cell, index)
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    return not (errors and errors[-1].get("ename") == "CellTimeout") and (
        time.monotonic() - start < timeout
    )


def _imports(source: str) -> bool:
    """Does a cell import something (the setup cells: Colab's install cell, the imports)?"""
    # deferred: imported where needed, not at the grader's start
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:  # (IPython syntax such as !pip)
        return "import " in source
    return any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree))


def _alive(client, nb) -> bool:
    """After a timeout: does the kernel answer a trivial cell within 10 s (did SIGINT work)?"""
    import nbformat  # deferred: the `test` extra

    nb.cells.append(nbformat.v4.new_code_cell("pass  # the grader: is the kernel responsive?"))
    return _run_cell(client, nb.cells[-1], len(nb.cells) - 1, 10)


def _cells(client, nb, job: dict, status: dict) -> bool:
    """The submission's code cells; False when the kernel is gone or unresponsive."""
    seen = 0
    for index, cell in enumerate(list(nb.cells)):
        if cell.cell_type != "code":
            continue
        setup = seen < SETUP_CELLS and _imports(cell.source)
        timeout = job["import_timeout"] if setup else job["timeout"]
        seen += 1
        if not _run_cell(client, cell, index, timeout):
            status["timed_out_cells"].append(index)
            if not _alive(client, nb):
                status["note"] = (
                    f"cell {index} ran past {timeout} s and the kernel did not answer "
                    "the interrupt (killed)"
                )
                return False
        status["cells_run"] += 1
    return True


def _probes(client, nb, job: dict, status: dict) -> None:
    """One probe cell per exercise (cells.json: its call indices), each with `timeout`."""
    import nbformat  # deferred: the `test` extra

    with open(f"{job['probe_in']}/cells.json") as f:
        groups = json.load(f)
    for group in groups:
        where = f"{job['probe_in']!r}, {job['probe_out']!r}, {[int(i) for i in group]!r}"
        source = (
            "import dit_mini.course.grading.kernel as _dm_grader_kernel\n"
            f"_dm_grader_kernel.run(globals(), {where})"
        )
        nb.cells.append(nbformat.v4.new_code_cell(source))
        if not _run_cell(client, nb.cells[-1], len(nb.cells) - 1, job["timeout"]):
            status["probe_timeouts"] += group
            if not _alive(client, nb):
                break
        status["probes_run"] += len(group)


def _finish(nb, job: dict, status: dict, ctl_out, clock) -> None:
    """Save the executed notebook and the status, then tell the grader "finished"."""
    import nbformat  # deferred: the `test` extra

    try:
        nbformat.write(nb, job["executed"])
    except Exception as error:  # noqa: BLE001 - a notebook too big to write is still graded
        status["note"] += f"; the executed notebook could not be saved ({type(error).__name__})"
    clock("save")
    with open(job["status"], "w") as f:
        json.dump(status, f)
    ctl_out.write("finished\n")
    ctl_out.flush()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print("usage: python -P launcher.py JOB.json (run by the grader)")
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    entered = time.time()
    with open(argv[0]) as f:
        job = json.load(f)
    _limit(job["limits"])
    ctl_in, ctl_out = _control(job["log"])
    # jsonschema's optional IRI format check compiles a grammar when imported (about 2 s of
    # each submission's start); the notebook schema has no IRI fields, so go without it.
    sys.modules.setdefault("rfc3987_syntax", None)  # (its import then raises ImportError)
    import nbformat  # deferred: after the limits
    from nbclient.exceptions import DeadKernelError  # deferred: the `test` extra

    nb = nbformat.read(job["notebook"], as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    status = {
        "timed_out_cells": [],
        "cells_run": 0,
        "note": "",
        "probes_run": 0,
        "probe_timeouts": [],
    }
    client = _client(nb, job)
    started = time.monotonic()
    phases = status["phases"] = {"launcher": round(time.time() - job.get("t0", entered), 2)}
    lap = [started]

    def clock(name: str) -> None:
        now = time.monotonic()
        phases[name] = round(now - lap[0], 2)
        lap[0] = now

    finished = False
    try:
        with client.setup_kernel():
            status["kernel_seconds"] = round(time.monotonic() - started, 2)
            clock("kernel")
            ok = _cells(client, nb, job, status)
            status["cells_seconds"] = round(time.monotonic() - started, 2)
            clock("cells")
            if ok:
                ctl_out.write("cells done\n")
                ctl_out.flush()
                if ctl_in.readline().strip() == "go":
                    clock("wait_inputs")
                    _probes(client, nb, job, status)
                    clock("probes")
            if job.get("sandboxed"):  # the grader ends the sandbox, kernel and all, at once
                status["seconds"] = round(time.monotonic() - started, 2)
                _finish(nb, job, status, ctl_out, clock)
                finished = True
    except DeadKernelError:
        status["note"] = status["note"] or "the kernel died"
    except BaseException as error:  # noqa: BLE001 - a stray SIGINT too: report what stopped it
        status["note"] = status["note"] or f"{type(error).__name__}: {error}"[:300]
    if not finished:
        clock("kernel_shutdown")
        status["seconds"] = round(time.monotonic() - started, 2)
        _finish(nb, job, status, ctl_out, clock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
