"""Outputs as the site shows them: under each code cell of the side-by-side page (an output area: text in
monospace, long text folded, figures as image files loaded lazily with alt text), and in the notebook view (the
page's own notebook with the same outputs, figures pointing at the same files).

What a page does to show something: print it, or show a matplotlib figure (`plt.show()`, or a figure left open at
the end of a cell), or display an object with an SVG / PNG form (`IPython.display.SVG(...)`, objects with
`_repr_svg_`). The alt text of a figure is, in order: its label (`plt.figure(label=...)` or `fig.set_label(...)`:
the way to give a caption), its suptitle, its axes' titles, its first axes' labels (set in the kernel by
`execute.SETUP`); an SVG's `<desc>`, else its `<title>`; otherwise "Figure drawn by code cell N".
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat

from .execute import PageError
from .notebook import INLINED_PREFIX, with_kernel
from .source import JUPYTEXT, one_line, rel, split_cells

LONG = 25  # text outputs with more lines than this are collapsed behind an expander


@dataclass
class Shown:
    """One output as the site shows it: text, an image (bytes + extension + alt text), or HTML."""
    kind: str  # "text", "stderr", "image" or "html"
    text: str = ""
    data: bytes = b""
    ext: str = ""


IMAGES = {"image/svg+xml": "svg", "image/png": "png", "image/jpeg": "jpg"}


def shown(out, cell_number: int, ui: Callable[..., str] | None = None) -> Shown | None:
    if out.output_type == "stream":
        return Shown("stderr" if out.name == "stderr" else "text", out.text.rstrip("\n"))
    data = out.get("data", {})
    for mime, ext in IMAGES.items():
        if mime in data:
            value = data[mime]
            raw = value.encode() if ext == "svg" else base64.b64decode(value)
            raw = small_png(raw) if ext == "png" else raw
            meta = out.get("metadata", {})
            alt = meta.get("alt") or meta.get(mime, {}).get("alt") or _svg_title(value if ext == "svg" else "")
            default = (ui or _english)("Figure drawn by code cell {n}", n=cell_number)
            return Shown("image", alt or default, raw, ext)
    if "text/html" in data:
        return Shown("html", data["text/html"])
    if "text/plain" in data:
        return Shown("text", data["text/plain"].rstrip("\n"))
    return None


def small_png(data: bytes) -> bytes:
    """An opaque PNG (what matplotlib draws) as a 256-colour palette PNG: a figure has a few dozen colours plus
    their anti-aliasing, so almost every pixel stays exact, for a third to a half of the bytes. A PNG with
    transparency, or one that would not get smaller, is kept as it is."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        rgba = image.convert("RGBA")
    if rgba.getextrema()[3][0] < 255:
        return data
    palette = rgba.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    palette.save(out, "PNG", optimize=True)
    return out.getvalue() if out.tell() < len(data) else data


def _svg_title(svg: str) -> str:
    """The SVG's own text alternative: its `<desc>` (a description in words), else its first `<title>`."""
    match = re.search(r"<desc\b[^>]*>([^<]+)</desc>", svg) or re.search(r"<title\b[^>]*>([^<]+)</title>", svg)
    return html.unescape(match[1]).strip() if match else ""


def image_size(data: bytes, ext: str) -> tuple[int, int] | None:
    if ext == "png" and data[:8] == b"\x89PNG\r\n\x1a\n":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return None


def img_tag(item: Shown, src: str) -> str:
    size = image_size(item.data, item.ext)
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    return (f'<img class="lb-out-figure" src="{html.escape(src)}" alt="{html.escape(item.text)}"{dims} '
            f'loading="lazy" decoding="async">')


def outputs_html(outputs, cell_number: int, image_src: Callable[[Shown], str],
                 ui: Callable[..., str] | None = None) -> str:
    """The output area under a code cell. `image_src` writes an image file and returns its URL; `ui` gives the
    labels in the page's language."""
    ui = ui or _english
    parts = []
    for out in outputs:
        item = shown(out, cell_number, ui)
        if item is None:
            continue
        if item.kind == "image":
            parts.append(img_tag(item, image_src(item)))
        elif item.kind == "html":
            parts.append(f'<div class="lb-out-html">{one_line(item.text)}</div>')
        else:
            cls = "lb-out-text lb-out-stderr" if item.kind == "stderr" else "lb-out-text"
            # tabindex: a keyboard reaches (and scrolls) an output wider than the column
            text = f'<pre class="{cls}" tabindex="0">{one_line(html.escape(item.text))}</pre>'
            lines = item.text.count("\n") + 1
            if lines > LONG:
                summary = ui("Output: {n} lines", n=lines)
                text = f'<details class="lb-out-long"><summary>{summary}</summary>{text}</details>'
            parts.append(text)
    if not parts:
        return ""
    return (f'<div class="lb-output" role="group" aria-label="{ui("Output of code cell {n}", n=cell_number)}" '
            f'data-label="{ui("Output")}">' + "".join(parts) + "</div>")


def _english(text: str, **fields) -> str:
    return text.format(**fields) if fields else text


def page_outputs(nb, page: Path) -> dict[int, list]:
    """{index of a code cell in `split_cells(page)`: its outputs}. The notebook's last code cells are the page's own
    (the cells before them hold code inlined from other pages)."""
    cells = split_cells(page.read_text(encoding="utf-8"), page)
    indices = [i for i, c in enumerate(cells) if c.kind == "code"]
    code = [c for c in nb.cells if c.cell_type == "code"]
    inlined = len(code) - len(indices)
    if inlined < 0 or any(not c.source.startswith(INLINED_PREFIX) for c in code[:inlined]):
        raise PageError(f"{rel(page)}: its notebook's code cells do not line up with the source's "
                        f"({len(code)} against {len(indices)})")
    return {index: cell.outputs for index, cell in zip(indices, code[inlined:])}


def view_notebook(page: Path, outputs: dict[int, list], image_src: Callable[[Shown], str], text: str | None = None,
                  ui: Callable[..., str] | None = None):
    """The page's own notebook (as the notebook view shows it) with its outputs; images become `<img>` outputs
    pointing at the image files, so the view holds no base64 megabytes. `text`: the source in the view's language
    (`Language.source_text`: markdown cells translated, code cells the same)."""
    import jupytext

    nb = with_kernel(jupytext.reads(text or page.read_text(encoding="utf-8"), fmt=JUPYTEXT))
    indices = [i for i, c in enumerate(split_cells(page.read_text(encoding="utf-8"), page)) if c.kind == "code"]
    code = [c for c in nb.cells if c.cell_type == "code"]
    for number, (index, cell) in enumerate(zip(indices, code), 1):
        cell.outputs = []
        for out in outputs.get(index, []):
            item = shown(out, number, ui)
            if item is not None and item.kind == "image":
                out = nbformat.v4.new_output("display_data", data={"text/html": img_tag(item, image_src(item))})
            cell.outputs.append(out)
        cell.execution_count = number
    return nb
