"""MkDocs hook: one annotated source → a side-by-side page, a notebook page and a downloadable `.ipynb`.

Sources are `labml_style_src/<chapter>/<page>.py` in jupytext percent format (see README, "Adding a page").
The hook
- builds the navigation from `labml_style_src.CHAPTERS` and each chapter's `PAGES` (read with `ast`, nothing imported);
- splits each source pycco-style into rows of (note, code): markdown cells and the `#` comment block above some code
  go to the note column, the code (with its source line numbers) to the code column;
- registers the source itself for mkdocs-jupyter (the notebook view) and a self-contained `.ipynb` for download,
  in which the code the page imports from other pages is inlined;
- renders `tests/test_*.py` the same way, so pages can link to the test that proves a claim (`tests/<stem>.md#<test>`).
Any malformed source stops the build with `SourceError: <file>:<line>: <what is wrong>`.
"""

from __future__ import annotations

import ast
import html
import io
import json
import re
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "labml_style_src"
TESTS = ROOT / "tests"
PACKAGE = "labml_style_src"
MARKER = re.compile(r"^# %%(?P<rest>.*)$")
PIP_NAMES = {"sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml"}


class SourceError(PluginError):
    """A source breaks the format; the message starts with `file:line:`."""

    def __init__(self, path: Path, line: int, message: str):
        super().__init__(f"{_rel(path)}:{line}: {message}")


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------------------------------
# Parsing: file → cells → sections → rows
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Cell:
    kind: str  # "markdown" or "code"
    start: int  # 1-based line number of the first line of `lines`
    lines: list[str]


@dataclass
class Row:
    note: str  # Markdown
    code: list[tuple[int, str]] = field(default_factory=list)  # (source line number, text)
    cell: int | None = None  # index of the code cell this row belongs to (for the per-cell copy button)


def split_cells(text: str, path: Path, percent: bool = True) -> list[Cell]:
    """Percent-format cells; with `percent=False` (test files) the whole file is one code cell."""
    lines = text.splitlines()
    if not percent:
        return [Cell("code", 1, lines)]
    cells: list[Cell] = []
    for number, line in enumerate(lines, 1):
        match = MARKER.match(line)
        if match:
            rest = match["rest"].strip()
            if rest not in ("", "[markdown]"):
                raise SourceError(path, number, f"unknown cell marker {line!r}; use '# %%' or '# %% [markdown]'")
            cells.append(Cell("markdown" if rest else "code", number + 1, []))
        elif cells:
            cells[-1].lines.append(line)
        elif line.strip():
            raise SourceError(path, number, "code or text before the first '# %%' cell marker")
    for cell in cells:
        if cell.kind == "markdown":
            for offset, line in enumerate(cell.lines):
                if line and line != "#" and not line.startswith("# "):
                    raise SourceError(path, cell.start + offset, "a markdown cell line must start with '# ' "
                                      f"(or be a lone '#'), got {line!r}")
    return cells


JUPYTEXT = {"extension": ".py", "format_name": "percent", "comment_magics": False}


def check_magic_comments(text: str, path: Path) -> None:
    """jupytext, read with its defaults (as Jupyter and mkdocs-jupyter do), turns comments that look like shell
    commands (`# cd …`, `# ls …`, a line ending in `?`) into code. Refuse such comments, so that every reader of
    the source sees the same notebook."""
    import jupytext

    loose = jupytext.reads(text, fmt="py:percent").cells
    strict = jupytext.reads(text, fmt=JUPYTEXT).cells
    lines = text.splitlines()
    for a, b in zip(loose, strict):
        for got, meant in zip(a.source.splitlines(), b.source.splitlines()):
            if got != meant:
                number = lines.index(meant) + 1 if meant in lines else 1
                raise SourceError(path, number, f"jupytext would run this comment as a command: {meant.strip()!r}; "
                                  "reword it (e.g. do not start it with a shell command or end it with '?')")


def markdown_text(cell: Cell) -> str:
    return "\n".join(line[2:] if line.startswith("# ") else "" for line in cell.lines).strip("\n")


def note_lines(cell: Cell, path: Path) -> set[int]:
    """Line numbers (absolute) of full-line comments: the side notes. Found with `tokenize`, so a `#` inside a
    multi-line string is code, not a note."""
    source = "\n".join(cell.lines) + "\n"
    notes = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT and not token.line[: token.start[1]].strip():
                notes.add(cell.start + token.start[0] - 1)
    except (tokenize.TokenError, SyntaxError) as error:
        raise SourceError(path, cell.start, f"cannot tokenize this code cell: {error}") from None
    return notes


def rows(cells: list[Cell], path: Path) -> list[Row]:
    """Group into rows. A comment block starts a new row; a markdown cell shares its row with the code after it."""
    out: list[Row] = []
    pending = ""  # markdown waiting for the code that follows it
    for index, cell in enumerate(cells):
        if cell.kind == "markdown":
            if pending:
                out.append(Row(pending))
            pending = markdown_text(cell)
            continue
        notes = note_lines(cell, path)
        cell_rows: list[Row] = []
        comment: list[str] = []
        for offset, line in enumerate(cell.lines):
            number = cell.start + offset
            if number in notes:
                text = line.strip()[1:]
                comment.append(text[1:] if text.startswith(" ") else text)
                continue
            if comment or not cell_rows:
                cell_rows.append(Row("\n".join(comment), cell=index))
                comment = []
            cell_rows[-1].code.append((number, line))
        if comment:  # a comment block with no code after it
            cell_rows.append(Row("\n".join(comment), cell=index))
        for row in cell_rows:
            while row.code and not row.code[-1][1].strip():
                row.code.pop()
            while row.code and not row.code[0][1].strip():
                row.code.pop(0)
        cell_rows = [row for row in cell_rows if row.code or row.note.strip()]
        if pending:
            if cell_rows:
                first = cell_rows[0]
                first.note = pending + ("\n\n" + first.note if first.note.strip() else "")
            else:
                cell_rows = [Row(pending)]
            pending = ""
        out.extend(cell_rows)
    if pending:
        out.append(Row(pending))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Rendering: rows → Markdown with raw-HTML code (md_in_html keeps it as is)
# ---------------------------------------------------------------------------------------------------------------

def highlight(lines: list[str]) -> list[str]:
    """Pygments over a whole cell at once (multi-line strings stay right), then cut into one HTML string per line."""
    from pygments.lexers import PythonLexer
    from pygments.token import STANDARD_TYPES

    def css_class(ttype):
        while ttype not in STANDARD_TYPES:
            ttype = ttype.parent
        return STANDARD_TYPES[ttype]

    out = [""]
    for ttype, value in PythonLexer(stripnl=False, ensurenl=False).get_tokens("\n".join(lines)):
        cls = css_class(ttype)
        for i, piece in enumerate(value.split("\n")):
            if i:
                out.append("")
            if piece:
                text = html.escape(piece, quote=False)
                out[-1] += f'<span class="{cls}">{text}</span>' if cls else text
    return out + [""] * (len(lines) - len(out))


def render(path: Path, anchors: dict[int, str] | None = None, percent: bool = True) -> str:
    """The side-by-side body of one source as Markdown. `anchors` maps line numbers to element ids."""
    text = path.read_text(encoding="utf-8")
    cells = split_cells(text, path, percent)
    if percent:
        check_magic_comments(text, path)
    try:
        compile(text, str(path), "exec")
    except SyntaxError as error:
        raise SourceError(path, error.lineno or 1, f"syntax error: {error.msg}") from None
    all_rows = rows(cells, path)
    anchors = anchors or {}
    # Highlight each code cell once, then hand each row its lines.
    lines_html: dict[int, str] = {}
    for index, cell in enumerate(cells):
        if cell.kind == "code":
            shown = [(n, t) for row in all_rows if row.cell == index for n, t in row.code]
            for (number, _), fragment in zip(shown, highlight([t for _, t in shown])):
                lines_html[number] = fragment
    copied: set[int] = set()
    parts = ['<div class="lb-page" markdown>']
    for i, row in enumerate(all_rows, 1):
        parts.append(f'<div class="lb-row" id="s{i}" markdown>')
        parts.append(f'<div class="lb-note" markdown>\n<a class="lb-anchor" href="#s{i}" title="Link to this section">#</a>\n')
        parts.append(row.note + "\n\n</div>")
        if row.code:
            button = ""
            if row.cell not in copied:  # one copy button per code cell, on its first row: copies the whole cell
                copied.add(row.cell)
                whole = "\n".join(cells[row.cell].lines).strip("\n") + "\n"
                button = (f'<button class="md-clipboard md-icon lb-copy" title="Copy this cell" '
                          f'data-clipboard-text="{html.escape(whole, quote=True)}"></button>')
            body = "\n".join(
                f'<span class="lb-line"{_id(anchors.get(n))} data-ln="{n}">{lines_html[n]}</span>' for n, _ in row.code
            )
            parts.append(f'<div class="lb-code">{button}<div class="highlight no-copy"><pre><code>{body}\n</code></pre></div></div>')
        parts.append("</div>")
    parts.append("</div>")
    return "\n".join(parts) + "\n"


def _id(anchor: str | None) -> str:
    return f' id="{anchor}"' if anchor else ""


def title_and_description(path: Path) -> tuple[str, str]:
    """The first `# ` heading of the first markdown cell, and the first paragraph after it."""
    cells = split_cells(path.read_text(encoding="utf-8"), path)
    first = next((c for c in cells if c.kind == "markdown"), None)
    text = markdown_text(first) if first else ""
    match = re.match(r"# (?P<title>.+)\n+(?P<para>(?:.+\n?)+)", text + "\n")
    if not match:
        raise SourceError(path, first.start if first else 1, "the first markdown cell must start with '# # Title' "
                          "followed by a paragraph (the page's title and description)")
    para = re.sub(r"\s+", " ", match["para"]).strip()
    plain = re.sub(r"[$*`]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", para)
    return match["title"].strip(), plain


# ---------------------------------------------------------------------------------------------------------------
# Site structure, read from the package with ast (no import, so building the site needs no torch)
# ---------------------------------------------------------------------------------------------------------------

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
    def notebook_uri(self) -> str:  # the notebook view (mkdocs-jupyter), served at the source's own path
        return f"{PACKAGE}/{self.chapter}/{self.name}.py"

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


def test_anchors(path: Path) -> dict[int, str]:
    """Line number of each `def test_*` (top level or in a class) → its name, the anchor pages link to."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return {node.lineno: node.name for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")}


# ---------------------------------------------------------------------------------------------------------------
# Notebooks: a self-contained .ipynb per page
# ---------------------------------------------------------------------------------------------------------------

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
    return "\n".join(l for n, l in enumerate(lines, 1) if n not in drop), imports


def _aliases(node: ast.ImportFrom) -> str:
    return "\n".join(f"{a.asname} = {a.name}" for a in node.names if a.asname and a.asname != a.name)


def notebook_text(path: Path, root: Path = ROOT) -> str:
    """Percent-format text of the downloadable notebook: the page with the code it imports from other pages
    inlined in a cell after the title, so it runs with no copy of this project installed."""
    text = path.read_text(encoding="utf-8")
    order: list[Path] = []

    def visit(module: str, trail: tuple[str, ...]):
        dep = _module_path(module, root)
        if not dep.exists():
            raise SourceError(path, 1, f"imports {module}, but {_rel(dep)} does not exist")
        if dep in order:
            return
        if module in trail:
            raise SourceError(dep, 1, f"circular import between pages: {' -> '.join(trail + (module,))}")
        for sub in _strip(dep)[1]:
            visit(sub.module, trail + (module,))
        order.append(dep)

    tree = ast.parse(text, str(path))
    page_imports = _package_imports(tree, path)
    for node in page_imports:
        visit(node.module, ())

    lines = text.splitlines()
    for node in sorted(page_imports, key=lambda n: -n.lineno):  # replace each import by a pointer to the inlined code
        replacement = [f"# `from {node.module} import ...`: inlined at the top of this notebook"]
        replacement += _aliases(node).splitlines()
        lines[node.lineno - 1: node.end_lineno] = replacement

    inlined = []
    for dep in order:
        code, imports = _strip(dep)
        aliases = "\n".join(filter(None, (_aliases(n) for n in imports)))
        body = re.sub(r"\n{3,}", "\n\n", "\n".join(l for l in code.splitlines() if not MARKER.match(l))).strip()
        inlined.append(f"# %%\n# Inlined from {_rel(dep)} (its demos left out)\n{body}\n{aliases}".rstrip() + "\n")

    needs = sorted({PIP_NAMES.get(m, m) for m in _third_party(path, order)})
    header = ("# %% [markdown]\n# *This notebook is self-contained: code it takes from other pages of the site is "
              "inlined in the cells below this one.* It needs Python 3.10+ and "
              + ", ".join(f"`{n}`" for n in needs) + (f" (`pip install {' '.join(needs)}`)." if needs else ".")
              + "\n# Set `RESNET_DEVICE=cpu` to force the CPU; by default a CUDA GPU is used when present.\n")
    first = next(i for i, l in enumerate(lines) if MARKER.match(l))
    # after the first markdown cell (the title), before the page's own code
    second = next((i for i, l in enumerate(lines) if i > first and MARKER.match(l)), len(lines))
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


def notebook_json(path: Path, root: Path = ROOT) -> str:
    import jupytext

    notebook = jupytext.reads(notebook_text(path, root), fmt=JUPYTEXT)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata.pop("jupytext", None)
    return jupytext.writes(notebook, fmt="ipynb")


# ---------------------------------------------------------------------------------------------------------------
# MkDocs events
# ---------------------------------------------------------------------------------------------------------------

_site: list[tuple[str, list[Page]]] = []
_tests: list[Path] = []


def on_config(config):
    global _site, _tests
    _site = discover()
    _tests = sorted(TESTS.glob("test_*.py"))
    nav = list(config["nav"] or [])
    for title, pages in _site:
        if pages:
            nav.append({title: [{p.title: p.uri} for p in pages]})
    nav.append({"Tests (the proofs)": [{t.name: f"tests/{t.stem}.md"} for t in _tests]})
    config["nav"] = nav
    return config


def page_markdown(page: Page) -> str:
    # Markdown links, so `mkdocs build --strict` checks them.
    bar = (f'[Notebook view](../{page.notebook_uri}){{ .lb-view }} '
           f'[Download .ipynb](../{page.ipynb_uri}){{ .lb-view download="{page.name}.ipynb" }} '
           f'Run it as a program: `python -m {PACKAGE}.{page.chapter}.{page.name}`\n{{ .lb-views }}\n\n')
    front = json.dumps({"title": page.title, "description": page.description, "hide": ["toc"]})
    return f"---\n{front}\n---\n\n{bar}{render(page.path)}"


def test_page_markdown(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or f"The tests in {path.name}."
    front = json.dumps({"title": path.name, "description": doc.splitlines()[0], "hide": ["toc"]})
    intro = (f"# `tests/{path.name}`\n\nRun these checks yourself: `make test`, or just this file: "
             f"`.venv/bin/python -m pytest tests/{path.name} -q`.\n\n")
    return f"---\n{front}\n---\n\n{intro}{render(path, test_anchors(path), percent=False)}"


def on_files(files, config):
    from mkdocs.structure.files import File

    for _, pages in _site:
        for page in pages:
            files.append(File.generated(config, page.uri, content=page_markdown(page)))
            # a real File under the repository root: mkdocs-jupyter reads the source from `abs_src_path`
            files.append(File(page.notebook_uri, str(ROOT), config["site_dir"], config["use_directory_urls"]))
            files.append(File.generated(config, page.ipynb_uri, content=notebook_json(page.path)))
    for path in _tests:
        files.append(File.generated(config, f"tests/{path.stem}.md", content=test_page_markdown(path)))
    return files


on_files.mkdocs_priority = 100  # before mkdocs-jupyter's on_files, so it sees the notebook views


# mkdocs-jupyter's template loads MathJax (an empty or CDN `src`) and, for diagrams, mermaid from a CDN.
_CDN_SCRIPTS = re.compile(r'<script[^>]*\bsrc="(?:https?://[^"]*)?"[^>]*>\s*</script>'
                          r'|<script type="text/x-mathjax-config">.*?</script>'
                          r'|<script type="module">(?:(?!</script>).)*mermaid.*?</script>', re.S)


def on_page_content(html_text, page, config, files):
    """Notebook views: drop the CDN scripts mkdocs-jupyter's template adds (KaTeX is ours), add the view links,
    and point `.md` links at the side-by-side pages."""
    by_notebook = {p.notebook_uri: p for _, ps in _site for p in ps}
    source = by_notebook.get(page.file.src_uri)
    if source is None:
        return html_text
    html_text = _CDN_SCRIPTS.sub("", html_text)
    html_text = re.sub(r'(href|src)="(?!https?:|#|/)([^"]+?)(\.md)?(#[^"]*)?"',
                       lambda m: _rebase(m, source), html_text)
    page.title = f"{source.title} (notebook)"
    page.meta["description"] = source.description
    bar = (f'<p class="lb-views"><a class="lb-view" href="../../../{source.chapter}/{source.name}/">Side-by-side view</a> '
           f'<a class="lb-view" href="../{source.name}.ipynb" download="{source.name}.ipynb">Download .ipynb</a></p>')
    return bar + html_text


def _rebase(match, source: Page) -> str:
    """A relative link written for `<chapter>/<name>.md`, re-aimed from the notebook view `labml_style_src/<chapter>/<name>/`."""
    attr, target, md, anchor = match.group(1), match.group(2), match.group(3), match.group(4) or ""
    if re.match(r"[a-z]+:", target):
        return match.group(0)
    return f'{attr}="../../../{source.chapter}/{target}{"/" if md else ""}{anchor}"'
