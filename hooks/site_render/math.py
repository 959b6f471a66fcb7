"""Math typeset at build time: the vendored KaTeX (`docs/assets/katex/katex.min.js`) runs in QuickJS, and pages
ship KaTeX's HTML (what the eye sees) with its MathML (what a screen reader reads). Readers download KaTeX's
stylesheet and the fonts a page uses, not its 270 KB script.

Two inputs: `pymdownx.arithmatex` (generic) leaves `\\(…\\)` / `\\[…\\]` in `.arithmatex` elements (side-by-side,
test and hand-written pages); nbconvert leaves `$…$` / `$$…$$` in the text of a notebook view's Markdown cells.
"""

from __future__ import annotations

import functools
import html
import re

from .source import ROOT

KATEX = ROOT / "docs" / "assets" / "katex" / "katex.min.js"


@functools.cache
def _renderer():
    import quickjs

    context = quickjs.Context()
    context.eval(KATEX.read_text(encoding="utf-8"))
    context.eval("function render(tex, display) {"
                 " return katex.renderToString(tex, {displayMode: display, throwOnError: false}); }")
    return context.get("render")


def tex(source: str, display: bool) -> str:
    """KaTeX's HTML + MathML for one formula; its visual half is left out of the search index (the MathML half,
    with the TeX, stays searchable)."""
    out = _renderer()(source.strip(), display)
    return out.replace('<span class="katex-html" aria-hidden="true">',
                       '<span class="katex-html" aria-hidden="true" data-search-exclude>')


_ARITHMATEX = re.compile(r'<(span|div) class="arithmatex">\s*\\([(\[])(.*?)\\[)\]]\s*</\1>', re.S)


def arithmatex(text: str) -> str:
    """Every `.arithmatex` element typeset (its content is HTML-escaped TeX)."""
    def typeset(match: re.Match) -> str:
        tag, display = match[1], match[2] == "["
        return f'<{tag} class="arithmatex">{tex(html.unescape(match[3]), display)}</{tag}>'
    return _ARITHMATEX.sub(typeset, text)


_TOKENS = re.compile(r"(<[^>]*>)")
_DOLLARS = re.compile(r"\$\$(.+?)\$\$|\$(?![\s$])((?:\\\$|[^$])+?)(?<![\s\\])\$", re.S)
_SKIP = re.compile(r"<(code|pre|script|style|textarea)\b|<div class=\"clipboard-copy-txt\"")


def dollars(text: str) -> str:
    """`$…$` and `$$…$$` in the text of an HTML fragment typeset; text inside code, scripts and the notebook's
    copy-to-clipboard sources is left alone."""
    out, skip = [], []  # `skip`: the stack of open tags whose text is not prose
    for token in _TOKENS.split(text):
        if token.startswith("<"):
            name = re.match(r"</?([a-zA-Z0-9]+)", token)
            name = name[1].lower() if name else ""
            if skip and name == skip[-1][0] and not token.endswith("/>"):
                skip[-1][1] += -1 if token.startswith("</") else 1
                if skip[-1][1] == 0:
                    skip.pop()
            elif not skip and _SKIP.match(token):
                skip.append([name, 1])
            out.append(token)
        elif skip or "$" not in token:
            out.append(token)
        else:
            out.append(_DOLLARS.sub(lambda m: tex(html.unescape(m[1] or m[2]), m[1] is not None), token))
    return "".join(out)
