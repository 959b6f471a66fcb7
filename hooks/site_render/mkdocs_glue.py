"""What MkDocs serves for each source: the generated Markdown of the side-by-side and test pages, and the fix-ups
of the notebook views mkdocs-jupyter renders. Links are computed from the files' own paths and URLs."""

from __future__ import annotations

import ast
import json
import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import Files
from mkdocs.utils import get_relative_url

from .languages import Language
from .pages import PACKAGE, Page
from .source import ROOT, render, test_anchors


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


def view_source(page: Page, lang: Language) -> Path:
    """The folder mkdocs-jupyter reads the notebook view from: the repository in English; in another language a
    copy of the source with its markdown cells translated (`.cache/<lang>/views/labml_style_src/...`)."""
    if lang.english:
        return ROOT
    views = ROOT / ".cache" / lang.code / "views"
    target = views / page.notebook_uri
    target.parent.mkdir(parents=True, exist_ok=True)
    text = lang.source_text(page.path, page.chapter)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return views


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


# mkdocs-jupyter's template loads MathJax (an empty or CDN `src`) and, for diagrams, mermaid from a CDN.
_CDN_SCRIPTS = re.compile(r'<script[^>]*\bsrc="(?:https?://[^"]*)?"[^>]*>\s*</script>'
                          r'|<script type="text/x-mathjax-config">.*?</script>'
                          r'|<script type="module">(?:(?!</script>).)*mermaid.*?</script>', re.S)
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

    html_text = _RELATIVE.sub(rebase, _CDN_SCRIPTS.sub("", html_text))
    lang = lang or Language()
    bar = (f'<p class="lb-views"><a class="lb-view" href="{url(source.uri)}">{lang.ui("Side-by-side view")}</a> '
           f'<a class="lb-view" href="{url(source.ipynb_uri)}" download="{source.name}.ipynb">'
           f'{lang.ui("Download .ipynb")}</a></p>')
    return bar + html_text
