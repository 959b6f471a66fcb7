"""Unit tests of the source format (hooks/site_render/source.py, pages.py): how a source becomes rows of
(note, code) and side-by-side HTML, and the clear errors a malformed source gets."""

import pytest

from conftest import pages, source
from renderer_fixtures import PAGE, make_package, write

SourceError = source.SourceError


# A markdown cell and the code after it share a row; a comment block above code starts a new row and goes to
# the note column; inline comments and `#` inside strings stay in the code.
def test_rows_pair_notes_with_code(tmp_path):
    path = write(tmp_path, PAGE)
    rows = source.rows(source.split_cells(path.read_text(), path), path)
    assert [r.note.splitlines()[0] if r.note else "" for r in rows] == [
        "# A title", "## Text before code", "Second note."]
    assert rows[0].code == [(8, "import torch")]  # the title row holds the first code cell: no half-empty row
    assert "The note for `f`: $y = 2x$." in rows[1].note
    code = [text for _, text in rows[1].code]
    assert code[0] == "def f(x):" and "    # that looks like a comment" in code
    assert any("# an inline comment stays in the code" in line for line in code)
    assert rows[2].code == [(24, "y = f(3)")]


# Highlighting runs over the whole cell, so a docstring spanning lines is a string on every line it covers.
def test_highlight_keeps_multiline_strings_whole():
    lines = ['def f():', '    """first', '    # not a comment', '    """', '    return 1']
    out = source.highlight(lines)
    assert len(out) == len(lines)
    assert '<span class="sd">    # not a comment</span>' in out[2]
    assert '<span class="k">return</span>' in out[4]


# The rendered page: rows with permalinks, source line numbers, one copy button per code cell
# that copies the whole cell.
def test_render_has_line_numbers_permalinks_and_one_copy_button_per_cell(tmp_path):
    path = write(tmp_path, PAGE)
    out = source.render(path)
    assert out.count('class="lb-row"') == 3 and 'id="s1"' in out and 'href="#s3"' in out
    assert 'data-ln="24"' in out
    assert out.count("data-clipboard-text=") == 2  # two code cells
    copied = out.split('data-clipboard-text="')[2].split('"')[0]
    assert "# Second note." in copied and "y = f(3)" in copied  # the copy holds the whole cell, comments included


def test_title_and_description(tmp_path):
    path = write(tmp_path, PAGE)
    assert source.title_and_description(path) == ("A title", "The description, on two lines.")


# Tests get anchors named after each test function, which pages link to.
def test_test_anchors(tmp_path):
    path = write(tmp_path, "def helper():\n    pass\n\n\ndef test_a():\n    pass\n\n\n"
                           "class TestB:\n    def test_c(self):\n        pass\n")
    assert source.test_anchors(path) == {5: "test_a", 10: "test_c"}
    html = source.render(path, source.test_anchors(path), percent=False)
    assert '<span class="lb-line" id="test_a" data-ln="5">' in html


# --- bad input: every error names the file and the line -------------------------------------------------------

@pytest.mark.parametrize("text, line, message", [
    ("# %%\nx = (\n", 2, "syntax error"),
    ("# %%\nx = 1\n# %% [markdown]\nnot a comment\n", 4, "must start with '# '"),
    ("x = 1\n# %%\ny = 2\n", 1, "before the first"),
    ("# %% [raw]\nx = 1\n", 1, "unknown cell marker"),
    ("# %%\nx = 1\n# cd into the data folder first\ny = 2\n", 3, "jupytext would run this comment"),
])
def test_malformed_sources_fail_with_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(SourceError, match=rf"page\.py:{line}: .*{message}"):
        source.render(path)


def test_unlisted_and_missing_pages_are_errors(tmp_path):
    src = make_package(tmp_path, {"a": PAGE, "b": PAGE}, ["a"])
    with pytest.raises(SourceError, match=r"ch/b\.py:1: page is not listed"):
        pages.discover(src)
    src = make_package(tmp_path / "2", {"a": PAGE}, ["a", "c"])
    with pytest.raises(SourceError, match=r"PAGES lists 'c' but ch/c\.py does not exist"):
        pages.discover(src)
    src = make_package(tmp_path / "3", {"a": "# %%\nx = 1\n"}, ["a"])
    with pytest.raises(SourceError, match="must start with '# # Title'"):
        pages.discover(src)


# Through Markdown (md_in_html, as the site builds it) the code column stays one block: a cell with blank lines
# and its outputs end up inside the same `.lb-code` (a blank line in raw HTML would end the block early).
def test_outputs_stay_inside_the_code_column_through_markdown(tmp_path):
    import markdown

    path = write(tmp_path, "# %% [markdown]\n# # T\n#\n# d\n\n# %%\nx = 1\n\ny = 2\n")
    output = '<div class="lb-output"><pre class="lb-out-text">a&#10;&#10;b</pre></div>'
    body = source.render(path, outputs={1: output})
    out = markdown.markdown(body, extensions=["md_in_html", "attr_list"])
    assert "<p></div>" not in out and "<p><div" not in out
    code = out[out.index('<div class="lb-code"'):]
    assert out.count('<div class="lb-code"') == 1 and 'data-ln="9"' in code and 'class="lb-output"' in code
