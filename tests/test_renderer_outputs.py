"""Unit tests of outputs as the site shows them (hooks/site_render/outputs.py): text in an output area, long
text folded, figures as lazy image files with alt text."""

import base64
import io

import nbformat
import numpy as np
from PIL import Image

from site_render import outputs


def png_bytes(image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_outputs_html_text_long_text_and_figures():
    png = png_bytes(Image.new("RGBA", (640, 480), "white"))
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
    assert Image.open(io.BytesIO(seen[0].data)).size == (640, 480)
    assert seen[1].data == b"<svg><title>A block</title></svg>"
    assert outputs.outputs_html([], 1, str) == ""


# A figure's PNG ships as a palette PNG: a real matplotlib plot (lines, anti-aliased text) keeps its pixels to
# within a few levels and loses most of its bytes.
def test_figures_ship_as_small_palette_pngs():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3))
    for k in range(4):
        ax.semilogy(np.arange(50), np.exp(-k * np.arange(50) / 10), label=f"λ = {k}")
    ax.legend()
    ax.set_title("Gradient at each depth")
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    raw = out.getvalue()
    small = outputs.small_png(raw)
    before, after = Image.open(io.BytesIO(raw)), Image.open(io.BytesIO(small))
    assert after.mode == "P" and after.size == before.size
    assert len(small) < 0.6 * len(raw), (len(small), len(raw))
    diff = np.abs(np.asarray(before.convert("RGB"), int) - np.asarray(after.convert("RGB"), int))
    assert (diff.sum(axis=-1) == 0).mean() > 0.95 and np.percentile(diff, 99.9) <= 16
    clear = png_bytes(Image.new("RGBA", (64, 64), (255, 0, 0, 0)))
    assert outputs.small_png(clear) == clear  # transparency kept: left as it is
