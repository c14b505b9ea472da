"""One submission's sandbox: bubblewrap (`bwrap`), a private home, limits, and nothing left.

The sandbox sees: the system (/usr, /etc, /lib...) and the Python environment read-only, the
package's own folder and its shipped assets read-only at /opt/dit_mini (not the checkout: the
solution notebooks and other submissions are never mounted), and one writable folder, a private
copy of this submission, as its home and /tmp. It has no network (a new network namespace), its
own process tree (`--unshare-pid`, `--die-with-parent`; killing bwrap ends every process in
it), a clean environment (bwrap starts with none, and `--clearenv`: none of the grader's
variables or arguments). As root it runs as a user id of its own (`setpriv`, one id per
concurrent job, so the process limit counts only that submission); otherwise as the
unprivileged 65534 in a user namespace of its own (where Linux 5.14 and later count its
processes apart from the grader's).

`Limits` holds wall time, per-cell timeout, memory (address space), CPU seconds, processes,
open files, file size and notebook output size. `start` runs the launcher in it, `converse`
speaks the launcher's three-line protocol ("cells done", "go", "finished"), `end` kills the
whole tree. Used by `dit_mini.course.grading.runner`.
"""

from __future__ import annotations

import os
import platform
import selectors
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Limits",
    "PACKAGE_ROOT",
    "SANDBOX_HOME",
    "UID_BASE",
    "bwrap_path",
    "converse",
    "end",
    "nproc_per_namespace",
    "prepare_home",
    "sandbox_argv",
    "sandbox_env",
    "start",
]

SANDBOX_HOME = "/home/student"
PACKAGE_ROOT = "/opt/dit_mini"
UID_BASE = 61000  # as root, job slot k runs as user id UID_BASE + k
GIB = 2**30


@dataclass(frozen=True)
class Limits:
    """Per submission: `wall` seconds in all, `timeout` per cell and per exercise (the setup
    cells that import get `import_timeout`), `memory` bytes of address space per process,
    `processes`, open `files`, `file_size` bytes per file and `max_output` bytes of outputs."""

    wall: int = 1800
    timeout: int = 300
    import_timeout: int = 600
    memory: int = 4 * GIB
    processes: int = 256
    files: int = 1024
    file_size: int = GIB
    max_output: int = 20 * 2**20

    def __post_init__(self):
        for name in ("wall", "timeout", "import_timeout", "memory", "processes", "files"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive, got {getattr(self, name)}")

    def for_launcher(self, sandboxed: bool = True) -> dict:
        """The rlimits the launcher sets. The process limit counts a user's processes: as root
        each job has a user id of its own; not root, each job has a user namespace of its own,
        where Linux 5.14 and later count only that namespace's processes (older kernels count
        the grader's whole user, so its processes are added); unsandboxed it is left unlimited
        (it would count the grader's whole user)."""
        processes = self.processes
        if not sandboxed:
            processes = -1
        elif os.geteuid() != 0 and not nproc_per_namespace():
            processes += _processes_of(os.getuid())
        return {
            "memory": self.memory,
            "cpu": self.wall,
            "files": self.files,
            "file_size": self.file_size,
            "processes": processes,
        }


def nproc_per_namespace(release: str | None = None) -> bool:
    """Does this kernel count RLIMIT_NPROC per user namespace (Linux 5.14 and later)?"""
    release = platform.release() if release is None else release
    try:
        major, minor = (int(part) for part in release.split("-")[0].split(".")[:2])
    except ValueError:
        return False  # (an unknown version: assume the old, global count)
    return (major, minor) >= (5, 14)


def _processes_of(uid: int) -> int:
    """How many processes (threads included) user `uid` runs now."""
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                count += len(list((entry / "task").iterdir()))
        except OSError:
            continue
    return count


def bwrap_path() -> str | None:
    """The bwrap binary when it can build a sandbox on this machine, else None."""
    path = shutil.which("bwrap") or ("/usr/bin/bwrap" if Path("/usr/bin/bwrap").exists() else None)
    if path is None:
        return None
    probe = [path, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"]
    try:
        ok = subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if ok else None


def _system_binds() -> list[str]:
    args = []
    for top in ("/usr", "/etc", "/lib", "/lib64", "/lib32", "/bin", "/sbin"):
        path = Path(top)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), top]
        elif path.is_dir():
            args += ["--ro-bind", top, top]
    return args


def _python_binds() -> list[str]:
    """The interpreter's prefixes, read-only, with parent folders traversable."""
    args, seen = [], set()
    for prefix in (sys.base_prefix, sys.prefix, sys.exec_prefix):
        prefix = os.path.realpath(prefix)
        if prefix in seen or prefix.startswith(("/usr", "/lib", "/bin")):
            continue
        seen.add(prefix)
        parents = [p for p in reversed(Path(prefix).parents) if str(p) != "/"]
        for parent in parents:
            args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", prefix, prefix]
        if prefix != sys.prefix and os.path.realpath(sys.prefix) == prefix:
            args += ["--symlink", prefix, sys.prefix]
    if os.path.realpath(sys.prefix) != sys.prefix and not sys.prefix.startswith("/usr"):
        args += ["--symlink", os.path.realpath(sys.prefix), sys.prefix]
    return args


def _package_binds() -> list[str]:
    from ...models.pretrained import assets_dir  # deferred: the package, not its course layer
    from ..hints import exercises_dir

    package = Path(__file__).resolve().parents[2]  # .../dit_mini
    args = ["--perms", "0755", "--dir", "/opt", "--perms", "0755", "--dir", PACKAGE_ROOT]
    args += ["--ro-bind", str(package), f"{PACKAGE_ROOT}/dit_mini"]
    assets = assets_dir().resolve()
    if assets.is_dir() and not str(assets).startswith(str(package)):
        args += ["--ro-bind", str(assets), f"{PACKAGE_ROOT}/assets"]
    # The exercises' data (hints, common mistakes: no solutions), where the loader looks for it.
    exercises = exercises_dir().resolve()
    if exercises.is_dir() and not str(exercises).startswith(str(package)):
        args += ["--perms", "0755", "--dir", f"{PACKAGE_ROOT}/notebooks"]
        args += ["--ro-bind", str(exercises), f"{PACKAGE_ROOT}/notebooks/exercises"]
    return args


def sandbox_env(threads: int = 1, fast: bool = True) -> dict[str, str]:
    """The sandbox's whole environment: nothing of the grader's."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        "HOME": SANDBOX_HOME,
        "TMPDIR": f"{SANDBOX_HOME}/.tmp",
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "PYTHONPATH": PACKAGE_ROOT,
        "DIT_MINI_FAST": "1" if fast else "0",
        "DIT_MINI_GRADING": "1",
        "DIT_MINI_CACHE": f"{SANDBOX_HOME}/.cache/dit_mini",
        "MPLBACKEND": "Agg",
        "DIT_MINI_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }


def sandbox_argv(bwrap: str, home: Path, slot: int, command: list[str], env: dict) -> list[str]:
    """bwrap's argument list that runs `command` in a sandbox whose only writable place is
    `home` (mounted at SANDBOX_HOME and /tmp)."""
    argv = [
        bwrap,
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ]
    root = os.geteuid() == 0
    if not root:
        argv += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
    argv += _system_binds()
    # /tmp before the interpreter and the package: a virtual environment or checkout under /tmp
    # (a CI clone, say) is then mounted inside the private /tmp instead of hidden by it.
    argv += ["--bind", str(home / ".tmp"), "/tmp"]
    argv += _python_binds() + _package_binds()
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "0755", "--dir", "/home"]
    argv += ["--bind", str(home), SANDBOX_HOME]
    argv += ["--chdir", SANDBOX_HOME]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    if root:
        uid = str(UID_BASE + slot)
        command = [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            *command,
        ]
    # bwrap itself starts with an empty environment: its first process stays in the sandbox as
    # pid 1, and not root it runs as the sandbox's own user, who could read its environment.
    return ["/usr/bin/env", "-i", *argv, "--", *command]


def prepare_home(home: Path, slot: int) -> None:
    """Make `home` (and its .tmp) writable by the sandbox's user."""
    (home / ".tmp").mkdir(parents=True, exist_ok=True)
    (home / ".probe").mkdir(mode=0o755, exist_ok=True)  # the grader's: inputs, read-only inside
    if os.geteuid() == 0:
        uid = UID_BASE + slot
        for path in [home, home / ".tmp", *home.glob("*.ipynb")]:
            os.chown(path, uid, uid)


_PACKAGE_PARENT = Path(__file__).resolve().parents[3]  # the folder that holds dit_mini/


def start(home: Path, slot: int, bwrap: str | None, threads: int = 1, fast: bool = True):
    """Start the launcher on `home`/job.json in a sandbox (or, `bwrap` None, as a plain child
    process); its stdin and stdout are the grader's control pipe."""
    # A script (-P: its folder not on sys.path), not `-m`: the launcher needs only nbclient,
    # and importing the package (torch) first would cost seconds per submission.
    here = Path(__file__).resolve().parent
    env = sandbox_env(threads, fast)
    pipes = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if bwrap is None:
        env["HOME"] = env["TMPDIR"] = str(home)
        env["DIT_MINI_CACHE"] = str(home / ".cache")
        env["PYTHONPATH"] = str(_PACKAGE_PARENT)
        argv = [sys.executable, "-P", str(here / "launcher.py"), str(home / "job.json")]
        return subprocess.Popen(argv, cwd=home, env=env, start_new_session=True, text=True, **pipes)
    inside = f"{PACKAGE_ROOT}/{here.relative_to(_PACKAGE_PARENT)}/launcher.py"
    command = [sys.executable, "-P", inside, f"{SANDBOX_HOME}/job.json"]
    argv = sandbox_argv(bwrap, home, slot, command, env)
    return subprocess.Popen(argv, start_new_session=True, text=True, umask=0o022, **pipes)


def converse(proc, deadline: float, on_cells_done) -> str:
    """Read the launcher's lines until it finishes; '' on success, else what went wrong
    ("wall": past `deadline`; "ended": it exited). On "cells done", call `on_cells_done` (it
    writes the probes' inputs), then say "go"."""
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


def end(proc) -> None:
    """End the sandbox: its process group, then bwrap (its pid namespace goes with it)."""
    for target in (lambda: os.killpg(proc.pid, signal.SIGKILL), proc.kill):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait()
