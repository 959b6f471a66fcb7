"""The site's structure: chapters and pages in reading order, read from `labml_style_src` with `ast` (nothing is
imported, so building the site needs no torch)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from .source import ROOT, SourceError, title_and_description

SRC = ROOT / "labml_style_src"
PACKAGE = "labml_style_src"


@dataclass
class Page:
    chapter: str
    name: str
    path: Path
    title: str
    description: str

    @property
    def uri(self) -> str:  # the side-by-side page
        return f"{self.chapter}/{self.name}.md"

    @property
    def notebook_uri(self) -> str:  # the notebook view (mkdocs-jupyter), served at `labml_style_src/<chapter>/<page>/`
        return f"{PACKAGE}/{self.chapter}/{self.name}/index.ipynb"

    @property
    def ipynb_uri(self) -> str:  # the download, beside it
        return f"{PACKAGE}/{self.chapter}/{self.name}.ipynb"


def _module_constant(path: Path, name: str):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            try:
                return ast.literal_eval(node.value), ast.get_docstring(tree)
            except ValueError:
                raise SourceError(path, node.lineno, f"{name} must be a literal list of names") from None
    raise SourceError(path, 1, f"{name} = [...] is missing")


def discover(src: Path = SRC) -> list[tuple[str, list[Page]]]:
    """[(chapter title, pages)] in reading order. Every listed page must exist and every page file be listed."""
    chapters, _ = _module_constant(src / "__init__.py", "CHAPTERS")
    out = []
    for chapter in chapters:
        init = src / chapter / "__init__.py"
        if not init.exists():
            raise SourceError(src / "__init__.py", 1, f"chapter {chapter!r} has no {chapter}/__init__.py")
        names, doc = _module_constant(init, "PAGES")
        files = {p.stem for p in (src / chapter).glob("*.py")} - {"__init__"}
        for missing in [n for n in names if n not in files]:
            raise SourceError(init, 1, f"PAGES lists {missing!r} but {chapter}/{missing}.py does not exist")
        for unlisted in sorted(files - set(names)):
            raise SourceError(src / chapter / f"{unlisted}.py", 1, f"page is not listed in {chapter}/__init__.py PAGES")
        pages = [Page(chapter, n, src / chapter / f"{n}.py", *title_and_description(src / chapter / f"{n}.py"))
                 for n in names]
        out.append(((doc or chapter).strip().splitlines()[0], pages))
    return out
