"""The site's renderer, split by concern. `hooks/literate.py` (the MkDocs hook) only wires it to MkDocs' events.

source.py       the source format: cells, rows of (note, code), the side-by-side HTML
pages.py        the site's structure: chapters and pages in reading order, read with `ast`
notebook.py     the self-contained notebook offered for download (imports from other pages inlined)
execute.py      running that notebook once, on CPU, in an empty folder; the content-keyed cache; clean outputs
outputs.py      outputs as the site shows them: HTML under each code cell, the notebook view's outputs
assignments.py  nbgrader assignments: a page, its exercises and reference solutions (solutions/)
languages.py    the ja / zh builds: translation files, blocks translated or shown pending, sync / check
mkdocs_glue.py  each page's files (Markdown, notebook view, download, images), links between the views
"""
