// KaTeX (vendored, docs/assets/katex) renders the math of every page kind, on every instant-navigation load.
// Side-by-side and hand-written pages: pymdownx.arithmatex leaves `\(...\)` / `\[...\]` in `.arithmatex` elements.
// Notebook views: nbconvert leaves `$...$` / `$$...$$` in the rendered Markdown cells and their table of contents.
// KaTeX's default output keeps MathML next to the HTML, for screen readers.
document$.subscribe(function () {
  document.querySelectorAll(".arithmatex").forEach(function (el) {
    var tex = el.textContent.trim();
    var display = tex.startsWith("\\[");
    katex.render(tex.slice(2, -2), el, { displayMode: display, throwOnError: false });
  });
  document.querySelectorAll(".jupyter-wrapper .jp-RenderedMarkdown, .md-nav--secondary").forEach(function (el) {
    renderMathInElement(el, {
      delimiters: [
        { left: "$$", right: "$$", display: true },
        { left: "$", right: "$", display: false },
      ],
      throwOnError: false,
    });
  });
});
