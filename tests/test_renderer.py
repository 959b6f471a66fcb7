"""Unit tests of the renderer (hooks/literate.py): how a source becomes rows of (note, code), how the notebook
download is made self-contained, and the clear errors a malformed source gets."""

import textwrap
from pathlib import Path

import nbformat
import pytest
from conftest import PageError, jupytext_notebook, literate, run_notebook

SourceError = literate.SourceError


def write(tmp_path: Path, text: str, name: str = "page.py") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


PAGE = '''
# %% [markdown]
# # A title
#
# The description, on
# two lines.

# %%
import torch


# %% [markdown]
# ## Text before code

# %%
# The note for `f`: $y = 2x$.
def f(x):
    """A docstring
    # that looks like a comment
    """
    return 2 * x  # an inline comment stays in the code


# Second note.
y = f(3)
'''


# A markdown cell and the code after it share a row; a comment block above code starts a new row and goes to
# the note column; inline comments and `#` inside strings stay in the code.
def test_rows_pair_notes_with_code(tmp_path):
    path = write(tmp_path, PAGE)
    rows = literate.rows(literate.split_cells(path.read_text(), path), path)
    assert [r.note.splitlines()[0] if r.note else "" for r in rows] == [
        "# A title", "## Text before code", "Second note."]
    assert rows[0].code == [(8, "import torch")]  # the title row holds the first code cell: no half-empty row
    assert "The note for `f`: $y = 2x$." in rows[1].note
    code = [text for _, text in rows[1].code]
    assert code[0] == "def f(x):" and "    # that looks like a comment" in code
    assert any("# an inline comment stays in the code" in line for line in code)
    assert rows[2].code == [(24, "y = f(3)")]


# Highlighting runs over the whole cell, so a docstring spanning lines is a string on every line it covers.
def test_highlight_keeps_multiline_strings_whole():
    lines = ['def f():', '    """first', '    # not a comment', '    """', '    return 1']
    out = literate.highlight(lines)
    assert len(out) == len(lines)
    assert '<span class="sd">    # not a comment</span>' in out[2]
    assert '<span class="k">return</span>' in out[4]


# The rendered page: rows with permalinks, source line numbers, one copy button per code cell
# that copies the whole cell.
def test_render_has_line_numbers_permalinks_and_one_copy_button_per_cell(tmp_path):
    path = write(tmp_path, PAGE)
    out = literate.render(path)
    assert out.count('class="lb-row"') == 3 and 'id="s1"' in out and 'href="#s3"' in out
    assert 'data-ln="24"' in out
    assert out.count("data-clipboard-text=") == 2  # two code cells
    copied = out.split('data-clipboard-text="')[2].split('"')[0]
    assert "# Second note." in copied and "y = f(3)" in copied  # the copy holds the whole cell, comments included


def test_title_and_description(tmp_path):
    path = write(tmp_path, PAGE)
    assert literate.title_and_description(path) == ("A title", "The description, on two lines.")


# Tests get anchors named after each test function, which pages link to.
def test_test_anchors(tmp_path):
    path = write(tmp_path, "def helper():\n    pass\n\n\ndef test_a():\n    pass\n\n\n"
                           "class TestB:\n    def test_c(self):\n        pass\n")
    assert literate.test_anchors(path) == {5: "test_a", 10: "test_c"}
    html = literate.render(path, literate.test_anchors(path), percent=False)
    assert '<span class="lb-line" id="test_a" data-ln="5">' in html


# --- bad input: every error names the file and the line -------------------------------------------------------

@pytest.mark.parametrize("source, line, message", [
    ("# %%\nx = (\n", 2, "syntax error"),
    ("# %%\nx = 1\n# %% [markdown]\nnot a comment\n", 4, "must start with '# '"),
    ("x = 1\n# %%\ny = 2\n", 1, "before the first"),
    ("# %% [raw]\nx = 1\n", 1, "unknown cell marker"),
    ("# %%\nx = 1\n# cd into the data folder first\ny = 2\n", 3, "jupytext would run this comment"),
])
def test_malformed_sources_fail_with_file_and_line(tmp_path, source, line, message):
    path = write(tmp_path, source)
    with pytest.raises(SourceError, match=rf"page\.py:{line}: .*{message}"):
        literate.render(path)


def make_package(tmp_path, pages: dict[str, str], listed: list[str]) -> Path:
    src = tmp_path / "labml_style_src"
    write(src, 'CHAPTERS = ["ch"]\n', "__init__.py")
    write(src, f'"""Chapter"""\nPAGES = {listed!r}\n', "ch/__init__.py")
    for name, text in pages.items():
        write(src, text, f"ch/{name}.py")
    return src


def test_unlisted_and_missing_pages_are_errors(tmp_path):
    src = make_package(tmp_path, {"a": PAGE, "b": PAGE}, ["a"])
    with pytest.raises(SourceError, match=r"ch/b\.py:1: page is not listed"):
        literate.discover(src)
    src = make_package(tmp_path / "2", {"a": PAGE}, ["a", "c"])
    with pytest.raises(SourceError, match=r"PAGES lists 'c' but ch/c\.py does not exist"):
        literate.discover(src)
    src = make_package(tmp_path / "3", {"a": "# %%\nx = 1\n"}, ["a"])
    with pytest.raises(SourceError, match="must start with '# # Title'"):
        literate.discover(src)


# --- the downloadable notebook ----------------------------------------------------------------------------------

BASE = '''
# %% [markdown]
# # Base

# %%
import math

def area(r):
    return math.pi * r * r

# %%
if __name__ == "__main__":
    raise SystemExit("a dependency's demo must not run in another page's notebook")
'''

USER = '''
# %% [markdown]
# # User
#
# Uses the base page.

# %%
from labml_style_src.ch.base import (
    area as disc_area,
)
from labml_style_src.helper import SCALE

# %%
if __name__ == "__main__":
    print(round(SCALE * disc_area(1.0), 4))
'''


# Code a page imports from another page is inlined (without the other page's demos); aliases keep working;
# the notebook runs in a folder where the package cannot be imported.
def test_notebook_inlines_imports_and_runs_standalone(tmp_path):
    make_package(tmp_path, {"base": BASE, "user": USER}, ["base", "user"])
    write(tmp_path, "SCALE = 1.0  # a helper module: plain Python, no cells\n", "labml_style_src/helper.py")
    path = tmp_path / "labml_style_src" / "ch" / "user.py"
    text = literate.notebook_text(path, root=tmp_path)
    assert "def area(r):" in text and "raise SystemExit" not in text and "disc_area = area" in text
    assert "# # Base" not in text  # the other page's narrative is not inlined, only its code
    package_imports = ("from labml_style_src", "import labml_style_src")
    assert not [l for l in text.splitlines() if l.lstrip().startswith(package_imports)]
    notebook = nbformat.reads(literate.notebook_json(path, root=tmp_path), as_version=4)
    nbformat.validate(notebook)
    run = tmp_path / "run"
    run.mkdir()
    run_notebook(notebook, run, {"PYTHONPATH": ""}, "user.ipynb")
    assert notebook.cells[-1].outputs[0]["text"].strip() == "3.1416"


@pytest.mark.parametrize("line", ["import labml_style_src.ch.base",
                                  "def f():\n    from labml_style_src.ch.base import area"])
def test_package_imports_must_be_top_level_from_imports(tmp_path, line):
    make_package(tmp_path, {"base": BASE}, ["base"])
    path = write(tmp_path, f"# %% [markdown]\n# # T\n#\n# d\n\n# %%\n{line}\n", "labml_style_src/ch/user.py")
    with pytest.raises(SourceError, match=r"ch/user\.py:\d+: (use 'from|imports from other pages must be at the top)"):
        literate.notebook_text(path, root=tmp_path)


def test_import_of_a_missing_page_is_an_error(tmp_path):
    make_package(tmp_path, {"user": USER}, ["user"])
    with pytest.raises(SourceError, match=r"imports labml_style_src\.ch\.base"):
        literate.notebook_text(tmp_path / "labml_style_src" / "ch" / "user.py", root=tmp_path)


# A cell that raises: the error names the file and the cell, not just a kernel traceback.
def test_a_cell_that_raises_names_file_and_cell(tmp_path):
    path = write(tmp_path, "# %% [markdown]\n# # T\n#\n# d\n\n# %%\nx = 1\n\n# %%\nraise ValueError('boom')\n")
    message = r"page\.py: code cell 2 \(starting \"raise ValueError\('boom'\)\"\) raised ValueError: boom"
    with pytest.raises(PageError, match=message):
        run_notebook(jupytext_notebook(path.read_text()), tmp_path, {}, str(path))
