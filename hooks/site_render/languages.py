"""Languages: the site in English, Japanese and Simplified Chinese, with translations that cannot go stale silently.

The unit of translation is a *block*: a paragraph (text between blank lines, outside fenced code) of a markdown
cell, of a side note (the `#` comment block above some code) or of a hand-written page; plus the site's own strings
(navigation, interface). Code is never translated: a fenced code block stays as it is, and code cells are
identical in every language.

Each translation file (`translations/<lang>/<chapter>/<page>.yml`, `translations/<lang>/docs/<page>.yml`,
`translations/<lang>/site.yml`) is a YAML list of entries

    - hash: <first 12 hex digits of sha256 of the English block>
      en: <the English block, for the translator and for review diffs>
      text: <the translation; empty = missing>
      previous: {en: ..., text: ...}   # only after `sync`, when the English changed: the outdated pair, as a hint

A block is shown translated only when an entry with its exact hash has a non-empty `text`; otherwise the English
block is shown under a visible "translation pending" note. `scripts/translations.py check` (and the test suite,
through `problems`) lists every missing or stale block.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Callable

from .source import ROOT, markdown_text, rows, split_cells

TRANSLATIONS = ROOT / "translations"
GLOSSARY = TRANSLATIONS / "glossary.yml"
DOCS = ROOT / "docs"
ENGLISH = "en"
LANGUAGES = {"en": "English", "ja": "日本語", "zh": "简体中文"}  # code → name in that language (the switcher)

# The site's own interface strings. Code asks for them with `Language.ui(...)`; `sync` puts every one of them in
# each language's site.yml. `{…}` fields are filled in after translation.
PENDING = "Translation pending: this part is shown in English until its translation is updated."
NOTEBOOK_NEEDS = ("*This notebook is self-contained: code it takes from other pages of the site is inlined in the "
                  "cells below this one.* It needs Python 3.10+ and {needs}.")
NOTEBOOK_DEVICE = "Set `RESNET_DEVICE=cpu` to force the CPU; by default a CUDA GPU is used when present."
UI = [
    "Notebook view",
    "Download .ipynb",
    "Run it as a program:",
    "Side-by-side view",
    "{title} (notebook)",
    "Copy this cell",
    "Link to this section",
    PENDING,
    "Tests (the proofs)",
    "This page is the test code itself; it is the same in every language.",
    "Run these checks yourself: `make test`, or just this file: `{command}`.",
    NOTEBOOK_NEEDS,
    NOTEBOOK_DEVICE,
    "Output",
    "Output of code cell {n}",
    "Output: {n} lines",
    "Figure drawn by code cell {n}",
]

_FENCE = re.compile(r"^\s*(```|~~~)")


def key(text: str) -> str:
    """The hash that ties a translation to its English block (trailing spaces and outer blank lines ignored)."""
    norm = "\n".join(line.rstrip() for line in text.strip("\n").splitlines())
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()[:12]


def blocks(markdown: str) -> list[tuple[str, bool]]:
    """[(text, translatable)]: paragraphs split at blank lines; a fenced code block is one untranslatable piece."""
    out: list[tuple[str, bool]] = []
    current: list[str] = []
    fence: str | None = None

    def flush(translatable: bool = True):
        if any(line.strip() for line in current):
            out.append(("\n".join(current).strip("\n"), translatable))
        current.clear()

    for line in markdown.splitlines():
        match = _FENCE.match(line)
        if fence is None and match:
            flush()
            fence = match.group(1)
            current.append(line)
        elif fence is not None:
            current.append(line)
            if line.strip().startswith(fence) and len(current) > 1:
                fence = None
                flush(False)
        elif not line.strip():
            flush()
        else:
            current.append(line)
    flush(fence is None)
    return out


def english_blocks(markdown: str) -> list[str]:
    return [text for text, translatable in blocks(markdown) if translatable]


# --------------------------------------------------------------------------------------------------------------
# Translation files
# --------------------------------------------------------------------------------------------------------------

def finished(language: str, root: Path = TRANSLATIONS) -> list[str]:
    """The files of `language` declared translated in full (translations/finished.yml): a missing block in one
    of them fails `make test`; elsewhere it is shown in English under the pending note until the file is done."""
    import yaml

    listed = yaml.safe_load((root / "finished.yml").read_text(encoding="utf-8")) or {}
    return list(listed.get(language) or [])


def load(path: Path) -> list[dict]:
    import yaml

    if not path.exists():
        return []
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "hash" in e for e in entries):
        raise ValueError(f"{path.relative_to(ROOT)}: expected a list of entries with hash, en, text")
    for entry in entries:
        entry["hash"] = str(entry["hash"])
        entry["text"] = entry.get("text") or ""
    return entries


def dump(path: Path, entries: list[dict]) -> None:
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper, value):  # multi-line strings as literal blocks: readable files, readable diffs
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = [{k: e[k] for k in ("hash", "en", "text", "previous") if k in e} for e in entries]
    path.write_text(yaml.dump(ordered, Dumper=Dumper, allow_unicode=True, sort_keys=False, width=1000),
                    encoding="utf-8")


@dataclass
class Catalog:
    """The entries of one translation file, by hash."""
    path: Path
    entries: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> "Catalog":
        return cls(path, {e["hash"]: e for e in load(path)})

    def get(self, english: str) -> str | None:
        """The current translation of an English block, or None (missing, or the English changed)."""
        entry = self.entries.get(key(english))
        return entry["text"] if entry and entry["text"].strip() else None


# --------------------------------------------------------------------------------------------------------------
# What is translated: the English units of each translation file
# --------------------------------------------------------------------------------------------------------------

def page_units(path: Path) -> list[str]:
    """The English blocks of a page, in order: its markdown cells and side notes, as the renderer sees them."""
    found: list[str] = []

    def collect(text: str) -> str:
        found.extend(english_blocks(text))
        return text

    rows(split_cells(path.read_text(encoding="utf-8"), path), path, translate=collect)
    return found


def doc_units(path: Path) -> list[str]:
    """The English blocks of a hand-written page: its front matter description, then its body."""
    meta, body = split_front_matter(path.read_text(encoding="utf-8"))
    return ([meta["description"]] if meta.get("description") else []) + english_blocks(body)


def split_front_matter(text: str) -> tuple[dict, str]:
    import yaml

    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    return (yaml.safe_load(match[1]) or {}, text[match.end():]) if match else ({}, text)


def site_units() -> list[str]:
    """Site name and description, the hand-written navigation, the chapter titles, then the interface strings."""
    from mkdocs.utils.yaml import yaml_load

    from .pages import discover

    config = yaml_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = [next(iter(item)) for item in config.get("nav", []) if isinstance(item, dict)]
    chapters = [title for title, _ in discover()]
    return [config["site_name"], config["site_description"], *nav, *chapters, *UI]


def translation_files() -> dict[str, Callable[[], list[str]]]:
    """{path of a translation file relative to `translations/<lang>/`: its English units}."""
    from .pages import discover

    files: dict[str, Callable[[], list[str]]] = {"site.yml": site_units}
    for doc in sorted(DOCS.glob("*.md")):
        files[f"docs/{doc.stem}.yml"] = lambda doc=doc: doc_units(doc)
    for _, pages in discover():
        for page in pages:
            files[f"{page.chapter}/{page.name}.yml"] = lambda path=page.path: page_units(path)
    return files


# --------------------------------------------------------------------------------------------------------------
# sync and check (scripts/translations.py; the test suite calls `problems`)
# --------------------------------------------------------------------------------------------------------------

def synced(units: list[str], old: list[dict], memory: dict[str, str] | None = None) -> list[dict]:
    """The entries a file should hold for these English units, keeping every current translation. An entry
    whose English changed is kept beside the new one as `previous` (the translator's hint), matched by position.
    `memory` ({hash: text}, from every file of the language) fills a block that moved here from another page,
    or that another page already translated word for word (`## Exercises`)."""
    memory = memory or {}
    by_hash = {e["hash"]: e for e in old}
    unique = list(dict.fromkeys(units))
    hashes = [key(u) for u in unique]
    orphans = [e for e in old if e["hash"] not in set(hashes)]
    out = []
    for text, h in zip(unique, hashes):
        entry = dict(by_hash.get(h) or {"hash": h, "text": ""})
        entry["en"] = text
        if not entry["text"].strip():
            entry["text"] = memory.get(h, "")  # the same English already translated on another page
        if entry["text"].strip():
            entry.pop("previous", None)
        out.append(entry)
    # pair each new block with the outdated entry that stood in its place
    matcher = difflib.SequenceMatcher(a=[e["hash"] for e in old], b=hashes, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "replace":
            for stale, new in zip(old[a0:a1], out[b0:b1]):
                if stale in orphans and stale["text"].strip() and not new["text"].strip():
                    new["previous"] = {"en": stale.get("en", ""), "text": stale["text"]}
    return out


def memory(language: str, root: Path = TRANSLATIONS) -> dict[str, str]:
    """{hash: translation} over every file of a language: what `sync` reuses when a block moves between pages."""
    return {e["hash"]: e["text"] for path in sorted((root / language).rglob("*.yml"))
            for e in load(path) if e.get("text", "").strip()}


@dataclass
class Problem:
    file: str  # relative to the repository
    kind: str  # "missing", "stale" or "unused"
    english: str

    def __str__(self) -> str:
        first = self.english.strip().splitlines()[0] if self.english.strip() else ""
        return f"{self.file}: {self.kind}: {first[:90]}"


def problems(language: str, root: Path = TRANSLATIONS,
             files: dict[str, Callable[[], list[str]]] | None = None) -> list[Problem]:
    """Every block of `language` that the site would show in English: missing (no translation yet), stale (the
    English changed since it was translated) — and every entry no English block uses any more (run `sync`).
    `files` defaults to every translation file of the site (`translation_files`)."""
    out = []
    for rel_path, units in (files or translation_files()).items():
        path = root / language / rel_path
        entries = load(path)
        shown = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path.relative_to(root.parent))
        current = {key(u) for u in units()}
        # The entries `sync` would write: a block whose outdated translation stood in its place is stale (that
        # translation becomes its `previous`), a block with no translation at all is missing.
        fresh = synced(units(), entries)
        for entry in fresh:
            if not entry["text"].strip():
                out.append(Problem(shown, "stale" if entry.get("previous") else "missing", entry["en"]))
        # An outdated translation that no block took over: only `sync` (or deleting it) clears it.
        hints = {e["previous"]["en"] for e in fresh if e.get("previous")}
        orphans = [e for e in entries if e["hash"] not in current and e["text"].strip() and e.get("en") not in hints]
        out += [Problem(shown, "unused", e.get("en", "")) for e in orphans]
    return out


# --------------------------------------------------------------------------------------------------------------
# The build in one language
# --------------------------------------------------------------------------------------------------------------

@dataclass
class Language:
    """What the renderer asks of a language: its interface strings and the translation of a file's blocks.
    English is the identity."""
    code: str = ENGLISH
    root: Path = TRANSLATIONS

    @property
    def english(self) -> bool:
        return self.code == ENGLISH

    @cached_property
    def site(self) -> Catalog:
        return Catalog.read(self.root / self.code / "site.yml")

    def catalog(self, rel_path: str) -> Catalog:
        return Catalog.read(self.root / self.code / rel_path)

    def ui(self, english: str, **fields) -> str:
        """An interface or navigation string in this language (English while its translation is pending)."""
        text = english if self.english else (self.site.get(english) or english)
        return text.format(**fields) if fields else text

    def text(self, english: str, catalog: Catalog, anchors: bool = True) -> str:
        """Markdown translated block by block; a block without a current translation stays English, under a
        visible pending note (`<div class="lb-pending" lang="en">`). Headings keep their English anchors."""
        if self.english:
            return english
        out, pending = [], []

        def flush():
            if pending:
                note = html_escape(self.ui(PENDING))
                # the note is left out of the search index (Material's data-search-exclude)
                out.append(f'<div class="lb-pending" lang="en" markdown>\n<p class="lb-pending-note" '
                           f'lang="{self.code}" data-search-exclude>{note}</p>\n\n' + "\n\n".join(pending)
                           + "\n\n</div>")
                pending.clear()

        for piece, translatable in blocks(english):
            translated = catalog.get(piece) if translatable else None
            if translatable and translated is None:
                pending.append(piece)
            elif not translatable and pending:
                pending.append(piece)  # code between pending paragraphs stays inside the English part
            else:
                flush()
                if translated is not None and anchors:
                    translated = same_anchor(piece, translated)
                out.append(translated if translated is not None else piece)
        flush()
        return "\n\n".join(out)

    def notebook_text(self, english: str, catalog: Catalog) -> str:
        """As `text`, for a notebook's markdown cell: the pending note is an italic line (no HTML)."""
        if self.english:
            return english
        marked = self.text(english, catalog, anchors=False)  # no attr_list in a notebook
        return _NOTE_DIV.sub(lambda m: f"*{m['note']}*\n\n{m['body']}", marked)

    def plain(self, english: str, catalog: Catalog) -> str:
        """Block by block, the translation or else the English, with no note (titles, descriptions)."""
        if self.english:
            return english
        return "\n\n".join((catalog.get(p) or p) if t else p for p, t in blocks(english))

    # --- pages ------------------------------------------------------------------------------------------------

    def page(self, page):
        """A `pages.Page` with its title and description in this language."""
        if self.english:
            return page
        from .source import title_and_description

        catalog = self.catalog(f"{page.chapter}/{page.name}.yml")
        title, description = title_and_description(page.path, lambda t: self.plain(t, catalog))
        return replace(page, title=title, description=description)

    def page_translator(self, page) -> Callable[[str], str]:
        catalog = self.catalog(f"{page.chapter}/{page.name}.yml")
        return lambda text: self.text(text, catalog)

    def source_text(self, path: Path, chapter: str) -> str:
        """The page's source with its markdown cells translated (code cells, side notes included, unchanged):
        the text the notebooks of this language are made from, so their code is the English code."""
        text = path.read_text(encoding="utf-8")
        if self.english:
            return text
        catalog = self.catalog(f"{chapter}/{path.stem}.yml")
        lines = text.splitlines()
        for cell in reversed(split_cells(text, path)):
            if cell.kind == "markdown":
                body = self.notebook_text(markdown_text(cell), catalog)
                new = [f"# {line}" if line else "#" for line in body.splitlines()]
                new += [""] * (len(cell.lines) - len("\n".join(cell.lines).rstrip("\n").splitlines()))
                lines[cell.start - 1: cell.start - 1 + len(cell.lines)] = new
        return "\n".join(lines) + "\n"

    def doc(self, markdown: str, meta: dict, name: str) -> str:
        """A hand-written page (`docs/<name>.md`) in this language; its description is translated in `meta`."""
        if self.english:
            return markdown
        catalog = self.catalog(f"docs/{name}.yml")
        if meta.get("description"):
            meta["description"] = catalog.get(meta["description"]) or meta["description"]
        return self.text(markdown, catalog)


_HEADING = re.compile(r"^(#{1,6}) +(?P<title>[^\n]+?)\s*$")


def same_anchor(english: str, translated: str) -> str:
    """A translated heading keeps the English heading's anchor (`{ #slug }`, attr_list), so that links to a
    section (`page.md#exercises`) work in every language and an instructor's link names the same section."""
    heading, match = _HEADING.match(english), _HEADING.match(translated)
    if not heading or not match or "{" in match["title"]:
        return translated
    from markdown.extensions.toc import slugify

    return f"{translated} {{ #{slugify(heading['title'], '-')} }}"


_NOTE_DIV = re.compile(r'<div class="lb-pending" lang="en" markdown>\n<p class="lb-pending-note" lang="[^"]+"[^>]*>'
                       r'(?P<note>.*?)</p>\n\n(?P<body>.*?)\n\n</div>', re.S)


def html_escape(text: str) -> str:
    import html

    return html.escape(text, quote=False)


# --------------------------------------------------------------------------------------------------------------
# Quality checks of a translated block (scripts/translations.py check, tests/test_languages.py)
# --------------------------------------------------------------------------------------------------------------

# A span may run over one line break (Markdown's rule: not over a blank line); compared with its spaces collapsed.
_MATH = re.compile(r"\$\$.+?\$\$|\$(?:[^$\n]|\n(?![ \t]*\n))+?\$", re.S)
_CODE = re.compile(r"`(?:[^`\n]|\n(?![ \t]*\n))+`")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def invariants(text: str) -> dict[str, set[str]]:
    """What a translation must keep exactly: math spans, `code` spans, link targets, and the numbers of the prose
    (outside math, code and link targets). Compared as sets: order and repetition may change with the language."""
    def spans(found: list[str]) -> set[str]:
        return {" ".join(span.split()) for span in found}

    math = spans(_MATH.findall(text))
    rest = _MATH.sub(" ", text)
    code = spans(_CODE.findall(rest))
    rest = _CODE.sub(" ", rest)
    links = set(_LINK.findall(rest))
    rest = _LINK.sub("] ", rest)
    numbers = {n.replace(",", "") for n in _NUMBER.findall(rest)}
    return {"math": math, "code": code, "links": links, "numbers": numbers}


def quote_lines(english: str) -> list[str]:
    """The lines of a paper quote (`> "…" — Author year, §x`): kept verbatim in every translation."""
    return [line for line in english.splitlines() if line.startswith(">")]


def prose(text: str) -> str:
    """The words of a block, without math, code spans and link targets (where glossary terms are looked for)."""
    return _LINK.sub("] ", _CODE.sub(" ", _MATH.sub(" ", text)))


def load_glossary(path: Path = GLOSSARY) -> list[dict]:
    import yaml

    terms = yaml.safe_load(path.read_text(encoding="utf-8"))
    for term in terms:
        term["regex"] = re.compile(rf"\b(?:{term.get('match') or re.escape(term['en'])})\b", re.I)
    return terms


def block_problems(english: str, text: str, code: str, glossary: list[dict]) -> list[str]:
    """What is wrong with one translated block: invariants that differ, a quote line not kept verbatim, a
    glossary term not used, a rejected variant used."""
    out = []
    want, got = invariants(english), invariants(text)
    for kind in want:
        if want[kind] != got[kind]:
            lost, added = sorted(want[kind] - got[kind]), sorted(got[kind] - want[kind])
            out.append(f"{kind} differ from the English: missing {lost}, added {added}")
    lines = text.splitlines()
    out += [f"quote line not kept verbatim: {line!r}" for line in quote_lines(english) if line not in lines]
    words = prose(english)
    for term in glossary:
        if term.get(code) and term["regex"].search(words) and term[code] not in text:
            out.append(f"the English says {term['regex'].search(words)[0]!r}: use the glossary's {term[code]!r}")
        accepted_removed = text.replace(term[code], "") if term.get(code) else text  # 前活性化 inside 事前活性化
        for variant in term.get("reject", {}).get(code, []):
            if variant in accepted_removed:
                out.append(f"rejected variant {variant!r} for {term['en']!r}: use {term.get(code)!r}")
    return out


def quality(language: str, root: Path = TRANSLATIONS) -> list[str]:
    """`file: block: problem` for every current translation of `language` that breaks a rule above."""
    glossary = load_glossary()
    out = []
    for rel_path in translation_files():
        path = root / language / rel_path
        for entry in load(path):
            if entry["text"].strip() and key(entry.get("en", "")) == entry["hash"]:
                first = entry["en"].strip().splitlines()[0][:60]
                out += [f"{path.relative_to(root)}: {first}: {p}"
                        for p in block_problems(entry["en"], entry["text"], language, glossary)]
    return out
