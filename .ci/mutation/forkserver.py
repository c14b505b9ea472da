"""A fork server that makes each mutmut test run cost only its tests, not torch's import.

mutmut 2 runs its test command once per mutant; on a loaded 2-core machine `import torch` alone
takes ~15 s. `python forkserver.py serve SOCKET` imports the heavy libraries once and, for each
request, forks a child that imports dit_mini afresh from disk (so it sees the mutant mutmut has
just written) and runs `pytest.main(args)`; `python forkserver.py run SOCKET -- ARGS` is the
light client mutmut calls, with the child's exit code. A child is killed after CHILD_LIMIT_S.
Not part of the package or of CI: notebooks/MEASUREMENTS.md ("Mutation score") says how it ran.
"""

import json
import os
import signal
import socket
import sys

CHILD_LIMIT_S = 240


def serve(path: str) -> None:
    sys.dont_write_bytecode = True
    import einops  # noqa: F401  (heavy imports, once)
    import matplotlib.figure  # noqa: F401
    import numpy  # noqa: F401
    import PIL.Image  # noqa: F401
    import pytest
    import safetensors.torch  # noqa: F401
    import torch

    torch.set_num_threads(1)
    if os.path.exists(path):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    while True:
        conn, _ = server.accept()
        args = json.loads(conn.makefile().readline())
        pid = os.fork()
        if pid == 0:
            server.close()
            for name in [m for m in sys.modules if m.split(".")[0] in ("dit_mini", "tests")]:
                del sys.modules[name]
            signal.alarm(CHILD_LIMIT_S)
            code = pytest.main(args)
            os._exit(int(code))
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        try:
            conn.sendall(f"{code}\n".encode())
        except OSError:
            pass  # mutmut gave up on this run (its own timeout)
        conn.close()


def run(path: str, args: list[str]) -> int:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    client.sendall((json.dumps(args) + "\n").encode())
    reply = client.makefile().readline().strip()
    # mutmut 2 counts only exit code 1 as "killed": a collection error (2), an error inside
    # pytest (3) or a child killed by its time limit must count as a failed run too.
    return 0 if reply == "0" else 1


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2])
    else:
        sys.exit(run(sys.argv[2], sys.argv[sys.argv.index("--") + 1 :]))
