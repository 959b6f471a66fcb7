"""An nbgrader course made from the site: `make assignments` and `make grade SUBMISSIONS=<folder>`.

    python scripts/course.py assignments [--course build/course]
        writes <course>/source/<chapter>-<page>/<page>.ipynb for every page, and <course>/nbgrader_config.py

    python scripts/course.py grade <submissions> [--course build/course]
        <submissions>/<student>/<assignment>/<page>.ipynb (nbgrader's `submitted/` layout) are checked, autograded
        with nbgrader and exported to <course>/grades.csv, one row per student and assignment, with a `problem`
        column for submissions that could not be graded (not a notebook, a graded cell deleted, ...).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "hooks")]  # the solutions and the renderer

from site_render import notebook, pages  # noqa: E402  (the renderer)
from site_render.assignments import assignment  # noqa: E402

CONFIG = 'c = get_config()  # noqa: F821 (nbgrader provides it)\nc.CourseDirectory.course_id = "resnet-annotated"\n'


def write_course(course: Path, only: set[str] | None = None) -> list[str]:
    """Every page's assignment (or those named in `only`) into `course/source/`; returns their names."""
    import nbformat

    names = []
    for _, chapter in pages.discover():
        for page in chapter:
            name = f"{page.chapter}-{page.name}"
            if only is not None and name not in only:
                continue
            folder = course / "source" / name
            folder.mkdir(parents=True, exist_ok=True)
            source = assignment(notebook.notebook_json(page.path), page.chapter, page.name)
            nbformat.write(source, folder / f"{page.name}.ipynb")
            names.append(name)
    (course / "nbgrader_config.py").write_text(CONFIG)
    return names


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    # nbgrader runs `alembic` and a Jupyter kernel from PATH: put this interpreter's folder first.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True)


def graded_cells(notebook_path: Path) -> dict[str, float]:
    """grade_id -> points of the graded cells of a notebook."""
    cells = json.loads(notebook_path.read_text(encoding="utf-8"))["cells"]
    meta = [c.get("metadata", {}).get("nbgrader", {}) for c in cells]
    return {m["grade_id"]: m.get("points", 0) for m in meta if m.get("grade")}


def problem(submitted: Path, source: Path) -> str:
    """Why a submitted notebook cannot be graded ('' when it can)."""
    if not submitted.exists():
        return f"missing {submitted.name}"
    try:
        found = graded_cells(submitted)
    except (ValueError, KeyError, TypeError) as error:
        return f"{submitted.name} is not a notebook ({type(error).__name__})"
    missing = set(graded_cells(source)) - set(found)
    return f"graded cell(s) deleted: {', '.join(sorted(missing))}" if missing else ""


def grade(submissions: Path, course: Path) -> Path:
    """Autograde every student's submissions; returns the gradebook CSV."""
    if not submissions.is_dir():
        raise SystemExit(f"no such folder: {submissions} (expected <student>/<assignment>/<page>.ipynb)")
    assignments = sorted({a.name for s in submissions.iterdir() if s.is_dir() for a in s.iterdir() if a.is_dir()})
    unknown = set(assignments) - set(write_course(course, set(assignments)))
    if unknown:
        raise SystemExit(f"not assignments of this course: {', '.join(sorted(unknown))} "
                         "(names are <chapter>-<page>, as `make assignments` writes them)")
    problems: dict[tuple[str, str], str] = {}
    max_score: dict[str, float] = {}
    for name in assignments:
        result = nbgrader(course, "generate_assignment", name, "--force")
        if result.returncode:
            raise SystemExit(f"nbgrader generate_assignment {name} failed:\n{result.stderr[-2000:]}")
        source = next((course / "source" / name).glob("*.ipynb"))  # the instructor's version
        max_score[name] = float(sum(graded_cells(source).values()))
        for student in sorted(s.name for s in submissions.iterdir() if (s / name).is_dir()):
            target = course / "submitted" / student / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(submissions / student / name, target)
            why = problem(target / source.name, source)
            if not why:
                result = nbgrader(course, "autograde", name, "--create", "--force", "--student", student)
                if result.returncode or "ERROR" in result.stderr:
                    why = "nbgrader could not grade it: " + (result.stderr.strip().splitlines() or ["?"])[-1]
            if why:
                problems[student, name] = why
                print(f"{student} / {name}: NOT GRADED: {why}", file=sys.stderr)
            else:
                print(f"{student} / {name}: graded")
    result = nbgrader(course, "export", "--to", "nbgrader_export.csv")
    if result.returncode:
        raise SystemExit(f"nbgrader export failed:\n{result.stderr[-2000:]}")
    with open(course / "nbgrader_export.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    gradebook = course / "grades.csv"
    with open(gradebook, "w", newline="") as f:
        fields = ["assignment", "student_id", "score", "max_score", "problem"]
        writer = csv.DictWriter(f, fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "problem": problems.pop((row["student_id"], row["assignment"]), "")})
        for (student, name), why in sorted(problems.items()):  # never reached nbgrader's database
            writer.writerow({"assignment": name, "student_id": student, "score": 0.0,
                             "max_score": max_score[name], "problem": why})
    return gradebook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["assignments", "grade"])
    parser.add_argument("submissions", nargs="?", type=Path, help="with `grade`: the submissions folder")
    parser.add_argument("--course", type=Path, default=ROOT / "build" / "course")
    args = parser.parse_args()
    if args.command == "assignments":
        names = write_course(args.course)
        print(f"{len(names)} assignments in {args.course / 'source'}; next: cd {args.course} && "
              "nbgrader generate_assignment <name>")
    else:
        if args.submissions is None:
            parser.error("grade needs the submissions folder: make grade SUBMISSIONS=<folder>")
        print(f"gradebook: {grade(args.submissions.resolve(), args.course.resolve())}")


if __name__ == "__main__":
    main()
