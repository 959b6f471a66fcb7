"""MkDocs hook: one annotated source → a side-by-side page, a notebook view and a downloadable `.ipynb`.

Only MkDocs' events live here; the work is done by the package beside this file (`hooks/site_render/`, see its
`__init__`), which MkDocs can import because it puts this folder on `sys.path` while loading the hook.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page as MkDocsPage

# `mkdocs serve` runs this file again on each rebuild: forget the renderer's modules so that edits to them count.
for _name in [n for n in sys.modules if n == "site_render" or n.startswith("site_render.")]:
    del sys.modules[_name]

from site_render import execute, math, mkdocs_glue  # noqa: E402
from site_render.pages import Page, discover  # noqa: E402
from site_render.source import ROOT  # noqa: E402

TESTS = ROOT / "tests"
_site: list[tuple[str, list[Page]]] = []
_tests: list[Path] = []


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Navigation: the hand-written pages, then each chapter's pages in reading order, then the test pages."""
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


@event_priority(100)  # before mkdocs-jupyter's on_files, so that it sees the notebook views
def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Each page executed (or taken from the cache), then its files; then the test pages."""
    pages = [page for _, chapter in _site for page in chapter]
    executed = execute.executed_all([page.path for page in pages])
    for page in pages:
        for file in mkdocs_glue.page_files(page, executed[page.path], config):
            files.append(file)
    for path in _tests:
        files.append(File.generated(config, f"tests/{path.stem}.md", content=mkdocs_glue.test_page_markdown(path)))
    return files


def on_page_content(html: str, page: MkDocsPage, config: MkDocsConfig, files: Files) -> str:
    """Math typeset at build time (`site_render.math`); notebook views: see `mkdocs_glue.notebook_view_html`."""
    source = next((p for _, ps in _site for p in ps if p.notebook_uri == page.file.src_uri), None)
    if source is None:
        return math.arithmatex(html)
    page.title = f"{source.title} (notebook)"
    page.meta["description"] = source.description
    page.meta["search"] = {"exclude": True}  # the side-by-side page holds the same prose; one search hit is enough
    mkdocs_glue.typeset_toc(page.toc)
    return mkdocs_glue.notebook_view_html(html, source, page.file.url, files)
