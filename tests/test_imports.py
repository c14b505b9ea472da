"""The package's import structure: no import loops, imports at the top, no private names shared.

Every import statement of dit_mini (function-level ones included) is read from the source with
`ast`, resolved to the package module it loads, and the resulting graph must have no cycle. An
import inside a function must say why it is deferred (a comment with the word "deferred" on its
line or the line above: a heavy optional package such as nbclient or scipy). No module imports a
private name (`_name`) from another module.

The dependency has one direction: the course (`dit_mini.course`) and the command line
(`dit_mini.cli`) build on the core, and no other module imports the course; `import dit_mini`
leaves the course out.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules(package_dir: Path) -> dict[str, Path]:
    """{'pkg.sub.mod': path} for every module of the package rooted at `package_dir`."""
    base = package_dir.parent
    mods = {}
    for path in package_dir.rglob("*.py"):
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _targets(name: str, path: Path, node, mods: dict) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for one import statement."""
    if isinstance(node, ast.Import):
        return [(a.name, []) for a in node.names if a.name in mods]
    if node.level:
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    out = []
    if base in mods:
        out.append((base, [a.name for a in node.names if f"{base}.{a.name}" not in mods]))
    out += [(f"{base}.{a.name}", []) for a in node.names if f"{base}.{a.name}" in mods]
    return out


def import_problems(package_dir: Path) -> list[str]:
    """Every import loop, undeclared function-level import and cross-module private import."""
    mods, graph, found = _modules(package_dir), {}, []
    for name, path in mods.items():
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source)
        top = {id(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))}
        graph[name] = set()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            targets = _targets(name, path, node, mods)
            for target, names in targets:
                if target != name:
                    graph[name].add(target)
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                if private and target != name:
                    found.append(f"{name} imports private {private} from {target}")
            if id(node) not in top:
                context = " ".join(lines[max(0, node.lineno - 2) : node.lineno])
                if "deferred" not in context:
                    found.append(f"{name}:{node.lineno} imports inside a function")
    found += [f"import loop: {' -> '.join(cycle)}" for cycle in _cycles(graph)]
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of size > 1 (Tarjan's algorithm)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component) + [sorted(component)[0]])

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_dit_mini_has_no_import_loop_and_no_hidden_import():
    problems = import_problems(ROOT / "dit_mini")
    assert problems == [], "\n".join(problems)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path / "pkg"


def test_the_checker_finds_a_loop_a_hidden_import_and_a_private_import(tmp_path):
    pkg = _package(
        tmp_path,
        {
            "__init__.py": "",
            "a/__init__.py": "",
            "a/one.py": "from ..b.two import f\n",
            "b/__init__.py": "",
            "b/two.py": "def f():\n    from ..a import one\n\nfrom .three import _secret\n",
            "b/three.py": "_secret = 1\n\ndef g():\n    # deferred: heavy\n    import json\n",
        },
    )
    problems = import_problems(pkg)
    assert any("import loop" in p and "pkg.a.one" in p and "pkg.b.two" in p for p in problems)
    assert any("pkg.b.two:2 imports inside a function" in p for p in problems)
    assert any("private ['_secret']" in p for p in problems)
    assert not any(p.startswith("pkg.b.three") for p in problems), "declared deferral is fine"


COURSE_USERS = ("course", "cli")  # the only subpackages that may import dit_mini.course


def course_imports(package_dir: Path, course: str = "course") -> list[str]:
    """'module:line imports pkg.course...' for every import of the course (any import
    statement, function-level ones included) from outside the course and the command line."""
    mods, found = _modules(package_dir), []
    top = package_dir.name
    course_prefix = f"{top}.{course}"
    for name, path in sorted(mods.items()):
        parts = name.split(".")
        if len(parts) > 1 and parts[1] in COURSE_USERS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target, _ in _targets(name, path, node, mods):
                if target == course_prefix or target.startswith(course_prefix + "."):
                    found.append(f"{name}:{node.lineno} imports {target}")
    return found


def test_only_the_course_and_the_cli_import_the_course():
    problems = course_imports(ROOT / "dit_mini")
    assert problems == [], "the core must not import the course:\n" + "\n".join(problems)


def test_the_direction_check_finds_a_core_module_that_imports_the_course(tmp_path):
    pkg = _package(
        tmp_path,
        {
            "__init__.py": "from .course.quiz import quiz\n",
            "course/__init__.py": "",
            "course/quiz.py": "from ..models.net import Net\nquiz = 1\n",
            "cli/__init__.py": "",
            "cli/main.py": "from ..course import quiz\n",
            "models/__init__.py": "",
            "models/net.py": "Net = 1\n\ndef draw():\n    # deferred\n    import pkg.course.quiz\n",
        },
    )
    problems = course_imports(pkg)
    assert problems == [
        "pkg:1 imports pkg.course.quiz",
        "pkg.models.net:5 imports pkg.course.quiz",
    ], problems


def test_import_dit_mini_leaves_the_course_out():
    code = (
        "import sys, dit_mini\n"
        "from dit_mini import DiT, dit_config\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('dit_mini.course'))\n"
        "print(loaded)\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
