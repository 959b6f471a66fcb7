"""nbgrader assignments: one per page, generated from the page's source and its reference solutions.

An assignment is the page's self-contained notebook (what the site offers for download) followed by one
answer section per exercise:
- an exercise with a reference solution in `solutions/<chapter>/<page>.py` becomes an answer cell (the solution
  between `### BEGIN SOLUTION` / `### END SOLUTION`) and a locked, graded test cell: the page's own `check_…`
  call (visible), then asserts computed from the reference solution (between `### BEGIN HIDDEN TESTS` /
  `### END HIDDEN TESTS`);
- every other exercise becomes a manually graded answer cell.
`nbgrader generate_assignment` turns the solution regions into `raise NotImplementedError()` and drops the
hidden tests; the reference solutions never appear on the site.
"""

from __future__ import annotations

import importlib.util
import inspect
import re

import nbformat

from solutions import Graded

from .pages import PACKAGE

SOLUTIONS = "solutions"  # package of reference solutions, one module per page: solutions.<chapter>.<page>
EXERCISE = re.compile(r"^(\d+)\.\s+(.*)")


def exercises(markdown: str) -> list[tuple[int, str]]:
    """The numbered items of a page's "## Exercises" cell: [(number, Markdown text)]."""
    items: list[tuple[int, list[str]]] = []
    for line in markdown.split("## Exercises", 1)[1].splitlines():
        match = EXERCISE.match(line)
        if match:
            items.append((int(match[1]), [match[2]]))
        elif items and line.strip():
            items[-1][1].append(line.strip())
    return [(number, " ".join(lines)) for number, lines in items]


def solution_module(chapter: str, page: str):
    """The reference solutions of a page (None when the page has none)."""
    name = f"{SOLUTIONS}.{chapter}.{page}"
    if importlib.util.find_spec(f"{SOLUTIONS}.{chapter}") is None or importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)


def _literal(value) -> str:
    """Python source for a value; a set's elements sorted, so the notebook is the same on every run."""
    if isinstance(value, (set, frozenset)) and value:
        return "{" + ", ".join(sorted(map(repr, value))) + "}"
    return repr(value)


def answer_namespace(module, graded: Graded) -> dict:
    """What the graded cells see in the notebook: the page's names and the answer (here the reference)."""
    page = importlib.import_module(module.__name__.replace(SOLUTIONS, PACKAGE, 1))
    return {**vars(page), graded.answer: getattr(module, graded.answer)}


def _meta(grade_id: str, *, solution: bool, grade: bool, locked: bool, points: int | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution,
            "task": False}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def answer_cells(graded: Graded, module) -> list:
    """The answer cell (reference solution inside solution markers) and the graded test cell."""
    reference = getattr(module, graded.answer)
    if callable(reference):
        body = inspect.getsource(reference).rstrip()
    else:
        body = f"{graded.answer} = {_literal(reference)}"
    answer = nbformat.v4.new_code_cell(
        f"### BEGIN SOLUTION\n{body}\n### END SOLUTION",
        metadata=_meta(f"answer-{graded.exercise}", solution=True, grade=False, locked=False))
    namespace = answer_namespace(module, graded)
    hidden = [f"assert {expr} == {_literal(eval(expr, namespace))}, "  # noqa: S307 (our own code)
              f"{'a hidden test of exercise %d failed' % graded.exercise!r}" for expr in graded.hidden]
    test = f"# Exercise {graded.exercise}: the page's own check.\n{graded.check}"
    if hidden:
        test += "\n### BEGIN HIDDEN TESTS\n" + "\n".join(hidden) + "\n### END HIDDEN TESTS"
    tests = nbformat.v4.new_code_cell(
        test, metadata=_meta(f"test-{graded.exercise}", solution=False, grade=True, locked=True,
                             points=graded.points))
    return [answer, tests]


def assignment(notebook_json: str, chapter: str, page: str) -> nbformat.NotebookNode:
    """The nbgrader source notebook of one page, from its self-contained notebook."""
    notebook = nbformat.reads(notebook_json, as_version=4)
    module = solution_module(chapter, page)
    graded = {g.exercise: g for g in getattr(module, "GRADED", ())}
    markdown = next((c.source for c in notebook.cells
                     if c.cell_type == "markdown" and "## Exercises" in c.source), None)
    if markdown is None:
        raise ValueError(f"{chapter}/{page}: the page has no '## Exercises' section")
    items = exercises(markdown)
    unknown = set(graded) - {n for n, _ in items}
    if unknown:
        raise ValueError(f"{SOLUTIONS}/{chapter}/{page}.py grades exercise(s) {sorted(unknown)}, "
                         f"which the page does not have")
    cells = [nbformat.v4.new_markdown_cell(
        "## Your answers\n\nAnswer each exercise in the cells below. Cells marked for grading are checked "
        "when your notebook is graded; run the whole notebook (restart and run all) before you hand it in.")]
    for number, text in items:
        cells.append(nbformat.v4.new_markdown_cell(f"### Exercise {number}\n\n{text}"))
        if number in graded:
            cells += answer_cells(graded[number], module)
        else:
            cells.append(nbformat.v4.new_markdown_cell(
                "YOUR ANSWER HERE",
                metadata=_meta(f"written-{number}", solution=True, grade=True, locked=False, points=1)))
    notebook.cells += cells
    return notebook
