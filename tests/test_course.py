"""Student notebooks: solutions stubbed, checks kept, and the result runs and grades."""

import json

import nbformat
import pytest

from dit_mini.course.notebooks import (
    grade_notebook,
    make_student_notebook,
    make_student_notebooks,
    stub_solutions,
)

EXERCISE = '''def double(x):
    """Twice x."""
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION'''
CHECKS = """from dit_mini.course.exercises import check
check("double", double, 6, inputs=(3,))
check("answer", answer, 42)"""
TOP = "### BEGIN SOLUTION\nanswer = 6 * 7\n### END SOLUTION"


def solution_notebook(path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "# Exercises\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"
        ),
        nbformat.v4.new_code_cell(EXERCISE),
        nbformat.v4.new_code_cell(TOP),
        nbformat.v4.new_code_cell(CHECKS),
    ]
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", text="Bonfire lit: double.\n")]
    nb.cells[3].execution_count = 3
    nbformat.write(nb, path)
    return path


def test_stubs_keep_signatures_and_indentation():
    stub = stub_solutions(EXERCISE)
    assert stub.splitlines() == [
        "def double(x):",
        '    """Twice x."""',
        "    # YOUR CODE HERE",
        '    raise NotImplementedError("exercise: write your code here")',
    ]
    top = stub_solutions(
        "### BEGIN SOLUTION\ndef f(a):\n    return a\nx, y = f(1), 2\nprint(x)\n### END SOLUTION"
    )
    assert top.splitlines() == [
        "# YOUR CODE HERE",
        "def f(a):",
        '    raise NotImplementedError("exercise: write your code here")',
        "x = None",
        "y = None",
    ]
    assert stub_solutions("a = 1") == "a = 1"


@pytest.mark.parametrize(
    "source, message",
    [("### BEGIN SOLUTION\nx = 1", "never closed"), ("x = 1\n### END SOLUTION", "without"),
     ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another")],
)  # fmt: skip
def test_unbalanced_markers_are_reported(source, message):
    with pytest.raises(ValueError, match=message):
        stub_solutions(source, where="nb.ipynb cell 3")


def test_student_notebook_strips_solutions_and_outputs(tmp_path):
    src = solution_notebook(tmp_path / "solution.ipynb")
    dst = make_student_notebook(src, tmp_path / "out" / "student.ipynb")
    nb = nbformat.read(dst, as_version=4)
    text = json.dumps(nb)
    assert "2 * x" not in text and "6 * 7" not in text and "Because." not in text
    assert nb.cells[3].source == CHECKS  # the check cell is untouched
    assert all(
        c.outputs == [] and c.execution_count is None for c in nb.cells if c.cell_type == "code"
    )
    assert "YOUR ANSWER HERE" in nb.cells[0].source
    with pytest.raises(ValueError, match="overwrite"):
        make_student_notebook(src, src)


def test_folders_are_mirrored(tmp_path):
    (tmp_path / "sol" / "sub").mkdir(parents=True)
    solution_notebook(tmp_path / "sol" / "a.ipynb")
    solution_notebook(tmp_path / "sol" / "sub" / "b.ipynb")
    written = make_student_notebooks(tmp_path / "sol", tmp_path / "student")
    assert [p.relative_to(tmp_path / "student").as_posix() for p in written] == [
        "a.ipynb",
        "sub/b.ipynb",
    ]
    with pytest.raises(FileNotFoundError, match="no notebook or folder"):
        make_student_notebooks(tmp_path / "missing", tmp_path / "x")


def test_grading_runs_both_versions(tmp_path):
    src = solution_notebook(tmp_path / "solution.ipynb")
    student = make_student_notebook(src, tmp_path / "student.ipynb")
    solved, unsolved = grade_notebook(src, timeout=60), grade_notebook(student, timeout=60)
    assert (solved.passed, solved.total, solved.errors) == (2, 2, [])
    assert (unsolved.passed, unsolved.total, unsolved.errors) == (0, 2, [])  # runs to the end
    assert all("not solved yet" in m for m in unsolved.messages)
    assert "0/2 checks passed" in unsolved.summary()
