"""The built site: `mkdocs build --strict`, every page in both views with its notebook, nothing fetched from another
host, and a real browser (Debian's chromium through Playwright) looking at it at desktop and phone widths."""

import ast
import json
import re
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin, urlparse

import nbformat
import pytest

from conftest import ARTIFACTS, PAGES, ROOT, SERVED, pages
from site_render import mkdocs_glue


# The strict build passes (broken links and anchors are errors) and every page has its three outputs.
def test_build_has_every_page_in_both_views(built_site):
    site, seconds = built_site
    for page in PAGES:
        side = site / page.chapter / page.name / "index.html"
        notebook = site / "labml_style_src" / page.chapter / page.name / "index.html"
        download = site / "labml_style_src" / page.chapter / f"{page.name}.ipynb"
        assert side.exists() and notebook.exists() and download.exists(), page.uri
        assert 'class="lb-row"' in side.read_text() and "jp-Notebook" in notebook.read_text()
        nbformat.validate(nbformat.reads(download.read_text(), as_version=4))
        assert f"<title>{page.title}" in side.read_text().replace("&amp;", "&")
    print(f"mkdocs build --strict: {seconds:.1f} s")


DATA_PAGE = next(p for p in PAGES if (p.chapter, p.name) == ("training", "data"))


def _prints_or_plots(code: str) -> bool:
    """A cell whose `if __name__ == "__main__":` block calls print, plt.show or display."""
    tree = ast.parse(code)
    mains = [n for n in tree.body if isinstance(n, ast.If) and "__name__" in ast.unparse(n.test)]
    calls = [c for m in mains for c in ast.walk(m) if isinstance(c, ast.Call)]
    return any(ast.unparse(c.func) in ("print", "plt.show", "display") for c in calls)


# Every page shows what its code computes: an output area on the side-by-side page, outputs in the notebook view,
# outputs kept in the download for every cell that prints or plots; figures are files, never base64 in a page;
# nothing shows a path of the machine that built the site.
def test_every_page_shows_its_outputs(built_site):
    site, _ = built_site
    machine = [str(ROOT), tempfile.gettempdir() + "/", str(Path.home()) + "/"]
    for page in PAGES:
        side = (site / page.chapter / page.name / "index.html").read_text()
        view = (site / "labml_style_src" / page.chapter / page.name / "index.html").read_text()
        download = nbformat.reads((site / "labml_style_src" / page.chapter / f"{page.name}.ipynb").read_text(),
                                  as_version=4)
        assert 'class="lb-output"' in side, f"{page.uri}: no output on the side-by-side page"
        assert "jp-OutputArea-output" in view, f"{page.notebook_uri}: no output in the notebook view"
        assert not re.search(r'<img[^>]*src="data:', side + view), f"{page.uri}: a figure inline as base64"
        assert "<p></div>" not in side and "<p><div" not in side, f"{page.uri}: raw HTML split by Markdown"
        silent = [c.source[:120] for c in download.cells
                  if c.cell_type == "code" and _prints_or_plots(c.source) and not c.outputs]
        assert not silent, f"{page.name}.ipynb: cells that print or plot have no output: {silent}"
        text = side + view + json.dumps(download)
        assert not [m for m in machine if m in text], f"{page.uri} shows a path of the building machine"


# The data page's grid of images: an <img> in both views whose file is a real picture, not a blank.
def test_data_page_shows_an_image_grid(built_site):
    from PIL import Image

    site, _ = built_site
    side = site / DATA_PAGE.chapter / DATA_PAGE.name
    for folder in (side, site / "labml_style_src" / DATA_PAGE.chapter / DATA_PAGE.name):
        html = (folder / "index.html").read_text()
        figures = [dict(re.findall(r'(\w+)="([^"]*)"', tag)) for tag in re.findall(r"<img [^>]+>", html)]
        figures = [f for f in figures if f.get("class") == "lb-out-figure"]
        assert figures, f"{folder}: no figure"
        assert all(f["alt"] and f["loading"] == "lazy" for f in figures), figures
        path = (folder / figures[0]["src"]).resolve()
        assert path.stat().st_size > 10_000, path
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.width >= 400 and image.height >= 150, image.size
            assert len(image.convert("L").getcolors(maxcolors=1 << 16)) > 16  # many shades: a picture, not a blank


# Nothing in the site points the browser at another host: no CDN script, stylesheet, font or image.
def test_no_resource_from_another_host(built_site):
    site, _ = built_site
    remote = re.compile(r"""<(?:script|img|iframe|source)[^>]*\bsrc=["']?(?:https?:)?//"""
                        r"""|<link[^>]*\bhref=["']?(?:https?:)?//|url\(["']?(?:https?:)?//""")
    offenders = []
    for path in site.rglob("*"):
        if path.suffix in {".html", ".css", ".js"}:
            text = path.read_text(errors="ignore")
            if path.suffix == ".html":
                text = re.sub(r'<link rel="canonical"[^>]*>', "", text)  # a URL, not a request
            offenders += [f"{path.relative_to(site)}: {m.group(0)}" for m in remote.finditer(text)]
    assert not offenders, "\n".join(offenders[:20])


# Every page's own bytes (its HTML, the stylesheets and scripts it links, the images it loads before scrolling)
# within the 600 KB budget; the browser test below weighs a cold load of the heaviest page of each kind for real
# (fonts, the search worker and everything else the browser fetches included).
BUDGET = 600_000


def static_weight(html_path: Path) -> int:
    text = html_path.read_text()
    total = len(text.encode())
    refs = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', text)
    refs += re.findall(r'<img(?![^>]*loading="lazy")[^>]*\bsrc="(?!data:)([^"]+)"', text)
    for ref in refs:
        asset = (html_path.parent / ref.split("#")[0]).resolve()
        if asset.is_file():
            total += asset.stat().st_size
    return total


def test_page_weight(built_site):
    site, _ = built_site
    weights = {str(p.parent.relative_to(site)): static_weight(p) for p in site.rglob("index.html")}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "page_weight_static.txt").write_text(
        "".join(f"{w / 1e3:7.1f} KB  {name}\n" for name, w in sorted(weights.items(), key=lambda kv: -kv[1])))
    over = {name: w for name, w in weights.items() if w > BUDGET}
    assert not over, over


# The notebook view is served at another URL than the side-by-side page its links were written for: each relative
# link is re-aimed at the same file from the view's URL (computed from the files' URLs, never a fixed "../../../").
def test_notebook_view_links_are_re_aimed_from_its_url(tmp_path):
    from mkdocs.structure.files import File, Files

    page = pages.Page("ch", "p", tmp_path / "p.py", "P", "d")
    files = Files([File(uri, str(tmp_path), str(tmp_path / "site"), True)
                   for uri in ("ch/p.md", "tests/test_x.md", "ch/p/fig.png", "labml_style_src/ch/p.ipynb",
                               "labml_style_src/ch/p/index.ipynb")])
    html = ('<a href="../tests/test_x.md#test_a">t</a><img src="p/fig.png"/>'
            '<a href="https://example.org/">e</a><a href="#local">l</a><img src="data:image/png;base64,AA"/>')
    out = mkdocs_glue.notebook_view_html(html, page, "labml_style_src/ch/p/", files)
    assert '<a href="../../../tests/test_x/#test_a">' in out and '<img src="../../../ch/p/fig.png"/>' in out
    assert 'href="https://example.org/"' in out and 'href="#local"' in out and 'src="data:image/png;base64,AA"' in out
    assert '<a class="lb-view" href="../../../ch/p/">Side-by-side view</a>' in out
    assert 'href="../p.ipynb" download="p.ipynb"' in out
    # The side-by-side page links to its other views with Markdown links between source files (MkDocs checks them).
    page.path.write_text("# %% [markdown]\n# # P\n#\n# d\n\n# %%\nx = 1\n")
    bar = mkdocs_glue.page_markdown(page)
    assert "[Notebook view](../labml_style_src/ch/p/index.ipynb)" in bar
    assert "[Download .ipynb](../labml_style_src/ch/p.ipynb)" in bar


# --- the real browser --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(language_sites):
    """The English site where it is deployed, at /en/ beside /ja/ and /zh/ (each page's language selector reads
    the three sitemaps)."""
    _, origin = language_sites
    return f"{origin}/en"


class Visit:
    """A page opened in a fresh context, recording console errors and every request."""

    def __init__(self, browser, url, width, height, scheme="light"):
        self.errors, self.requests = [], []
        self.context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True,
                                           color_scheme=scheme)
        # As if offline: anything not served by the local server fails (the site must not need it).
        self.context.route(re.compile(r"^(?!http://127\.0\.0\.1[:/]|data:|blob:).*"), lambda r: r.abort())
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url, wait_until="networkidle")

    def close(self, origin):
        self.context.close()
        assert not self.errors, self.errors
        host = re.match(r"https?://[^/]+/", origin + "/")[0]  # the server, whatever folder the page is in
        foreign = [u for u in self.requests if not u.startswith(host) and not u.startswith("data:")]
        assert not foreign, foreign


def boxes(page, row_selector):
    return page.eval_on_selector(row_selector, """row => {
        const n = row.querySelector('.lb-note').getBoundingClientRect();
        const c = row.querySelector('.lb-code').getBoundingClientRect();
        return {note: [n.left, n.top, n.width], code: [c.left, c.top, c.width]};
    }""")


RAW_MATH = """() => {
    const walker = document.createTreeWalker(document.querySelector('.md-content'), NodeFilter.SHOW_TEXT);
    const raw = [];
    while (walker.nextNode()) {
        const node = walker.currentNode;
        if (node.parentElement.closest('.katex, code, pre, script, .clipboard-copy-txt')) continue;
        if (/\\$\\$|\\\\\\(|\\\\\\[|(^|[^\\w])\\$[^$\\s][^$]*\\$/.test(node.textContent))
            raw.push(node.textContent.trim().slice(0, 80));
    }
    return raw;
}"""

FIRST_PAGE = PAGES[0]


@pytest.mark.browser
def test_side_by_side_page_in_a_browser(browser, server):
    url = f"{server}/{FIRST_PAGE.chapter}/{FIRST_PAGE.name}/"
    ARTIFACTS.mkdir(exist_ok=True)

    desktop = Visit(browser, url, 1440, 900)
    page = desktop.page
    page.wait_for_selector(".katex")
    row = ".lb-row:has(.lb-code):has(.lb-note p)"
    b = boxes(page, row)
    assert b["note"][0] + b["note"][2] <= b["code"][0] + 1, b  # note left of code
    assert abs(b["note"][1] - b["code"][1]) < 2, b  # on the same line
    assert b["note"][2] + b["code"][2] > 900, b  # the two columns use the full width (no right-hand TOC)
    assert page.locator(".katex .katex-mathml math").count() > 0  # MathML kept
    assert page.locator(".katex-html .mord").count() > 0  # typeset at build time: no KaTeX script on the page
    assert not page.evaluate("'katex' in window")
    assert page.evaluate(RAW_MATH) == []
    assert page.locator(".katex-error").count() == 0
    # One copy button per code cell; it copies the cell's source text exactly.
    source = FIRST_PAGE.path.read_text()
    copies = page.locator(".lb-copy").evaluate_all("els => els.map(e => e.dataset.clipboardText)")
    assert len(copies) == source.count("\n# %%\n") + (1 if source.startswith("# %%\n") else 0)
    assert all(c.strip() in source for c in copies)
    assert page.locator("pre .md-clipboard:not(.lb-copy)").count() == 0  # no per-fragment buttons
    # Line numbers are those of the source file.
    first_ln = int(page.locator(".lb-line").first.get_attribute("data-ln"))
    assert source.splitlines()[first_ln - 1] == page.locator(".lb-line").first.inner_text()
    # The notebook download is a valid notebook.
    href = page.locator("a.lb-view[download]").get_attribute("href")
    response = page.request.get(urljoin(page.url, href))
    nbformat.validate(nbformat.reads(response.text(), as_version=4))
    # Search, dark mode toggle, previous/next footer.
    assert page.locator("[data-md-component=search]").count() == 1
    assert page.locator("[data-md-color-scheme]").count() >= 1
    assert page.locator("label.md-header__button[for^=__palette]").count() >= 1
    assert page.locator(".md-footer__link").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "side_by_side_1440.png"), full_page=False)
    # Keyboard focus is visible: what Tab reaches gets an outline.
    for _ in range(3):
        page.keyboard.press("Tab")
    outline = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return [document.activeElement.tagName, s.outlineStyle, parseFloat(s.outlineWidth)]; }""")
    assert outline[1] != "none" and outline[2] > 0, outline
    desktop.close(server)

    phone = Visit(browser, url, 390, 844)
    page = phone.page
    page.wait_for_selector(".katex")
    b = boxes(page, row)
    assert abs(b["note"][0] - b["code"][0]) < 2 and b["code"][1] > b["note"][1], b  # stacked: note above code
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")  # no sideways scroll
    page.screenshot(path=str(ARTIFACTS / "side_by_side_390.png"), full_page=False)
    phone.close(server)


@pytest.mark.browser
def test_notebook_view_in_a_browser(browser, server):
    url = f"{server}/labml_style_src/{FIRST_PAGE.chapter}/{FIRST_PAGE.name}/"
    visit = Visit(browser, url, 1440, 900)
    page = visit.page
    page.wait_for_selector(".jupyter-wrapper .katex")
    assert page.evaluate(RAW_MATH) == []
    assert page.locator(".jp-CodeCell").count() >= 3
    page.screenshot(path=str(ARTIFACTS / "notebook_view_1440.png"))
    side = page.locator("a.lb-view", has_text="Side-by-side").get_attribute("href")
    page.goto(urljoin(page.url, side), wait_until="networkidle")
    assert page.locator(".lb-row").count() > 3
    visit.close(server)


def kinds(site: Path) -> dict[str, str]:
    """One page of every kind: home, and the heaviest side-by-side page, notebook view and test page."""
    def heaviest(paths) -> str:
        return "/" + str(max(paths, key=lambda p: p.stat().st_size).parent.relative_to(site)) + "/"
    return {"home": "/",
            "side-by-side": heaviest(site / p.chapter / p.name / "index.html" for p in PAGES),
            "notebook view": heaviest((site / "labml_style_src").rglob("index.html")),
            "test page": heaviest((site / "tests").rglob("index.html"))}


# A reader's cold load (empty cache, no interaction) of each kind of page stays within the budget: every byte the
# local server sent for it, headers, fonts, images and the search worker included, and no search index.
@pytest.mark.browser
def test_cold_load_weight(browser, server, built_site):
    site, _ = built_site
    report, over = [], {}
    weighed = kinds(site)
    # the page with the most formulas, in both views: its KaTeX is what could push it over
    for kind, path in {"math-heaviest": "/resnet_v2/propagation/",
                       "math-heaviest notebook": "/labml_style_src/resnet_v2/propagation/"}.items():
        if path not in weighed.values():
            weighed[kind] = path
    for kind, path in weighed.items():
        for scheme in ("light", "dark"):
            before = len(SERVED)
            visit = Visit(browser, server + path, 1440, 900, scheme)
            visit.page.evaluate("document.fonts.ready.then(() => document.fonts.size)")
            quiet_since, count = time.monotonic(), len(SERVED)
            while time.monotonic() - quiet_since < 1.0:  # until the server has had nothing to send for 1 s
                visit.page.wait_for_timeout(100)
                if len(SERVED) != count:
                    quiet_since, count = time.monotonic(), len(SERVED)
            visit.close(server)
            served = SERVED[before:]
            total = sum(size for _, size in served)
            report.append(f"{total / 1e3:7.1f} KB  {kind:13} {scheme:5} {path}  ({len(served)} requests)")
            assert not any("search_index" in p for p, _ in served), f"{path}: search index fetched on load"
            if total > BUDGET:
                over[f"{kind} {scheme}"] = [f"{size:8d} {p}" for p, size in sorted(served, key=lambda x: -x[1])]
        report += [f"{size:10d} {p}" for p, size in sorted(served, key=lambda x: -x[1])]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "page_weight.txt").write_text("\n".join(report) + "\n")
    print("\n".join(report))
    assert not over, over


AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
AXE_RUN = """async () => {
    const result = await axe.run(document, {resultTypes: ["violations"]});
    return result.violations.filter(v => v.impact === "critical" || v.impact === "serious")
        .map(v => `${v.id} (${v.impact}, ${v.nodes.length}): ${v.nodes.slice(0, 3).map(n => n.target).join(" | ")}`);
}"""


def axe_violations(page, scheme: str) -> list[str]:
    """axe-core's critical and serious violations on the open page, once Material shows the expected scheme."""
    expected = "slate" if scheme == "dark" else "default"  # Material follows the reader's system setting
    page.wait_for_function(f"document.body.dataset.mdColorScheme === '{expected}'", timeout=15000)
    page.add_script_tag(path=str(AXE))
    return page.evaluate(AXE_RUN)


# axe-core (the standard accessibility engine, vendored) on one page of every kind, at desktop and phone width,
# in light and dark mode: no critical or serious violation (contrast, names, focusable scroll areas, ...).
@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1440, 390])
def test_accessibility(browser, server, built_site, width, scheme):
    site, _ = built_site
    found = {}
    for kind, path in kinds(site).items():
        visit = Visit(browser, server + path, width, 900 if width > 1000 else 844, scheme)
        page = visit.page
        violations = axe_violations(page, scheme)
        if violations:
            found[kind] = violations
        # Every image has a text alternative (axe checks <img>; SVG images too).
        assert page.locator("img:not([alt])").count() == 0, kind
        if kind != "home":
            page.screenshot(path=str(ARTIFACTS / f"{kind.replace(' ', '_')}_{width}_{scheme}.png"))
        visit.close(server)
    assert not found, found


# Print: one column (note above its code), no navigation, outputs kept; the PDF Chromium prints is real.
@pytest.mark.browser
def test_print(browser, server):
    url = f"{server}/{FIRST_PAGE.chapter}/{FIRST_PAGE.name}/"
    visit = Visit(browser, url, 1440, 900)
    page = visit.page
    page.emulate_media(media="print")
    hidden = page.evaluate("""() => ['.md-header', '.md-sidebar--primary', '.md-footer', '.md-search',
        '.lb-views', '.lb-copy'].map(s => [s, [...document.querySelectorAll(s)]
        .every(e => getComputedStyle(e).display === 'none')])""")
    assert all(ok for _, ok in hidden), hidden
    b = boxes(page, ".lb-row:has(.lb-code):has(.lb-note p)")
    assert abs(b["note"][0] - b["code"][0]) < 2 and b["code"][1] > b["note"][1], b  # one column
    assert page.evaluate("[...document.querySelectorAll('.lb-output, .lb-code pre')]"
                         ".every(e => getComputedStyle(e).display !== 'none')")
    pdf = page.pdf(format="A4", print_background=True)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "side_by_side_print.pdf").write_bytes(pdf)
    pages_printed = len(re.findall(rb"/Type\s*/Page(?!s)", pdf))
    assert pdf.startswith(b"%PDF") and pages_printed >= 2, pages_printed
    visit.close(server)


@pytest.mark.browser
def test_search_finds_a_page(browser, server):
    visit = Visit(browser, f"{server}/", 1440, 900)
    page = visit.page
    assert not any("search_index" in u for u in visit.requests)  # fetched on first use, not on load
    page.locator("input.md-search__input").click()
    page.keyboard.type("bottleneck", delay=20)  # typed, as a reader does (Material listens to key events)
    page.wait_for_selector(".md-search-result__item", timeout=15000)
    assert page.locator(".md-search-result__item").count() >= 1
    visit.close(server)


OUTPUTS = """() => [...document.querySelectorAll('.lb-output')].map(out => {
    const code = out.parentElement.querySelector('pre > code');
    const o = out.getBoundingClientRect();
    const c = code ? code.getBoundingClientRect() : o;
    return {below: o.top >= c.bottom - 1, aligned: Math.abs(o.left - c.left) < 2,
            visible: o.height > 0 && o.width > 0 && getComputedStyle(out).visibility === 'visible',
            inside: o.right <= document.documentElement.clientWidth + 1};
})"""


# Outputs in a real browser, at desktop and phone widths: each output area sits right below its code, in the
# code column; every figure loads (they are lazy: scrolled to first); nothing leaves 127.0.0.1.
@pytest.mark.browser
@pytest.mark.parametrize("width", [1440, 390])
def test_outputs_in_a_browser(browser, server, width):
    visit = Visit(browser, f"{server}/{DATA_PAGE.chapter}/{DATA_PAGE.name}/", width, 900)
    page = visit.page
    boxes_ = page.evaluate(OUTPUTS)
    assert boxes_ and all(b["below"] and b["aligned"] and b["visible"] and b["inside"] for b in boxes_), boxes_
    figures = page.locator(".lb-output img")
    assert figures.count() >= 1
    for i in range(figures.count()):
        figures.nth(i).scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('.lb-output img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)", timeout=15000)
    figures.first.screenshot(path=str(ARTIFACTS / f"output_figure_{width}.png"))
    page.locator(".lb-output").first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"outputs_{width}.png"))
    visit.page.goto(f"{server}/labml_style_src/{DATA_PAGE.chapter}/{DATA_PAGE.name}/", wait_until="networkidle")
    page.wait_for_selector(".jp-OutputArea-output img", state="attached")  # the notebook view shows it too
    page.locator(".jp-OutputArea-output img").first.scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('.jp-OutputArea-output img')]"
                           ".filter(i => i.getBoundingClientRect().top < innerHeight).every(i => i.naturalWidth > 0)")
    visit.close(server)


FIT = """(limit) => {
    const bad = [];
    for (const code of document.querySelectorAll('.lb-code pre > code')) {
        const style = getComputedStyle(code);
        const right = code.getBoundingClientRect().right - parseFloat(style.paddingRight);
        for (const line of code.querySelectorAll('.lb-line')) {
            if (line.textContent.length > limit) continue;
            const range = document.createRange();
            range.selectNodeContents(line);
            if (range.getBoundingClientRect().right > right + 0.5) bad.push('clipped: ' + line.textContent);
        }
        if (code.scrollWidth > code.clientWidth + 1 && !['auto', 'scroll'].includes(style.overflowX))
            bad.push('cannot scroll: ' + code.textContent.slice(0, 60));
    }
    return bad;
}"""


# At 1440 px every code line of up to 88 characters (the pages' limit) is fully visible in the code column, and a
# block with longer lines scrolls sideways instead of clipping them.
@pytest.mark.browser
def test_code_column_shows_88_characters_at_1440(browser, server):
    visit = Visit(browser, f"{server}/", 1440, 900)
    for page in PAGES:
        visit.page.goto(f"{server}/{page.chapter}/{page.name}/", wait_until="load")
        assert visit.page.evaluate(FIT, 88) == [], page.uri
    visit.close(server)


# Every diagram (an SVG cell output drawn by labml_style_src/diagrams.py) is shown on its page in a real browser:
# loaded, with the alt text taken from the SVG's own description, and the file carries <title> and <desc>.
DIAGRAM_PAGES = [p for p in PAGES if "from labml_style_src.diagrams import" in p.path.read_text(encoding="utf-8")]
SVG_IMAGES = ".lb-output img[src$='.svg']"


@pytest.mark.browser
@pytest.mark.parametrize("page_", DIAGRAM_PAGES, ids=[f"{p.chapter}.{p.name}" for p in DIAGRAM_PAGES])
def test_diagrams_in_a_browser(browser, server, built_site, page_):
    import xml.etree.ElementTree as ET

    site, _ = built_site
    visit = Visit(browser, f"{server}/{page_.chapter}/{page_.name}/", 1440, 900)
    images = visit.page.locator(SVG_IMAGES)
    assert images.count() >= 1, f"{page_.name}: no diagram on the page"
    for i in range(images.count()):
        images.nth(i).scroll_into_view_if_needed()
        src = Path(urlparse(images.nth(i).get_attribute("src")).path).name  # the file, beside the page
        root = ET.parse(site / page_.chapter / page_.name / src).getroot()
        tags = {child.tag.split("}")[-1] for child in root}
        assert {"title", "desc"} <= tags, f"{src}: no <title>/<desc> for screen readers"
    visit.page.wait_for_function(
        f"() => [...document.querySelectorAll(\"{SVG_IMAGES}\")].every(i => i.complete && i.naturalWidth > 0 "
        "&& i.alt.length > 0 && !i.alt.startsWith('Figure drawn by'))", timeout=15000)
    visit.close(server)
