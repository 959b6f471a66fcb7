"""The site's renderer, split by concern. `hooks/literate.py` (the MkDocs hook) only wires it to MkDocs' events.

source.py       the source format: cells, rows of (note, code), the side-by-side HTML
pages.py        the site's structure: chapters and pages in reading order, read with `ast`
notebook.py     the self-contained notebook offered for download (imports from other pages inlined)
mkdocs_glue.py  the generated Markdown, the notebook views' fix-ups, links between the views
"""
