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
from site_render.languages import Language  # noqa: E402
from site_render.pages import Page, discover  # noqa: E402
from site_render.source import ROOT  # noqa: E402

TESTS = ROOT / "tests"
_site: list[tuple[str, list[Page]]] = []
_tests: list[Path] = []
_lang = Language()


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """The build's language (`theme.language`: en, or ja / zh from mkdocs.ja.yml / mkdocs.zh.yml), then the
    navigation: the hand-written pages, each chapter's pages in reading order, the test pages; all in that language."""
    global _site, _tests, _lang
    _lang = Language(config.theme["language"])
    _site = [(_lang.ui(title), [_lang.page(p) for p in pages]) for title, pages in discover()]
    _tests = sorted(TESTS.glob("test_*.py"))
    config.site_name = _lang.ui(config.site_name)
    config.site_description = _lang.ui(config.site_description)
    nav = [{_lang.ui(k): v for k, v in item.items()} if isinstance(item, dict) else item for item in config.nav or []]
    for title, pages in _site:
        if pages:
            nav.append({title: [{p.title: p.uri} for p in pages]})
    nav.append({_lang.ui("Tests (the proofs)"): [{t.name: f"tests/{t.stem}.md"} for t in _tests]})
    config.nav = nav
    return config


@event_priority(100)  # before mkdocs-jupyter's on_files, so that it sees the notebook views
def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Each page executed (or taken from the cache), then its files; then the test pages. In another language
    the notebooks differ from the English ones in their markdown cells only, and the cache is keyed by code: the
    English execution serves every language."""
    pages = [page for _, chapter in _site for page in chapter]
    executed = execute.executed_all([page.path for page in pages], lang=_lang)
    for page in pages:
        for file in mkdocs_glue.page_files(page, executed[page.path], config, _lang):
            files.append(file)
    for path in _tests:
        markdown = mkdocs_glue.test_page_markdown(path, _lang)
        files.append(File.generated(config, f"tests/{path.stem}.md", content=markdown))
    return files


def on_page_markdown(markdown: str, page: MkDocsPage, config: MkDocsConfig, files: Files) -> str:
    """Hand-written pages (docs/*.md) in the build's language, block by block."""
    if page.file.generated_by or page.file.abs_src_path is None:
        return markdown
    if not Path(page.file.abs_src_path).is_relative_to(Path(config.docs_dir)):
        return markdown
    return _lang.doc(markdown, page.meta, Path(page.file.src_uri).with_suffix("").as_posix())


def on_page_content(html: str, page: MkDocsPage, config: MkDocsConfig, files: Files) -> str:
    """Math typeset at build time (`site_render.math`); notebook views: see `mkdocs_glue.notebook_view_html`."""
    source = next((p for _, ps in _site for p in ps if p.notebook_uri == page.file.src_uri), None)
    if source is None:
        return math.arithmatex(html)
    page.title = _lang.ui("{title} (notebook)", title=source.title)
    page.meta["description"] = source.description
    page.meta["search"] = {"exclude": True}  # the side-by-side page holds the same prose; one search hit is enough
    mkdocs_glue.typeset_toc(page.toc)
    return mkdocs_glue.notebook_view_html(html, source, page.file.url, files, _lang)
