"""nbval runs of the notebooks: solution notebooks run in grading mode, so a failing check fails.

In notebooks/solutions/ every check must pass: DIT_MINI_GRADING=1 makes a failed check raise
AssertionError (dit_mini.course.exercises), which nbval reports as a failed cell. The learners'
copies in notebooks/ run without it: their unsolved checks print "not solved yet" and the notebook
runs to the end. The variable is set before nbval starts each notebook's kernel, which inherits it.
"""

import os

import pytest

__all__ = ["pytest_runtest_setup", "pytest_runtest_teardown"]

GRADING_ENV = "DIT_MINI_GRADING"  # dit_mini.course.exercises.GRADING_ENV (no import: no torch)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Grading mode on for notebooks under a solutions/ folder, off for every other notebook."""
    if item.path.suffix != ".ipynb":
        return
    if "solutions" in item.path.parts:
        os.environ[GRADING_ENV] = "1"
    else:
        os.environ.pop(GRADING_ENV, None)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    """Leave the environment as it was (tests run in the same process must not raise)."""
    if item.path.suffix == ".ipynb":
        os.environ.pop(GRADING_ENV, None)
