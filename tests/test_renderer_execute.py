"""Unit tests of execution (hooks/site_render/execute.py): the cache key follows the code a notebook runs and
nothing else, a damaged cache entry is run again, a failing or slow page stops with its file, cell and line,
outputs are cleaned, and figures get their alt text in the kernel."""

import json
import shutil
import subprocess
import sys

import nbformat
import pytest

from conftest import ROOT, jupytext_notebook, notebook, pages
from renderer_fixtures import make_package, write
from site_render import execute

PageError = execute.PageError
TINY = '''
# %% [markdown]
# # Tiny
#
# A page that prints.

# %%
import sys

# %%
if __name__ == "__main__":
    print("hello from", sys.platform)
'''


# --- the cache key -------------------------------------------------------------------------------------------

def _key(path, root):
    return execute.cache_key(notebook.notebook(path, root=root))


def _append(path, text):
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


# On a copy of the real pages: a page's key changes when its code or the code of a page it imports changes, and
# not when its prose, another page, or a demo of a page it imports (not inlined) changes.
def test_cache_key_follows_the_code_a_notebook_runs(tmp_path):
    shutil.copytree(ROOT / "labml_style_src", tmp_path / "labml_style_src")
    listed = [p for _, chapter in pages.discover(tmp_path / "labml_style_src") for p in chapter]
    paths = {p.path for p in listed}  # pages (helper modules such as device.py have no cells to append to)
    page, dep = next((p.path, d) for p in listed for d in notebook.dependencies(p.path, tmp_path) if d in paths)
    other = next(p.path for p in listed if p.path != page and p.path not in notebook.dependencies(page, tmp_path))
    before = _key(page, tmp_path)
    assert _key(page, tmp_path) == before  # the same code: the same key

    _append(page, "\n# %% [markdown]\n# One more sentence for the reader.\n")
    _append(other, "\n# %%\nEDITED_ELSEWHERE = 1\n")
    _append(dep, '\n# %%\nif __name__ == "__main__":\n    print("a demo of the imported page")\n')
    assert _key(page, tmp_path) == before  # prose, another page, an imported page's demo: not the code it runs

    _append(dep, "\n# %%\nEDITED_IN_AN_IMPORTED_PAGE = 1\n")
    after_dep = _key(page, tmp_path)
    assert after_dep != before
    _append(page, "\n# %%\nEDITED_HERE = 1\n")
    assert _key(page, tmp_path) not in (before, after_dep)


# --- running, caching, damaged entries -------------------------------------------------------------------------

@pytest.fixture
def counted(monkeypatch):
    """execute.execute, counting its runs."""
    runs = []
    real = execute.execute

    def counted_execute(*args, **kwargs):
        runs.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(execute, "execute", counted_execute)
    return runs


def test_cached_once_and_a_damaged_entry_is_run_again(tmp_path, counted):
    page = write(tmp_path, TINY, "tiny.py")
    cache_dir = tmp_path / "cache"
    first = execute.executed(page, cache_dir)
    assert first.cells[-1].outputs[0].text.startswith("hello from") and len(counted) == 1
    assert execute.executed(page, cache_dir).cells[-1].outputs == first.cells[-1].outputs and len(counted) == 1

    stored = next(cache_dir.glob("executed/*/base.ipynb"))
    stored.write_text(stored.read_text().replace("hello from", "HELLO FROM"))  # valid JSON, other outputs
    assert execute.executed(page, cache_dir).cells[-1].outputs[0].text.startswith("hello from")
    assert len(counted) == 2

    stored = next(cache_dir.glob("executed/*/base.ipynb"))
    stored.write_text('{"truncated": ')  # not a notebook at all
    assert execute.executed(page, cache_dir).cells[-1].outputs[0].text.startswith("hello from")
    assert len(counted) == 3

    next(cache_dir.glob("*.db")).write_bytes(b"not a database" * 100)  # the index itself is damaged
    assert execute.executed(page, cache_dir).cells[-1].outputs[0].text.startswith("hello from")
    assert len(counted) == 4


# A page that raises: the file, the page's own cell number and the source line of the statement that raised.
def test_a_cell_that_raises_names_file_cell_and_line(tmp_path):
    path = write(tmp_path, "# %% [markdown]\n# # T\n#\n# d\n\n# %%\nx = 1\n\n# %%\ny = 2\nraise ValueError('boom')\n")
    with pytest.raises(PageError, match=r"page\.py: code cell 2 \(line 11\): ValueError: boom"):
        execute.execute(jupytext_notebook(path.read_text()), path, standalone=False, cwd=tmp_path)


# In the downloaded notebook the page's cells come after the inlined ones: the numbers are still the page's own.
def test_a_failing_download_names_the_pages_own_cell(tmp_path):
    base = "# %% [markdown]\n# # Base\n#\n# d\n\n# %%\nK = 3\n"
    user = ("# %% [markdown]\n# # User\n#\n# d\n\n# %%\nfrom labml_style_src.ch.base import K\n\n"
            "# %%\nif __name__ == '__main__':\n    print(K)\n    assert K == 4, 'K is not 4'\n")
    make_package(tmp_path, {"base": base, "user": user}, ["base", "user"])
    path = tmp_path / "labml_style_src" / "ch" / "user.py"
    with pytest.raises(PageError, match=r"ch/user\.py: code cell 2 \(line 12\): AssertionError: K is not 4"):
        execute.execute(notebook.notebook(path, root=tmp_path), path, {"PYTHONPATH": ""})


def test_a_page_past_its_time_budget_stops(tmp_path):
    path = write(tmp_path, "# %% [markdown]\n# # T\n#\n# d\n\n# %%\nimport time\n\n# %%\ntime.sleep(60)\n")
    with pytest.raises(PageError, match=r"page\.py: code cell 2 \(line 10\): still running after the page's time "
                                        r"budget of 2 s \(set PAGE_TIMEOUT"):
        execute.execute(jupytext_notebook(path.read_text()), path, standalone=False, timeout=2, cwd=tmp_path)


# The whole build stops on a page that raises, with the page's file and cell (a minimal site in a temporary folder).
def test_a_page_that_raises_stops_the_build(tmp_path):
    shutil.copytree(ROOT / "hooks", tmp_path / "hooks", ignore=shutil.ignore_patterns("__pycache__"))
    write(tmp_path, "# A site\n", "docs/index.md")
    write(tmp_path, "site_name: t\ntheme: {name: material, font: false}\nhooks: [hooks/literate.py]\n"
                    "plugins:\n  - mkdocs-jupyter:\n"
                    "      include: ['views/labml_style_src/*/*/index.ipynb']\n", "mkdocs.yml")
    (tmp_path / "tests").mkdir()
    write(tmp_path, 'CHAPTERS = ["ch"]\n', "labml_style_src/__init__.py")
    write(tmp_path, '"""Chapter"""\nPAGES = ["bad"]\n', "labml_style_src/ch/__init__.py")
    write(tmp_path, "# %% [markdown]\n# # Bad\n#\n# d\n\n# %%\nx = 1\n\n# %%\nraise RuntimeError('no')\n",
          "labml_style_src/ch/bad.py")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "labml_style_src/ch/bad.py: code cell 2 (line 10): RuntimeError: no" in result.stderr + result.stdout


# --- clean outputs, alt text -------------------------------------------------------------------------------

def test_outputs_are_cleaned(tmp_path):
    run_dir = tmp_path / "run"
    stream = nbformat.v4.new_output("stream", name="stdout", text=f"\x1b[31mred\x1b[0m in {run_dir}/x.csv\n")
    bar = nbformat.v4.new_output("stream", name="stderr", text="10%\r50%\r100%\n")
    warning = nbformat.v4.new_output("stream", name="stderr", text=(
        f"{ROOT}/lib/m.py:3: UserWarning: something noisy\n  warnings.warn('something noisy')\n"))
    widget = nbformat.v4.new_output("display_data", data={execute.WIDGET: {"model_id": "1"}, "text/plain": "0%|"})
    cell = nbformat.v4.new_code_cell("x", outputs=[stream, bar, warning, widget])
    nb = nbformat.v4.new_notebook(cells=[cell])
    execute.clean(nb, run_dir)
    texts = [o.text for o in nb.cells[0].outputs]
    # ANSI gone, path relative, last state of the bar, no warning, no widget
    assert texts == ["red in ./x.csv\n", "100%\n"]
    assert str(ROOT) not in json.dumps(nb) and str(tmp_path) not in json.dumps(nb)


# Figures carry their alt text from the kernel: a label the page gives, else the titles.
def test_figures_get_alt_text_from_the_kernel(tmp_path):
    page = write(tmp_path, '''
# %% [markdown]
# # Plots
#
# d

# %%
import matplotlib.pyplot as plt

# %%
fig = plt.figure(label="A straight line")
plt.plot([0, 1])
plt.show()

# %%
fig, axes = plt.subplots(1, 2)
axes[0].set_title("left")
axes[1].set_title("right")
''', "plots.py")
    nb = notebook.notebook(page, root=tmp_path)
    execute.execute(nb, page, {"PYTHONPATH": ""})
    figures = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert [f.metadata.get("alt") for f in figures] == ["A straight line", "left; right"]
