"""Student notebooks: solutions stubbed, checks kept, and the result runs and grades."""

import json

import nbformat
import pytest

from dit_mini.course.notebooks import (
    check_names,
    make_student_notebook,
    make_student_notebooks,
    nbgrader_metadata,
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


def test_solution_link_only_for_copies_of_notebooks_solutions(tmp_path):
    (tmp_path / "notebooks" / "solutions").mkdir(parents=True)
    src = solution_notebook(tmp_path / "notebooks" / "solutions" / "01_x.ipynb")
    nb = nbformat.read(make_student_notebook(src, tmp_path / "notebooks" / "01_x.ipynb"), 4)
    first = nb.cells[0].source.splitlines()
    assert first[0] == "# Exercises" and first[2].startswith("> Stuck? The solution notebook is")
    assert "[solutions/01_x.ipynb](solutions/01_x.ipynb)" in first[2]
    colab = "colab.research.google.com/github/dit-mini/dit-mini/blob/main/notebooks/solutions"
    assert f"{colab}/01_x.ipynb" in first[2]
    elsewhere = make_student_notebook(solution_notebook(tmp_path / "a.ipynb"), tmp_path / "b")
    assert "Stuck?" not in nbformat.read(elsewhere, 4).cells[0].source


def test_nbgrader_metadata_tags_solution_and_check_cells(tmp_path):
    nb = nbformat.read(solution_notebook(tmp_path / "s.ipynb"), 4)
    double, top = nb.cells[1], nb.cells[2]
    checks = [nbformat.v4.new_code_cell(f'check("t.{n}", 1, 1)') for n in ("double", "answer")]
    nb.cells[1:] = [double, checks[0], top, checks[1]]  # solution, check, solution, check
    assert check_names('check("a.b", 1, 1)\ncheck("a.b", 2, 2)\nx = 1') == ["a.b"]
    assert nbgrader_metadata(nb, points={"t.double": 2, "t.answer": 1}) == [
        ("t.double", 2),
        ("t.answer", 1),
    ]
    solution, check = nb.cells[1].metadata["nbgrader"], nb.cells[2].metadata["nbgrader"]
    assert (solution["solution"], solution["grade"], solution["locked"]) == (True, False, False)
    assert (check["solution"], check["grade"], check["locked"]) == (False, True, True)
    assert (check["grade_id"], check["points"], check["schema_version"]) == ("t_double", 2, 3)
    assert nb.cells[2].metadata["dit_mini"] == {"exercise": "t.double"}
    assert nb.cells[0].metadata["nbgrader"]["points"] == 0  # a Markdown answer, graded by hand
    nb.cells[2].source = 'check("t.double", 1, 1)\ncheck("t.other", 1, 1)'
    with pytest.raises(ValueError, match="exactly one"):
        nbgrader_metadata(nb, points={"t.double": 2, "t.answer": 1})
    nb.cells[2].source = 'check("t.double", 1, 1)'
    with pytest.raises(ValueError, match="no exercise named 't.double'"):
        nbgrader_metadata(nb)  # not in dit_mini.course.hints
