"""Small sources the renderer tests write into a temporary folder."""

import textwrap
from pathlib import Path


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


def make_package(tmp_path, pages: dict[str, str], listed: list[str]) -> Path:
    src = tmp_path / "labml_style_src"
    write(src, 'CHAPTERS = ["ch"]\n', "__init__.py")
    write(src, f'"""Chapter"""\nPAGES = {listed!r}\n', "ch/__init__.py")
    for name, text in pages.items():
        write(src, text, f"ch/{name}.py")
    return src
