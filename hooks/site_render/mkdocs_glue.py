"""What MkDocs serves for each source: the files of a page (side-by-side Markdown, notebook view, download, output
images), the test pages, and the fix-ups of the notebook views mkdocs-jupyter renders. Links are computed from the
files' own paths and URLs."""

from __future__ import annotations

import ast
import hashlib
import json
import posixpath
import re
from pathlib import Path

import nbformat
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.utils import get_relative_url

from . import math, outputs
from .languages import Language
from .pages import PACKAGE, Page
from .source import ROOT, render, test_anchors

VIEWS = ROOT / ".cache" / "views"  # the notebooks mkdocs-jupyter renders (mkdocs.yml `include`), outputs filled in


def views(lang: Language) -> Path:
    """Where the notebook views of a language are written: `.cache/views`, `.cache/<lang>/views` (each path ends
    in `views/labml_style_src/...`, the pattern mkdocs-jupyter's `include` matches)."""
    return VIEWS if lang.english else ROOT / ".cache" / lang.code / "views"


def _link(target_uri: str, from_uri: str) -> str:
    """A Markdown link target from one source file to another (MkDocs checks and rewrites it)."""
    return posixpath.relpath(target_uri, posixpath.dirname(from_uri))


def page_markdown(page: Page, outputs: dict[int, str] | None = None, lang: Language | None = None) -> str:
    """The side-by-side page in `lang`: its notes translated block by block, its code as it is."""
    lang = lang or Language()
    # Markdown links, so `mkdocs build --strict` checks them.
    bar = (f'[{lang.ui("Notebook view")}]({_link(page.notebook_uri, page.uri)}){{ .lb-view }} '
           f'[{lang.ui("Download .ipynb")}]({_link(page.ipynb_uri, page.uri)})'
           f'{{ .lb-view download="{page.name}.ipynb" }} '
           f'{lang.ui("Run it as a program:")} `python -m {PACKAGE}.{page.chapter}.{page.name}`\n{{ .lb-views }}\n\n')
    front = json.dumps({"title": page.title, "description": page.description, "hide": ["toc"]})
    body = render(page.path, outputs=outputs, translate=lang.page_translator(page), ui=lang.ui)
    return f"---\n{front}\n---\n\n{bar}{body}"


def page_files(page: Page, executed, config: MkDocsConfig, lang: Language | None = None) -> list[File]:
    """The files of one page: side-by-side Markdown with outputs under each code cell, the notebook view (an
    .ipynb with the same outputs), the download (the executed self-contained notebook) and the image files.
    `executed` is the download in `lang` (its markdown translated, its outputs those of the English code)."""
    lang = lang or Language()
    images: dict[str, File] = {}

    def image(item: outputs.Shown) -> str:  # an image output → a file named by its content
        uri = f"{page.chapter}/{page.name}/{hashlib.sha256(item.data).hexdigest()[:16]}.{item.ext}"
        images.setdefault(uri, File.generated(config, uri, content=item.data))
        return uri

    side_url = File.generated(config, page.uri, content="").url
    per_cell = outputs.page_outputs(executed, page.path)
    shown = {index: outputs.outputs_html(outs, number, lambda item: get_relative_url(images[image(item)].url, side_url),
                                         lang.ui)
             for number, (index, outs) in enumerate(per_cell.items(), 1)}
    # The view's image links are written for the side-by-side page, like every link in it (notebook_view_html).
    view = outputs.view_notebook(page.path, per_cell, lambda item: _link(image(item), page.uri),
                                 lang.source_text(page.path, page.chapter), lang.ui)
    view_path = views(lang) / page.notebook_uri
    view_path.parent.mkdir(parents=True, exist_ok=True)
    view_path.write_text(nbformat.writes(view), encoding="utf-8")
    return [File.generated(config, page.uri, content=page_markdown(page, shown, lang)),
            # a real file (mkdocs-jupyter reads `abs_src_path`), where `.cache/views` stands for the docs folder
            File(page.notebook_uri, str(views(lang)), config.site_dir, config.use_directory_urls),
            File.generated(config, page.ipynb_uri, content=nbformat.writes(executed)),
            *images.values()]


def test_page_markdown(path, lang: Language | None = None) -> str:
    """A test file as a page. Test code is not translated: in another language a one-line note says so."""
    lang = lang or Language()
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or f"The tests in {path.name}."
    front = json.dumps({"title": path.name, "description": doc.splitlines()[0], "hide": ["toc"]})
    same = lang.ui("This page is the test code itself; it is the same in every language.")
    note = "" if lang.english else f"*{same}*\n\n"
    run = lang.ui("Run these checks yourself: `make test`, or just this file: `{command}`.",
                  command=f".venv/bin/python -m pytest tests/{path.name} -q")
    intro = f"# `tests/{path.name}`\n\n{note}{run}\n\n"
    return f"---\n{front}\n---\n\n{intro}{render(path, test_anchors(path), percent=False, ui=lang.ui)}"


# mkdocs-jupyter's template loads MathJax (an empty or CDN `src`) and, for diagrams, mermaid from a CDN; it also
# inlines JupyterLab's whole stylesheet (~590 KB) into every view. The views use the site's own small stylesheet
# (docs/assets/css/notebook.css, in the site's palette, light and dark) instead.
_CDN_SCRIPTS = re.compile(r'<script[^>]*\bsrc="(?:https?://[^"]*)?"[^>]*>\s*</script>'
                          r'|<script type="text/x-mathjax-config">.*?</script>'
                          r'|<script type="module">(?:(?!</script>).)*mermaid.*?</script>'
                          r'|<style[^>]*>.*?</style>', re.S)  # used on what precedes the notebook only
# For a notebook read from an .ipynb, mkdocs-jupyter appends a <style> holding the repr of a Python list.
_TRAILING_STYLE = re.compile(r"\s*<style>\s*\[.*?\]\s*</style>\s*$", re.S)
_RELATIVE = re.compile(r'(href|src)="(?![a-z][a-z0-9+.-]*:|#|/)([^"#]*)(#[^"]*)?"')


def notebook_view_html(html_text: str, source: Page, view_url: str, files: Files, lang: Language | None = None) -> str:
    """A notebook view's content: no CDN scripts (KaTeX is ours), links to the other views, and relative links
    (written in the source for its side-by-side page `<chapter>/<name>.md`) re-aimed from the view's own URL."""
    def url(src_uri: str) -> str:
        file = files.get_file_from_path(src_uri)
        return get_relative_url(file.url if file else src_uri, view_url)

    def rebase(match: re.Match) -> str:
        attr, target, anchor = match.group(1), match.group(2), match.group(3) or ""
        return f'{attr}="{url(posixpath.normpath(posixpath.join(source.chapter, target)))}{anchor}"'

    head, wrapper, notebook = html_text.partition('<div class="jupyter-wrapper">')
    html_text = _RELATIVE.sub(rebase, _CDN_SCRIPTS.sub("", head) + wrapper + _TRAILING_STYLE.sub("", notebook))
    # Code in Material's `.highlight` (its token colours, light and dark); math typeset at build time. Keyboard
    # focus goes to what can scroll (code and outputs), not to every cell's wrapper.
    html_text = html_text.replace('class="highlight-ipynb', 'class="highlight highlight-ipynb')
    html_text = html_text.replace('class="jp-Cell-inputWrapper" tabindex="0"', 'class="jp-Cell-inputWrapper"')
    html_text = math.dollars(re.sub(r"<pre(?=[ >])", '<pre tabindex="0"', html_text))
    lang = lang or Language()
    bar = (f'<p class="lb-views"><a class="lb-view" href="{url(source.uri)}">{lang.ui("Side-by-side view")}</a> '
           f'<a class="lb-view" href="{url(source.ipynb_uri)}" download="{source.name}.ipynb">'
           f'{lang.ui("Download .ipynb")}</a></p>')
    return bar + html_text


def typeset_toc(items) -> None:
    """Headings with `$…$` in a notebook view's table of contents, typeset like the page."""
    for item in items:
        item.title = math.dollars(item.title)
        typeset_toc(item.children)
