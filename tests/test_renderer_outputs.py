"""Unit tests of outputs as the site shows them (hooks/site_render/outputs.py): text in an output area, long
text folded, figures as lazy image files with alt text."""

import base64

import nbformat

from site_render import outputs


def test_outputs_html_text_long_text_and_figures():
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + (640).to_bytes(4, "big") + (480).to_bytes(4, "big")
    outs = [nbformat.v4.new_output("stream", name="stdout", text="a < b\n"),
            nbformat.v4.new_output("stream", name="stdout", text="".join(f"line {i}\n" for i in range(30))),
            nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(png).decode(),
                                                         "text/plain": "<Figure>"}, metadata={"alt": "Loss curves"}),
            nbformat.v4.new_output("display_data", data={"image/svg+xml": "<svg><title>A block</title></svg>"}),
            nbformat.v4.new_output("display_data", data={"image/svg+xml": (
                '<svg role="img"><title id="t">Two blocks</title>'
                '<desc id="d">Two blocks: conv, BN, ReLU</desc></svg>')})]
    seen = []
    html = outputs.outputs_html(outs, 3, lambda item: seen.append(item) or f"fig{len(seen)}.{item.ext}")
    assert html.startswith('<div class="lb-output" role="group" aria-label="Output of code cell 3" '
                           'data-label="Output">')
    assert '<pre class="lb-out-text" tabindex="0">a &lt; b</pre>' in html
    assert '<details class="lb-out-long"><summary>Output: 30 lines</summary>' in html
    assert ('<img class="lb-out-figure" src="fig1.png" alt="Loss curves" width="640" height="480" loading="lazy"'
            in html)
    assert 'src="fig2.svg" alt="A block"' in html  # an SVG's <title> is its alt text ...
    assert 'src="fig3.svg" alt="Two blocks: conv, BN, ReLU"' in html  # ... or its <desc>, when it has one
    assert [s.data for s in seen][:2] == [png, b"<svg><title>A block</title></svg>"]
    assert outputs.outputs_html([], 1, str) == ""
