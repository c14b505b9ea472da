"""dit_mini.studies.under_load: the busy processes come and go, every policy gets a row, the
report divides by the idle speed of the same policy."""

import subprocess

import pytest

from dit_mini.cli.main import main
from dit_mini.studies.under_load import busy_processes, format_under_load, under_load


def test_busy_processes_spin_and_are_gone_afterwards():
    with busy_processes(2) as procs:
        assert len(procs) == 2 and all(p.poll() is None for p in procs)
    assert all(p.poll() is not None for p in procs)
    with pytest.raises(ValueError, match="must be >= 0"):
        with busy_processes(-1):
            pass


def test_under_load_rows_and_report(capsys, tmp_path):
    result = under_load(1, seconds=0.5, most=2)
    rows = [(r["busy"], r["threads"]) for r in result["rows"]]
    assert rows == [(0, "auto"), (0, 1), (0, 2), (1, "auto"), (1, 1), (1, 2)]
    assert all(r["images_per_s"] > 0 and r["steps"] >= 1 for r in result["rows"])
    assert [r["chosen"] for r in result["rows"] if r["threads"] != "auto"] == [1, 2, 1, 2]
    table = format_under_load(result)
    idle = [line for line in table.splitlines() if line.split()[:1] == ["0"]]
    assert "of idle" in table and len(idle) == 3  # each policy idle against itself; a busy row
    assert all(line.endswith("100%") for line in idle)  # may also read 100 % on a noisy machine
    out = tmp_path / "load.json"
    assert main(["bench", "--under-load", "0", "--load-seconds", "0.3", "--out", str(out)]) == 0
    assert out.is_file() and "img/s" in capsys.readouterr().out
    assert "python" not in subprocess.run(["pgrep", "-af", "while True: pass"],
                                          capture_output=True, text=True).stdout  # fmt: skip
