"""The README is the front door: its commands must be the ones CI runs."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_test_command() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"To run the tests.*?```bash\n(.*?)```", text, re.S)
    assert block, "README has no test-command block after 'To run the tests'"
    return block.group(1).strip().splitlines()[-1].strip()


def test_ci_runs_the_readme_test_command():
    ci_lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert ci_lines[-1] == _readme_test_command()


def test_ci_installs_torch_pinned_before_the_package():
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.index("torch==2.13.0") < ci.index('-e ".[notebooks,test]"')


def test_readme_set_up_runs_the_quickstart():
    text = (ROOT / "README.md").read_text()
    assert "dit-mini quickstart" in text
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["dit-mini"] == "dit_mini.cli:main"
