"""Every page listed in labml_style_src runs three ways: as a program, as a notebook, and as the downloadable,
self-contained notebook outside the repository. On CPU the program and the downloaded notebook (a kernel, cell by
cell: the notebook run); on CUDA, when a GPU is present (skipped otherwise), the program and the repository's
notebook."""

import ast
import functools
import re
import runpy
import time
from pathlib import Path

import nbformat
import pytest
import torch

from conftest import (
    PAGES,
    ROOT,
    TIMINGS,
    jupytext_notebook,
    pages,
    run_notebook,
    source,
)
from site_render import execute

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")),
]
IDS = [f"{p.chapter}.{p.name}" for p in PAGES]


# Every test starts from seed 0, whatever the previous test did to the global RNGs (conftest's
# `isolated_rng`): both runs draw the seed-0 numbers first, then leave a different state behind.
@pytest.mark.parametrize("leave_behind", [123, 456])
def test_each_test_starts_from_seed_0(leave_behind):
    assert torch.equal(torch.rand(3), torch.rand(3, generator=torch.Generator().manual_seed(0)))
    torch.manual_seed(leave_behind)


# A page is a program: `runpy` with `__name__ == "__main__"`, as `python -m labml_style_src.<chapter>.<page>` does.
# It runs in a temporary folder, so files it writes land there; the RNG state it leaves behind is
# restored after it (conftest's `isolated_rng`).
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_page_runs_as_program(page, device, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESNET_DEVICE", device)
    start = time.perf_counter()
    runpy.run_path(str(page.path), run_name="__main__")
    TIMINGS[f"program   {device}  {page.chapter}/{page.name}"] = time.perf_counter() - start


# A page is a notebook: its jupytext conversion (what Jupyter opens from the repository), executed cell by cell by a
# Jupyter kernel, on CUDA. On the CPU this run would repeat two others: the downloaded notebook below is the same
# cells run by a kernel (the imports from other pages inlined), and the program run above imports them.
@pytest.mark.parametrize("device", [d for d in DEVICES if d.id == "cuda"])
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_page_runs_as_notebook(page, device, tmp_path):
    notebook = jupytext_notebook(page.path.read_text(encoding="utf-8"))
    env = {"RESNET_DEVICE": device, "PYTHONPATH": str(ROOT)}
    seconds = run_notebook(notebook, tmp_path, env, page.path)
    TIMINGS[f"notebook  {device}  {page.chapter}/{page.name}"] = seconds


# The downloadable .ipynb (what the site serves) runs on CPU in an empty folder where this project cannot be
# imported: the code it needs from other pages must be inlined in it. This is the build's own execution: it fills
# the cache (.cache/jupyter) that `mkdocs build` then reads, so the suite runs each notebook once; a cached run of
# the same code is not repeated.
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_downloaded_notebook_is_self_contained(page):
    start = time.perf_counter()
    notebook = execute.executed(page.path)
    TIMINGS[f"download  cpu  {page.chapter}/{page.name}"] = time.perf_counter() - start
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]
    assert all(cell.execution_count for cell in code), f"{page.name}.ipynb: a code cell did not run"
    assert any(cell.outputs for cell in code), f"{page.name}.ipynb: no code cell shows anything"


# jupytext reads every source back to the same text (the percent format is respected).
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_source_round_trips_through_jupytext(page):
    import jupytext

    text = page.path.read_text(encoding="utf-8")
    again = jupytext.writes(jupytext.reads(text, fmt="py:percent"), fmt="py:percent")
    body = again.split("# ---\n", 2)[-1].lstrip("\n") if again.startswith("# ---") else again
    assert body.strip() == text.strip()


def page_checkers(path: Path) -> list[str]:
    """The `check_…` functions a page defines at its top level."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("check_")]


# Every page ends with at least three exercises and defines at least one `check_…` function a student can call.
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_page_has_exercises_and_a_checker(page):
    text = page.path.read_text(encoding="utf-8")
    assert "# ## Exercises" in text, f"{page.path}: no '## Exercises' section"
    exercises = text.split("# ## Exercises", 1)[1]
    numbered = [line for line in exercises.splitlines() if line[:5].strip("# ").rstrip(".").isdigit()]
    assert len(numbered) >= 3, f"{page.path}: fewer than 3 exercises"
    assert page_checkers(page.path), f"{page.path}: no auto-checked exercise (a top-level `def check_…`)"


# How the tests call the checkers, read from their source with `ast` (nothing is run). A call counts as
# "right" when it is made in a `test…` function outside any `pytest.raises` block (so the test fails unless
# the checker accepts the answer), and as "wrong" when it is made inside
# `with pytest.raises(AssertionError, match=...)` (so the test fails unless the checker rejects the answer
# with the message the match names). A checker is identified by the module it is imported from.
def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _raises(item: ast.withitem) -> str | None:
    """'wrong' for `pytest.raises(AssertionError, match=...)`, 'other' for any other `raises`, else None."""
    call = item.context_expr
    if not (isinstance(call, ast.Call) and _dotted(call.func) in ("pytest.raises", "raises")):
        return None
    assertion = bool(call.args) and _dotted(call.args[0]) == "AssertionError"
    return "wrong" if assertion and any(k.arg == "match" for k in call.keywords) else "other"


def checker_calls(text: str) -> dict[str, set[str]]:
    """{"labml_style_src.<chapter>.<page>.check_x": {"right", "wrong"}} for one test file's source text."""
    tree = ast.parse(text)
    names = {}  # local name -> dotted path in the package
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("labml_style_src"):
            names.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
        elif isinstance(node, ast.Import):
            names.update({a.asname: a.name for a in node.names if a.asname and a.name.startswith("labml_style_src")})
    found: dict[str, set[str]] = {}

    def visit(node, context: str) -> None:
        if isinstance(node, ast.With):
            kinds = [k for k in map(_raises, node.items) if k]
            for item in node.items:
                visit(item, context)
            inner = (kinds[0] if kinds else context) if context == "right" else context
            for child in node.body:
                visit(child, inner)
            return
        if isinstance(node, ast.Call):
            head, _, rest = _dotted(node.func).partition(".")
            target = names.get(head, "") + (f".{rest}" if rest else "")
            if target.rpartition(".")[2].startswith("check_") and context in ("right", "wrong"):
                found.setdefault(target, set()).add(context)
        for child in ast.iter_child_nodes(node):
            visit(child, context)

    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            for statement in node.body:
                visit(statement, "right")
    return found


@functools.cache
def all_checker_calls() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        for target, kinds in checker_calls(path.read_text(encoding="utf-8")).items():
            found.setdefault(target, set()).update(kinds)
    return found


# Every `check_…` function of every page is exercised by a test: once with a right answer (it must pass) and
# once with a wrong answer inside `with pytest.raises(AssertionError, match=...)` (it must fail, with a hint).
# A checker that accepts everything, or that nobody calls, fails here.
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_every_checker_is_tested_right_and_wrong(page):
    module = f"labml_style_src.{page.chapter}.{page.name}"
    calls = all_checker_calls()
    missing = [f"{name} ({kind} answer)" for name in page_checkers(page.path)
               for kind in ("right", "wrong") if kind not in calls.get(f"{module}.{name}", set())]
    assert not missing, (
        f"{page.path.relative_to(ROOT)}: not exercised by any test: {', '.join(missing)}. In a `test_…` "
        f"function (e.g. in tests/test_{page.chapter}.py), import the checker from {module}, call it with a "
        f"right answer, and call it with a wrong one inside `with pytest.raises(AssertionError, match=...)`.")


# The scan itself can fail: it tells a right call from a wrong one, and a `raises` without `match=` or a
# call outside a test function does not count.
def test_checker_scan_tells_right_from_wrong():
    text = (
        "import pytest\n"
        "from labml_style_src.a.b import check_x, check_y as y\n"
        "from labml_style_src.a import c\n"
        "def helper():\n"
        "    check_x(0)\n"
        "def test_x():\n"
        "    check_x(1)\n"
        "    with pytest.raises(AssertionError, match='hint'):\n"
        "        check_x(2)\n"
        "    with pytest.raises(AssertionError):\n"
        "        y(2)\n"
        "    c.check_z(1)\n")
    assert checker_calls(text) == {"labml_style_src.a.b.check_x": {"right", "wrong"},
                                     "labml_style_src.a.c.check_z": {"right"}}


# Code fits the code column: every line of a page's code is at most 88 characters. Markdown cells
# and comment-only lines (the side notes) go to the notes column, so they may run longer
# (a markdown table row cannot be wrapped). ruff exempts pages from E501 for that reason.
CODE_COLUMN = 88
# Pages whose code is not wrapped to 88 yet. Strict: a listed page that fits fails the test until
# it is taken off the list.
NOT_YET_WRAPPED = {
}
WIDTH_CASES = [pytest.param(page, id=i, marks=pytest.mark.xfail(
    strict=True, reason="code lines over 88 characters, not wrapped yet"))
    if i in NOT_YET_WRAPPED else pytest.param(page, id=i) for page, i in zip(PAGES, IDS)]


@pytest.mark.parametrize("page", WIDTH_CASES)
def test_code_lines_fit_the_code_column(page):
    cells = source.split_cells(page.path.read_text(encoding="utf-8"), page.path)
    too_long = [f"{page.path.name}:{cell.start + i}: {len(line)} characters"
                for cell in cells if cell.kind == "code"
                for i, line in enumerate(cell.lines)
                if len(line) > CODE_COLUMN and not line.lstrip().startswith("#")]
    assert not too_long, "code lines longer than the code column:\n" + "\n".join(too_long)


# docs/instructors.md tells instructors where a page, its notebook view and its notebook file are served: the
# addresses it states are those the renderer gives a page (MkDocs serves `x.md` and the notebook view `x.py` at `x/`).
def test_instructors_page_gives_real_addresses():
    text = (ROOT / "docs" / "instructors.md").read_text(encoding="utf-8")
    page = pages.Page("<chapter>", "<page>", Path("."), "", "")
    view = page.notebook_uri.removesuffix("index.ipynb")  # MkDocs serves `x/index.ipynb` at `x/`
    served = {page.uri.removesuffix(".md") + "/", view, page.ipynb_uri}
    source = "labml_style_src/<chapter>/<page>.py"  # the file in the repository, not an address
    stated = set(re.findall(r"`([^`\s]*<chapter>/<page>[^`\s]*)`", text)) - {source}
    assert stated == served, f"docs/instructors.md states {sorted(stated)}; pages are served at {sorted(served)}"
