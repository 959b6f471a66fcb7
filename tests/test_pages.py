"""Every page listed in labml_style_src runs three ways: as a program, as a notebook, and as the downloadable,
self-contained notebook outside the repository. On CPU always; on CUDA when a GPU is present (skipped otherwise)."""

import runpy
import time

import nbformat
import pytest
import torch

from conftest import PAGES, ROOT, TIMINGS, jupytext_notebook, run_notebook
from site_render.notebook import notebook_json

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")),
]
IDS = [f"{p.chapter}.{p.name}" for p in PAGES]


# A page is a program: `runpy` with `__name__ == "__main__"`, as `python -m labml_style_src.<chapter>.<page>` does.
# It runs in a temporary folder, so files it writes land there.
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_page_runs_as_program(page, device, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESNET_DEVICE", device)
    monkeypatch.setattr(torch, "manual_seed", torch.manual_seed)  # pages may seed; nothing else leaks between tests
    start = time.perf_counter()
    runpy.run_path(str(page.path), run_name="__main__")
    TIMINGS[f"program   {device}  {page.chapter}/{page.name}"] = time.perf_counter() - start


# A page is a notebook: its jupytext conversion, executed cell by cell by a Jupyter kernel.
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_page_runs_as_notebook(page, device, tmp_path):
    notebook = jupytext_notebook(page.path.read_text(encoding="utf-8"))
    env = {"RESNET_DEVICE": device, "PYTHONPATH": str(ROOT)}
    TIMINGS[f"notebook  {device}  {page.chapter}/{page.name}"] = run_notebook(notebook, tmp_path, env, str(page.path))


# The downloadable .ipynb (what the site serves) runs in an empty folder where this project cannot be imported:
# the code it needs from other pages must be inlined in it.
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_downloaded_notebook_is_self_contained(page, tmp_path):
    notebook = nbformat.reads(notebook_json(page.path), as_version=4)
    nbformat.validate(notebook)
    guard = nbformat.v4.new_code_cell(
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('labml_style_src') is None, sys.path\n")
    notebook.cells.insert(0, guard)
    env = {"RESNET_DEVICE": "cpu", "PYTHONPATH": ""}
    TIMINGS[f"download  cpu  {page.chapter}/{page.name}"] = run_notebook(notebook, tmp_path, env, f"{page.name}.ipynb")


# jupytext reads every source back to the same text (the percent format is respected).
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_source_round_trips_through_jupytext(page):
    import jupytext

    text = page.path.read_text(encoding="utf-8")
    again = jupytext.writes(jupytext.reads(text, fmt="py:percent"), fmt="py:percent")
    body = again.split("# ---\n", 2)[-1].lstrip("\n") if again.startswith("# ---") else again
    assert body.strip() == text.strip()


# Every page ends with at least three exercises and defines at least one `check_…` function a student can call.
@pytest.mark.parametrize("page", PAGES, ids=IDS)
def test_page_has_exercises_and_a_checker(page):
    text = page.path.read_text(encoding="utf-8")
    assert "# ## Exercises" in text, f"{page.path}: no '## Exercises' section"
    exercises = text.split("# ## Exercises", 1)[1]
    numbered = [line for line in exercises.splitlines() if line[:5].strip("# ").rstrip(".").isdigit()]
    assert len(numbered) >= 3, f"{page.path}: fewer than 3 exercises"
    assert "def check_" in text, f"{page.path}: no auto-checked exercise (a check_… function)"
