"""The renderer's math (hooks/site_render/math.py): formulas typeset at build time by the vendored KaTeX, with
their MathML, wherever a page kind leaves TeX; nothing else touched."""

from site_render import math, mkdocs_glue, pages


# Arithmatex's `\(…\)` and `\[…\]` (HTML-escaped) become KaTeX's HTML and MathML; no TeX delimiters are left.
def test_arithmatex_elements_are_typeset_with_mathml():
    html = ('<p><span class="arithmatex">\\(a &lt; b\\)</span></p>'
            '<div class="arithmatex">\\[\\sum_{i=1}^{C} T_i(x)\\]</div>')
    out = math.arithmatex(html)
    assert out.count('<span class="katex">') == 2 and out.count("<math") == 2
    assert "<mo>&lt;</mo>" in out and 'class="katex-display"' in out
    assert "\\(" not in out and "\\[" not in out and "katex-error" not in out
    assert '<span class="katex-html" aria-hidden="true" data-search-exclude>' in out  # MathML stays searchable


# In a notebook view, `$…$` and `$$…$$` in prose are typeset; code, preformatted text and the copy buttons'
# hidden source keep their dollars.
def test_dollar_math_in_prose_only():
    html = ('<p>Add $F(x)$ and</p><p>$$x_{l+1} = x_l$$</p><code>"$x$"</code><pre>cost $5 and $6</pre>'
            '<div class="clipboard-copy-txt">s = "$a$"<div>$b$</div></div><p>then $y$</p>')
    out = math.dollars(html)
    assert out.count('<span class="katex">') == 3 and 'class="katex-display"' in out
    assert '<code>"$x$"</code>' in out and "<pre>cost $5 and $6</pre>" in out
    assert '<div class="clipboard-copy-txt">s = "$a$"<div>$b$</div></div>' in out


# A notebook view keeps no JupyterLab stylesheet (the site's notebook.css styles it), its code gets Material's
# `.highlight` colours and focusable scroll areas, and its math is typeset.
def test_notebook_view_uses_the_site_styles(tmp_path):
    from mkdocs.structure.files import File, Files

    page = pages.Page("ch", "p", tmp_path / "p.py", "P", "d")
    files = Files([File(u, str(tmp_path), str(tmp_path / "site"), True)
                   for u in ("ch/p.md", "labml_style_src/ch/p.ipynb")])
    html = ('<style type="text/css">.jupyter-wrapper{--jp: 1}</style><style>.x{}</style>'
            '<div class="jupyter-wrapper"><div class="jp-Cell-inputWrapper" tabindex="0">'
            '<div class="highlight-ipynb hl-python"><pre>x = 1</pre></div><p>$x$</p></div>'
            '<style>[]</style>')
    out = mkdocs_glue.notebook_view_html(html, page, "labml_style_src/ch/p/", files)
    assert "<style" not in out and 'class="highlight highlight-ipynb hl-python"><pre tabindex="0">' in out
    assert 'class="jp-Cell-inputWrapper">' in out and '<span class="katex">' in out
