"""The site in Japanese and Chinese: translations complete and current, faithful to the glossary and to the English
block's math, code, numbers, links and quotes; staleness detected; the ja and zh builds strict, with the same code
as English; and a real browser on them (fonts, language switcher, search)."""

import json
import re
import shutil

import nbformat
import pytest
from test_site import Visit, axe_violations

from conftest import ARTIFACTS, ROOT
from site_render import languages
from site_render.languages import Language, key, problems
from site_render.source import render

TRANSLATED = ["ja", "zh"]
PAGE = ROOT / "labml_style_src" / "resnet_v1" / "residual_block.py"
PAGE_FILE = "resnet_v1/residual_block.yml"


# No translation is ever out of date: a stale block (its English changed) or an unused entry fails anywhere, so an
# English edit and its translations land together. A missing block fails in every file declared finished
# (translations/finished.yml); the other files are still being translated and show English under the pending
# note. `python scripts/translations.py check` lists every block still to do.
@pytest.mark.parametrize("code", TRANSLATED)
def test_every_block_is_current_and_finished_files_complete(code):
    done = [f"translations/{code}/{rel}" for rel in languages.finished(code)]
    found = [p for p in problems(code) if p.kind != "missing" or p.file in done]
    assert not found, (f"{len(found)} block(s) to translate or update (README, Translations):\n"
                       + "\n".join(map(str, found)))


# The finished list names real files, the interface and the home page among them.
@pytest.mark.parametrize("code", TRANSLATED)
def test_finished_files_exist(code):
    done = languages.finished(code)
    assert {"site.yml", "docs/index.yml", PAGE_FILE} <= set(done)
    assert all((languages.TRANSLATIONS / code / rel).exists() for rel in done)


# Every current translation keeps the English block's math, code, numbers, link targets and quote lines, uses the
# glossary's term wherever the English uses the term, and never a rejected variant.
@pytest.mark.parametrize("code", TRANSLATED)
def test_translations_keep_math_code_numbers_links_quotes_and_glossary(code):
    assert languages.quality(code) == []


# The checks above can fail: each rule catches a bad translation.
def test_quality_rules_catch_bad_translations():
    glossary = languages.load_glossary()
    english = ('> "We adopt BN." — He et al. 2015, §3.4\n\nThe residual $F(x)$ of `block` has 64 channels, '
               'see [here](a.md).')
    good = ('> "We adopt BN." — He et al. 2015, §3.4\n\n> 訳：BN を用いる。\n\n`block` の残差 $F(x)$ は 64 '
            'チャネルです（[こちら](a.md)）。')
    assert languages.block_problems(english, good, "ja", glossary) == []
    bad = {
        "math": good.replace("$F(x)$", "F(x)"),
        "code": good.replace("`block`", "block"),
        "numbers": good.replace("64", "32"),
        "links": good.replace("(a.md)", "(b.md)"),
        "quote line": good.replace('"We adopt BN."', '"We use BN."'),
        "use the glossary": good.replace("残差", "差分"),
        "rejected variant": good.replace("残差", "残差（残留）"),
    }
    for rule, text in bad.items():
        assert any(rule in p for p in languages.block_problems(english, text, "ja", glossary)), rule
    # the check looks at the words, not at code or link targets: `residual_add` asks for no 残差
    assert languages.block_problems("Call `residual_add`.", "`residual_add` を呼ぶ。", "ja", glossary) == []
    # a span wrapped over one line break (Markdown allows it) is the same span on one line; a blank line ends it
    wrapped = "In `conv2_x …\nconv5_x` the sum is $1 +\n2$."
    assert languages.block_problems(wrapped, "`conv2_x … conv5_x` では和は $1 + 2$ です。", "ja", glossary) == []
    assert languages.invariants("`a\n\nb` c")["code"] == set()


def test_glossary_has_the_required_terms():
    terms = {t["en"]: t for t in languages.load_glossary()}
    assert terms["residual"]["ja"] == terms["residual"]["zh"] == "残差"
    assert {"残留", "残余"} <= set(terms["residual"]["reject"]["ja"])
    assert terms["identity mapping (the full term)"]["ja"] == "恒等写像"
    assert terms["identity mapping (the full term)"]["zh"] == "恒等映射"
    assert "身份映射" in terms["identity mapping"]["reject"]["zh"]
    for term in ["shortcut", "bottleneck", "feature map", "pre-activation", "cardinality", "batch normalization",
                 "stride", "downsampling", "projection", "plain network", "degradation"]:
        assert terms[term]["ja"] and terms[term]["zh"], term


# Staleness, proven on a temporary copy of a translated page: edit one English sentence and the block is reported
# stale, the page shows the English under the pending note (never the outdated translation), and `sync` keeps the
# outdated pair as a hint.
def test_an_english_edit_makes_its_translation_stale(tmp_path):
    page = tmp_path / "src" / "resnet_v1" / "residual_block.py"
    page.parent.mkdir(parents=True)
    shutil.copy(PAGE, page)
    root = tmp_path / "translations"
    shutil.copy(languages.TRANSLATIONS / "ja" / "site.yml", (root / "ja").mkdir(parents=True) or root / "ja")
    (root / "ja" / "resnet_v1").mkdir()
    shutil.copy(languages.TRANSLATIONS / "ja" / PAGE_FILE, root / "ja" / PAGE_FILE)
    files = {PAGE_FILE: lambda: languages.page_units(page)}
    assert problems("ja", root, files) == []

    old = "This page builds the *basic block* of ResNet-18/34"
    new = "This page builds the *basic block* of ResNet-18 and ResNet-34"
    page.write_text(page.read_text().replace(old, new))
    found = problems("ja", root, files)
    assert [p.kind for p in found] == ["stale"] and new in found[0].english
    assert found[0].file == f"translations/ja/{PAGE_FILE}"

    lang = Language("ja", root)
    catalog = lang.catalog(PAGE_FILE)
    notes = render(page, translate=lambda t: lang.text(t, catalog), ui=lang.ui)
    outdated = next(e["text"] for e in languages.load(root / "ja" / PAGE_FILE) if e["en"].startswith(old))
    assert outdated not in notes and new in notes
    assert notes.count('class="lb-pending"') == 1 and lang.ui(languages.PENDING) in notes
    assert "残差学習と基本ブロック" in notes  # the other blocks stay translated

    synced = languages.synced(files[PAGE_FILE](), languages.load(root / "ja" / PAGE_FILE))
    fresh = next(e for e in synced if e["hash"] == key(next(u for u in files[PAGE_FILE]() if new in u)))
    assert fresh["text"] == "" and fresh["previous"]["text"] == outdated


# A page split in two keeps its translations: `sync` finds a block that moved to the new page by its hash in
# every file of the language (its translation memory), and drops it from the page it left.
def test_sync_carries_a_moved_block_to_its_new_page(tmp_path):
    entries = languages.load(languages.TRANSLATIONS / "ja" / PAGE_FILE)
    moved = next(e for e in entries if e["text"].strip() and e["en"].startswith("##"))
    shutil.copytree(languages.TRANSLATIONS / "ja", tmp_path / "ja")
    known = languages.memory("ja", tmp_path)
    assert known[moved["hash"]] == moved["text"]
    rest = [e["en"] for e in entries if e is not moved]
    assert all(e["hash"] != moved["hash"] for e in languages.synced(rest, entries, known))
    new_page = languages.synced(["A block never translated.", moved["en"]], [], known)
    assert [e["text"] for e in new_page] == ["", moved["text"]]
    assert languages.synced([moved["en"]], [])[0]["text"] == ""  # without the memory it would be lost


def test_blocks_keep_fenced_code_whole():
    text = "Para one\nstill one.\n\n```python\nx = 1\n\ny = 2\n```\n\n## Heading"
    assert languages.blocks(text) == [("Para one\nstill one.", True), ("```python\nx = 1\n\ny = 2\n```", False),
                                      ("## Heading", True)]


# The downloadable notebook in Japanese: markdown translated, code cells identical to the English notebook's.
def test_notebook_code_is_the_same_in_every_language():
    from site_render.notebook import notebook

    en, ja = notebook(PAGE), notebook(PAGE, lang=Language("ja"))
    code = [[c.source for c in nb.cells if c.cell_type == "code"] for nb in (en, ja)]
    assert code[0] == code[1]
    markdown = "\n".join(c.source for c in ja.cells if c.cell_type == "markdown")
    assert "残差学習と基本ブロック" in markdown and "Residual learning and the basic block" not in markdown


# Adding languages executes nothing again: the execution cache is keyed by the code cells, and the Japanese and
# Chinese notebooks have the English code cells, so their key is the English key.
def test_languages_share_the_execution_cache(tmp_path):
    from site_render.execute import cache_key
    from site_render.notebook import notebook

    keys = {code: cache_key(notebook(PAGE, lang=Language(code)), tmp_path) for code in ["en", *TRANSLATED]}
    assert len(set(keys.values())) == 1, keys
    assert notebook(PAGE, lang=Language("ja")).cells[0].source != notebook(PAGE).cells[0].source


# --- the ja and zh builds ---------------------------------------------------------------------------------------

def _code_lines(html_text: str) -> list[str]:
    return re.findall(r'<span class="lb-line"[^>]*>(.*?)</span>\n?(?=<span class="lb-line"|\n</code>)', html_text,
                      re.S)


@pytest.mark.parametrize("code", TRANSLATED)
def test_language_build_has_every_page_and_the_same_code(language_sites, code):
    from conftest import PAGES

    root, _ = language_sites
    site = root / code
    assert f'<html lang="{code}"' in (site / "index.html").read_text()
    for page in PAGES:
        side = (site / page.chapter / page.name / "index.html").read_text()
        english = (root / "en" / page.chapter / page.name / "index.html").read_text()
        assert f'<html lang="{code}"' in side and _code_lines(side) == _code_lines(english), page.uri
        assert (site / "labml_style_src" / page.chapter / page.name / "index.html").exists()
        download = nbformat.reads((site / "labml_style_src" / page.chapter / f"{page.name}.ipynb").read_text(), 4)
        english_nb = nbformat.reads(
            (root / "en" / "labml_style_src" / page.chapter / f"{page.name}.ipynb").read_text(), 4)
        assert ([c.source for c in download.cells if c.cell_type == "code"]
                == [c.source for c in english_nb.cells if c.cell_type == "code"]), page.uri
    translated = (site / "resnet_v1" / "residual_block" / "index.html").read_text()
    assert 'class="lb-pending"' not in translated and "残差" in translated
    pending = (site / "resnet_v1" / "bottleneck" / "index.html").read_text()
    if problems(code, files={"resnet_v1/bottleneck.yml":
                             languages.translation_files()["resnet_v1/bottleneck.yml"]}):
        assert 'class="lb-pending" lang="en"' in pending
    index = json.loads((site / "search" / "search_index.json").read_text())
    assert index["config"]["lang"] == [code]
    assert any(d["location"].startswith("resnet_v1/residual_block/") and "残差" in d["text"] for d in index["docs"])


# --- the real browser ---------------------------------------------------------------------------------------------

GLYPHS = """async (selector) => {
    const text = document.querySelector(selector).textContent;
    return [...text].filter(c => /[\\u3040-\\u30ff\\u3400-\\u9fff\\uff00-\\uffef]/.test(c)).length;
}"""


def platform_fonts(page, selector):
    """The fonts Chromium really used for an element's text (DevTools CSS.getPlatformFontsForNode)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    node = cdp.send("DOM.querySelector", {"nodeId": cdp.send("DOM.getDocument")["root"]["nodeId"],
                                          "selector": selector})["nodeId"]
    return cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]


@pytest.mark.browser
@pytest.mark.parametrize("code", TRANSLATED)
def test_translated_page_in_a_browser(browser, language_sites, code):
    _, origin = language_sites
    url = f"{origin}/{code}/resnet_v1/residual_block/"
    for width, height in ((1440, 900), (390, 844)):
        visit = Visit(browser, url, width, height)
        page = visit.page
        page.wait_for_selector(".katex")
        assert page.evaluate("document.documentElement.lang") == code
        # Every CJK character of the title is drawn by a CJK system font (Noto CJK): no missing-glyph boxes.
        fonts = platform_fonts(page, ".lb-note h1")
        cjk = sum(f["glyphCount"] for f in fonts if "CJK" in f["familyName"])
        assert cjk and cjk >= page.evaluate(GLYPHS, ".lb-note h1"), fonts
        assert not any(f["isCustomFont"] for f in fonts)  # system fonts: no web font is downloaded
        page.screenshot(path=str(ARTIFACTS / f"{code}_residual_block_{width}.png"), full_page=False)
        visit.close(origin)


# Material's selector reads the target language's sitemap to find the same page there. The English site of this
# test is the session's build, whose sitemap names port 8000, so the hops go *to* ja and zh (whose builds here name
# this server's port): en → ja, ja → zh, zh → ja.
@pytest.mark.browser
def test_language_switcher_keeps_the_page(browser, language_sites):
    _, origin = language_sites
    visit = Visit(browser, f"{origin}/en/resnet_v1/residual_block/", 1440, 900)
    page = visit.page
    for target in ("ja", "zh", "ja"):
        # The switcher has read the target's sitemap (a click before that goes to the language's home page; "no
        # request for 500 ms" is not enough on a loaded machine, where the fetch can start later than that).
        page.wait_for_function("url => performance.getEntriesByType('resource')"
                               ".some(e => e.name === url && e.responseEnd > 0)", arg=f"{origin}/{target}/sitemap.xml")
        page.locator(f"a.md-select__link[hreflang={target}]").dispatch_event("click")
        page.wait_for_url(f"{origin}/{target}/resnet_v1/residual_block/", timeout=15000)
        page.wait_for_selector(".lb-row")
        assert page.evaluate("document.documentElement.lang") == target
    visit.close(origin)


@pytest.mark.browser
@pytest.mark.parametrize("code", TRANSLATED)
def test_search_in_the_language_finds_the_residual_block(browser, language_sites, code):
    _, origin = language_sites
    visit = Visit(browser, f"{origin}/{code}/", 1440, 900)
    page = visit.page
    page.locator("input.md-search__input").click()
    page.keyboard.type("残差", delay=50)  # CJK characters arrive as text input, with no key events...
    page.keyboard.press("End")  # ...Material searches on a key event (as after an IME's composition)
    page.wait_for_selector(".md-search-result__item", timeout=15000)
    links = page.locator(".md-search-result__item a").evaluate_all("els => els.map(e => e.href)")
    assert any("/resnet_v1/residual_block/" in link for link in links), links
    visit.close(origin)


# axe-core on a translated page (one per language) at desktop and phone width, light and dark: no critical or
# serious violation (the English kinds are checked in test_site.py::test_accessibility).
@pytest.mark.browser
@pytest.mark.parametrize("code", TRANSLATED)
def test_translated_page_accessibility(browser, language_sites, code):
    _, origin = language_sites
    found = {}
    for width, height in ((1440, 900), (390, 844)):
        for scheme in ("light", "dark"):
            visit = Visit(browser, f"{origin}/{code}/resnet_v1/residual_block/", width, height, scheme)
            violations = axe_violations(visit.page, scheme)
            if violations:
                found[f"{width} {scheme}"] = violations
            visit.close(origin)
    assert not found, found
