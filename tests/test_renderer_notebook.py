"""Unit tests of the downloadable notebook (hooks/site_render/notebook.py): the code a page imports from other
pages is inlined, so the notebook runs where this project is not installed."""

import nbformat
import pytest

from conftest import notebook, source
from renderer_fixtures import make_package, write
from site_render import execute

SourceError = source.SourceError


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
    text = notebook.notebook_text(path, root=tmp_path)
    assert "def area(r):" in text and "raise SystemExit" not in text and "disc_area = area" in text
    assert "# # Base" not in text  # the other page's narrative is not inlined, only its code
    package_imports = ("from labml_style_src", "import labml_style_src")
    assert not [l for l in text.splitlines() if l.lstrip().startswith(package_imports)]
    nb = nbformat.reads(notebook.notebook_json(path, root=tmp_path), as_version=4)
    nbformat.validate(nb)
    execute.execute(nb, path, {"PYTHONPATH": ""})  # in a new empty folder, checking the package is not importable
    assert nb.cells[-1].outputs[0]["text"].strip() == "3.1416"


@pytest.mark.parametrize("line", ["import labml_style_src.ch.base",
                                  "def f():\n    from labml_style_src.ch.base import area"])
def test_package_imports_must_be_top_level_from_imports(tmp_path, line):
    make_package(tmp_path, {"base": BASE}, ["base"])
    path = write(tmp_path, f"# %% [markdown]\n# # T\n#\n# d\n\n# %%\n{line}\n", "labml_style_src/ch/user.py")
    with pytest.raises(SourceError, match=r"ch/user\.py:\d+: (use 'from|imports from other pages must be at the top)"):
        notebook.notebook_text(path, root=tmp_path)


def test_import_of_a_missing_page_is_an_error(tmp_path):
    make_package(tmp_path, {"user": USER}, ["user"])
    with pytest.raises(SourceError, match=r"imports labml_style_src\.ch\.base"):
        notebook.notebook_text(tmp_path / "labml_style_src" / "ch" / "user.py", root=tmp_path)
