"""nbgrader assignments (hooks/assignments.py, scripts/course.py): reference solutions pass their page's checker,
a course grades a right, a wrong and two broken submissions, and no solution reaches a student."""

import importlib
import json
import re
import subprocess
import sys

import matplotlib.pyplot as plt
import nbformat
import pytest

from conftest import PAGES, ROOT
from site_render import assignments, notebook

sys.path.insert(0, str(ROOT / "scripts"))
import course  # noqa: E402

IDS = [f"{p.chapter}.{p.name}" for p in PAGES]


def checkers(page) -> set[str]:
    module = importlib.import_module(f"labml_style_src.{page.chapter}.{page.name}")
    return {name for name in vars(module) if name.startswith("check_")}


# Every `check_…` a page defines is graded by a reference solution in solutions/<chapter>/<page>.py.
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_every_checker_has_a_reference_solution(page):
    module = assignments.solution_module(page.chapter, page.name)
    graded = {g.check.split("(")[0] for g in getattr(module, "GRADED", ())}
    assert checkers(page) <= graded, f"no reference solution for {sorted(checkers(page) - graded)}"


# Each reference solution passes its page's checker, called exactly as the test cell calls it, and its hidden
# tests evaluate (in what the notebook has: the page's names and the answer, nothing of solutions/).
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_reference_solutions_pass_their_checker(page, capsys):
    module = assignments.solution_module(page.chapter, page.name)
    if module is None:
        pytest.skip("no reference solutions")  # test_every_checker_has_a_reference_solution says why
    for graded in module.GRADED:
        namespace = assignments.answer_namespace(module, graded)
        eval(graded.check, namespace)  # raises when the solution is wrong
        for expression in graded.hidden:
            eval(expression, namespace)
    assert "correct" in capsys.readouterr().out.lower()


def test_assignment_refuses_a_solution_for_a_missing_exercise(monkeypatch):
    page = next(p for p in PAGES if p.name == "residual_block")
    module = assignments.solution_module(page.chapter, page.name)
    monkeypatch.setattr(module, "GRADED", [module.GRADED[0].__class__(99, "x", "check_x(x)")])
    with pytest.raises(ValueError, match=r"exercise\(s\) \[99\]"):
        assignments.assignment(notebook.notebook_json(page.path), page.chapter, page.name)


def _answer(notebook: dict, grade_id: str, source: str) -> dict:
    out = json.loads(json.dumps(notebook))
    for cell in out["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            cell["source"] = source
    return out


# The whole instructor path on a temporary course: release, two students (right, wrong), two broken submissions.
@pytest.mark.slow
def test_course_grades_right_wrong_and_broken_submissions(tmp_path):
    course_dir, submissions = tmp_path / "course", tmp_path / "submissions"
    name = "resnet_v1-residual_block"
    course.write_course(course_dir, {name})
    assert course.nbgrader(course_dir, "generate_assignment", name, "--force").returncode == 0
    released = course_dir / "release" / name / "residual_block.ipynb"
    text = released.read_text()
    solution = course.ROOT / "solutions" / "resnet_v1" / "residual_block.py"
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert "2 * 9 * c * c" in solution.read_text() and "2 * 9 * c * c" not in text
    assert "YOUR CODE HERE" in text  # nbgrader's stub in place of the solution: what a student replaces

    student = json.loads(text)
    right = "def basic_block_params(c):\n    return 18 * c * c + 4 * c\n"
    wrong = "def basic_block_params(c):\n    return 18 * c * c\n"
    deleted = _answer(student, "answer-1", right)
    deleted["cells"] = [c for c in deleted["cells"]
                        if c["metadata"].get("nbgrader", {}).get("grade_id") != "test-1"]
    for who, content in [("alice", json.dumps(_answer(student, "answer-1", right))),
                         ("bob", json.dumps(_answer(student, "answer-1", wrong))),
                         ("carol", "this is not a notebook"),
                         ("dave", json.dumps(deleted))]:
        (submissions / who / name).mkdir(parents=True)
        (submissions / who / name / "residual_block.ipynb").write_text(content)

    with open(course.grade(submissions, course_dir), newline="") as f:
        import csv
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    auto_points = 2.0  # the one auto-graded exercise; the written answers wait for a person
    assert float(rows["alice"]["score"]) == auto_points and rows["alice"]["problem"] == ""
    assert float(rows["bob"]["score"]) == 0.0 and rows["bob"]["problem"] == ""
    assert "not a notebook" in rows["carol"]["problem"]
    assert "deleted: test-1" in rows["dave"]["problem"]
    assert {float(r["max_score"]) for r in rows.values()} == {4.0}


# Every assignment, with its reference solutions in place, runs top to bottom: its code cells in order, in one
# namespace, as `__main__`, in an empty folder, in this process (a kernel would add some 5 s of start-up and
# imports to each of the 28, and the course test above already grades through nbgrader's kernels). It is the
# downloaded notebook with exercises in it, so it must not import this project either: it would not find it.
@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_assignment_with_solutions_runs(page, tmp_path, monkeypatch):
    source = assignments.assignment(notebook.notebook_json(page.path), page.chapter, page.name)
    cells = [cell.source for cell in nbformat.reads(nbformat.writes(source), as_version=4).cells
             if cell.cell_type == "code"]
    imports = [line for cell in cells for line in cell.splitlines()
               if re.match(r"\s*(from|import)\s+(labml_style_src|solutions)\b", line)]
    assert not imports, f"the assignment imports this project: {imports}"
    assert not [cell for cell in cells if re.match(r"\s*[%!]", cell, re.M)], "IPython syntax: needs a kernel"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESNET_DEVICE", "cpu")
    namespace = {"__name__": "__main__"}
    try:
        for n, cell in enumerate(cells, 1):  # a traceback names the cell: "assignment <page>, code cell <n>"
            exec(compile(cell, f"assignment {page.name}, code cell {n}", "exec"), namespace)
    finally:
        plt.close("all")


def test_make_grade_without_submissions_says_what_to_pass():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "course.py"), "grade"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "SUBMISSIONS=" in result.stderr
