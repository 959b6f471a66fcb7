"""The source format: a jupytext percent-format file → cells → rows of (note, code) → side-by-side HTML.

Markdown cells and the `#` comment block directly above some code go to the note column; the code, with its
source line numbers, to the code column. A markdown cell shares its row with the code after it. Any malformed
source raises `SourceError` with `<file>:<line>: <what is wrong>`.
"""

from __future__ import annotations

import ast
import html
import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]  # the repository
MARKER = re.compile(r"^# %%(?P<rest>.*)$")
# How every reader of a source (the notebook download, the notebook view) must parse it with jupytext.
JUPYTEXT = {"extension": ".py", "format_name": "percent", "comment_magics": False}


class SourceError(PluginError):
    """A source breaks the format; the message starts with `file:line:`."""

    def __init__(self, path: Path, line: int, message: str):
        super().__init__(f"{rel(path)}:{line}: {message}")


def rel(path: Path) -> str:
    """`path` relative to the repository when it is inside it (messages never show the machine's paths)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


@dataclass
class Cell:
    kind: str  # "markdown" or "code"
    start: int  # 1-based line number of the first line of `lines`
    lines: list[str]


@dataclass
class Row:
    note: str  # Markdown
    code: list[tuple[int, str]] = field(default_factory=list)  # (source line number, text)
    cell: int | None = None  # index of the code cell this row belongs to (copy button, outputs)


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


def rows(cells: list[Cell], path: Path, translate: Callable[[str], str] | None = None) -> list[Row]:
    """Group into rows. A comment block starts a new row; a markdown cell shares its row with the code after it.
    `translate` maps the text of each markdown cell and each side note (see `languages.py`)."""
    translate = translate or (lambda text: text)
    out: list[Row] = []
    pending = ""  # markdown waiting for the code that follows it
    for index, cell in enumerate(cells):
        if cell.kind == "markdown":
            if pending:
                out.append(Row(pending))
            pending = translate(markdown_text(cell))
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
                cell_rows.append(Row(translate("\n".join(comment)), cell=index))
                comment = []
            cell_rows[-1].code.append((number, line))
        if comment:  # a comment block with no code after it
            cell_rows.append(Row(translate("\n".join(comment)), cell=index))
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
                # plain names and whitespace take the code's own colour: no span (lighter pages)
                out[-1] += f'<span class="{cls}">{text}</span>' if cls not in ("", "n", "w") else text
    return out + [""] * (len(lines) - len(out))


def read_checked(path: Path, percent: bool = True) -> tuple[str, list[Cell]]:
    """The text and cells of a source, after every format check (cells, magic comments, syntax)."""
    text = path.read_text(encoding="utf-8")
    cells = split_cells(text, path, percent)
    if percent:
        check_magic_comments(text, path)
    try:
        compile(text, str(path), "exec")
    except SyntaxError as error:
        raise SourceError(path, error.lineno or 1, f"syntax error: {error.msg}") from None
    return text, cells


def render(path: Path, anchors: dict[int, str] | None = None, percent: bool = True,
           outputs: dict[int, str] | None = None, translate: Callable[[str], str] | None = None,
           ui: Callable[[str], str] | None = None) -> str:
    """The side-by-side body of one source as Markdown. `anchors` maps line numbers to element ids; `outputs`
    maps the index of a code cell (in `split_cells`) to the HTML of its outputs, shown below its last row;
    `translate` maps each note's text and `ui` each interface string to the page's language."""
    ui = ui or (lambda text: text)
    _, cells = read_checked(path, percent)
    all_rows = rows(cells, path, translate)
    anchors, outputs = anchors or {}, outputs or {}
    # Highlight each code cell once, then hand each row its lines.
    lines_html: dict[int, str] = {}
    for index, cell in enumerate(cells):
        if cell.kind == "code":
            shown = [(n, t) for row in all_rows if row.cell == index for n, t in row.code]
            for (number, _), fragment in zip(shown, highlight([t for _, t in shown])):
                lines_html[number] = fragment
    last_row = {row.cell: i for i, row in enumerate(all_rows)}  # where each cell's outputs go
    copied: set[int] = set()
    parts = ['<div class="lb-page" markdown>']
    for i, row in enumerate(all_rows, 1):
        parts.append(f'<div class="lb-row" id="s{i}" markdown>')
        parts.append(f'<div class="lb-note" markdown>\n<a class="lb-anchor" href="#s{i}" '
                     f'title="{ui("Link to this section")}">#</a>\n')
        parts.append(row.note + "\n\n</div>")
        shown_output = outputs.get(row.cell, "") if last_row.get(row.cell) == i - 1 else ""
        if row.code or shown_output:
            button = ""
            if row.code and row.cell not in copied:  # one copy button per cell, on its first row: the whole cell
                copied.add(row.cell)
                whole = "\n".join(cells[row.cell].lines).strip("\n") + "\n"
                button = (f'<button class="md-clipboard md-icon lb-copy" title="{ui("Copy this cell")}" '
                          f'data-clipboard-text="{one_line(html.escape(whole, quote=True))}"></button>')
            body = "\n".join(f'<span class="lb-line"{_id(anchors.get(n))} data-ln="{n}">{lines_html[n]}</span>'
                             for n, _ in row.code)
            listing = f'<div class="highlight no-copy"><pre><code>{body}\n</code></pre></div>' if row.code else ""
            # The button after the listing: an inline element first would make Markdown split this raw block.
            # The code column stays out of the search index: readers search the prose, names and headings.
            parts.append(f'<div class="lb-code" data-search-exclude>{listing}{button}{shown_output}</div>')
        parts.append("</div>")
    parts.append("</div>")
    return "\n".join(parts) + "\n"


def one_line(text: str) -> str:
    """Newlines as character references: a blank line would end Markdown's raw HTML block in the middle."""
    return text.replace("\n", "&#10;")


def _id(anchor: str | None) -> str:
    return f' id="{anchor}"' if anchor else ""


def title_and_description(path: Path, translate: Callable[[str], str] | None = None) -> tuple[str, str]:
    """The first `# ` heading of the first markdown cell, and the first paragraph after it (`translate`d)."""
    cells = split_cells(path.read_text(encoding="utf-8"), path)
    first = next((c for c in cells if c.kind == "markdown"), None)
    text = (translate or (lambda t: t))(markdown_text(first)) if first else ""
    match = re.match(r"# (?P<title>.+)\n+(?P<para>(?:.+\n?)+)", text + "\n")
    if not match:
        raise SourceError(path, first.start if first else 1, "the first markdown cell must start with '# # Title' "
                          "followed by a paragraph (the page's title and description)")
    para = re.sub(r"\s+", " ", match["para"]).strip()
    plain = re.sub(r"[$*`]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", para)
    return match["title"].strip(), plain


def test_anchors(path: Path) -> dict[int, str]:
    """Line number of each `def test_*` (top level or in a class) → its name, the anchor pages link to."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return {node.lineno: node.name for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")}
