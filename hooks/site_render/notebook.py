"""The self-contained notebook offered for download: the page, with the code it imports from other pages inlined
in a cell after its title, so it runs where this project is not installed."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from .languages import NOTEBOOK_DEVICE, NOTEBOOK_NEEDS, Language
from .pages import PACKAGE
from .source import JUPYTEXT, MARKER, ROOT, SourceError, rel, split_cells

PIP_NAMES = {"sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml"}
INLINED_PREFIX = "# Inlined from "  # the first line of each inlined cell: this, the file, "(its demos left out)"


def _package_imports(tree: ast.Module, path: Path) -> list[ast.ImportFrom]:
    """The file's `from labml_style_src... import ...` statements; they must be top-level `from` imports."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == PACKAGE for a in node.names):
            raise SourceError(path, node.lineno, f"use 'from {PACKAGE}.<chapter>.<page> import name'")
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
            if node not in tree.body:
                raise SourceError(path, node.lineno, "imports from other pages must be at the top level of the file")
            found.append(node)
    return found


def _module_path(module: str, root: Path = ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def _strip(path: Path) -> tuple[str, list[ast.ImportFrom]]:
    """The code of a module without its `if __name__ == "__main__":` blocks and package imports, plus those imports."""
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text, str(path))
    imports = _package_imports(tree, path)
    drop: set[int] = set()
    percent = any(MARKER.match(line) for line in text.splitlines())  # helper modules have no cells
    for cell in split_cells(text, path, percent):  # the narrative stays on its own page: only code is inlined
        if cell.kind == "markdown":
            drop.update(range(cell.start - 1, cell.start + len(cell.lines)))
    for node in tree.body:
        main = (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                and getattr(node.test.left, "id", None) == "__name__")
        if main or node in imports:
            drop.update(range(node.lineno, node.end_lineno + 1))
    lines = text.splitlines()
    return "\n".join(line for n, line in enumerate(lines, 1) if n not in drop), imports


def _aliases(node: ast.ImportFrom) -> str:
    return "\n".join(f"{a.asname} = {a.name}" for a in node.names if a.asname and a.asname != a.name)


def dependencies(path: Path, root: Path = ROOT) -> list[Path]:
    """The files a page imports from other pages, directly or not, in the order they must run."""
    order: list[Path] = []

    def visit(module: str, trail: tuple[str, ...]):
        dep = _module_path(module, root)
        if not dep.exists():
            raise SourceError(path, 1, f"imports {module}, but {rel(dep)} does not exist")
        if dep in order:
            return
        if module in trail:
            raise SourceError(dep, 1, f"circular import between pages: {' -> '.join(trail + (module,))}")
        for sub in _strip(dep)[1]:
            visit(sub.module, trail + (module,))
        order.append(dep)

    for node in _package_imports(ast.parse(path.read_text(encoding="utf-8"), str(path)), path):
        visit(node.module, ())
    return order


def notebook_text(path: Path, root: Path = ROOT, lang: Language | None = None) -> str:
    """Percent-format text of the downloadable notebook: the page with the code it imports from other pages
    inlined in a cell after the title, so it runs with no copy of this project installed. In another language
    only the markdown cells differ (`Language.source_text`): the code cells are the same."""
    lang = lang or Language()
    text = lang.source_text(path, path.parent.name)
    order = dependencies(path, root)
    lines = text.splitlines()
    page_imports = _package_imports(ast.parse(text, str(path)), path)
    for node in sorted(page_imports, key=lambda n: -n.lineno):  # replace each import by a pointer to the inlined code
        replacement = [f"# `from {node.module} import ...`: inlined at the top of this notebook"]
        replacement += _aliases(node).splitlines()
        lines[node.lineno - 1: node.end_lineno] = replacement

    inlined = []
    for dep in order:
        code, imports = _strip(dep)
        aliases = "\n".join(filter(None, (_aliases(n) for n in imports)))
        body = re.sub(r"\n{3,}", "\n\n", "\n".join(line for line in code.splitlines() if not MARKER.match(line)))
        head = f"# %%\n{INLINED_PREFIX}{rel(dep)} (its demos left out)"
        inlined.append(f"{head}\n{body.strip()}\n{aliases}".rstrip() + "\n")

    needs = sorted({PIP_NAMES.get(m, m) for m in _third_party(path, order)})
    listed = ", ".join(f"`{n}`" for n in needs) + (f" (`pip install {' '.join(needs)}`)" if needs else "")
    header = ("# %% [markdown]\n# " + lang.ui(NOTEBOOK_NEEDS, needs=listed) + "\n# " + lang.ui(NOTEBOOK_DEVICE) + "\n")
    first = next(i for i, line in enumerate(lines) if MARKER.match(line))
    # after the first markdown cell (the title), before the page's own code
    second = next((i for i, line in enumerate(lines) if i > first and MARKER.match(line)), len(lines))
    out = lines[:second] + ["", header] + inlined + lines[second:]
    return "\n".join(out) + "\n"


def _third_party(path: Path, deps: list[Path]) -> set[str]:
    roots = set()
    for file in [path, *deps]:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots.add(node.module.split(".")[0])
    return {r for r in roots if r not in sys.stdlib_module_names and r != PACKAGE}


def notebook(path: Path, root: Path = ROOT, lang: Language | None = None):
    """The downloadable notebook (an `nbformat` node, no outputs yet)."""
    import jupytext

    return with_kernel(jupytext.reads(notebook_text(path, root, lang), fmt=JUPYTEXT))


def with_kernel(nb):
    """A notebook read by jupytext, made ready to run and to compare: the Python kernel, no jupytext metadata, cell
    ids that depend on the position only (the same source gives the same file, so caches keyed on it hold)."""
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.pop("jupytext", None)
    for number, cell in enumerate(nb.cells, 1):
        cell.id = f"cell-{number}"
    return nb


def notebook_json(path: Path, root: Path = ROOT, lang: Language | None = None) -> str:
    import jupytext

    return jupytext.writes(notebook(path, root, lang), fmt="ipynb")
