"""Diagrams are drawn from the modules: a block's picture has exactly its layers and data flows, changes
when the module changes, and every SVG is valid XML with a title and a description for screen readers.

The graphs are counted against the modules themselves (`module.modules()`), never against the drawing code.
Tests that lay a graph out need Graphviz's `dot`, which `make test` installs; without it they are skipped.
"""

import copy
import importlib.util
import os
import shutil
import sys
import xml.etree.ElementTree as ET
from collections import Counter

import nbformat
import pytest
import torch
from torch import nn

from conftest import PAGES, run_notebook
from labml_style_src.diagrams import INSTALL, draw, graphviz_available, to_svg, trace
from labml_style_src.resnet_v1.bottleneck import Bottleneck
from labml_style_src.resnet_v1.residual_block import BasicBlock, conv1x1
from labml_style_src.resnet_v1.resnet import TABLE_1, ResNet, resnet
from labml_style_src.resnet_v1.shortcuts import SHORTCUTS
from labml_style_src.resnet_v2.activation_variants import (
    ACTIVATION_VARIANTS,
    ActivationVariantUnit,
)
from labml_style_src.resnet_v2.keras_resnet50v2 import stack2
from labml_style_src.resnext.aggregated import SplitTransformMerge
from labml_style_src.resnext.three_forms import EarlyConcat, GroupedConv
from site_render import execute
from site_render.notebook import notebook_json

HAS_GRAPHVIZ = shutil.which("dot") is not None and importlib.util.find_spec("graphviz") is not None
needs_graphviz = pytest.mark.skipif(not HAS_GRAPHVIZ, reason="Graphviz (`dot` and the graphviz package) is "
                                    "missing; `make test` installs it")
SVG = "{http://www.w3.org/2000/svg}"


def layers(module: nn.Module, kind) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


def kinds(graph) -> Counter:
    # What the picture shows: convolutions, BN, ReLU, additions, and anything else by its label.
    return Counter("conv" if " conv, " in n.label else n.label for n in graph.nodes)


def sources(graph, label: str) -> list:
    # The (owner module, note) of every edge into the node with this label.
    target = next(i for i, n in enumerate(graph.nodes) if n.label == label)
    return sorted((graph.nodes[s].owner, note or "") for s, t, note in graph.edges if t == target)


BLOCKS = {
    "basic, identity": (lambda: BasicBlock(64, 64), (1, 64, 8, 8)),
    "basic, projection /2": (lambda: BasicBlock(64, 128, stride=2), (1, 64, 8, 8)),
    "bottleneck, projection": (lambda: Bottleneck(64, 64), (1, 64, 8, 8)),
    "bottleneck, identity": (lambda: Bottleneck(256, 64), (1, 256, 8, 8)),
    "bottleneck V1 /2": (lambda: Bottleneck(256, 128, stride=2, stride_on="1x1"), (1, 256, 8, 8)),
}


# One node per convolution, BN, ReLU and the addition (plus x and y), and one edge per data flow: every layer
# reads one tensor, the addition two, y one. The addition reads the end of F and the end of the shortcut.
@pytest.mark.parametrize("name", BLOCKS)
def test_block_diagram_has_exactly_its_layers(name):
    build, shape = BLOCKS[name]
    block = build()
    graph = trace(block, torch.randn(shape))
    convs, bns, relus = (layers(block, k) for k in (nn.Conv2d, nn.BatchNorm2d, nn.ReLU))
    assert kinds(graph) == Counter({"conv": convs, "BN": bns, "ReLU": relus, "⊕": 1, "x": 1, "y": 1})
    assert len(graph.edges) == (convs + bns + relus) + 2 + 1
    end_of_F = f"F.{len(block.F) - 1}"
    if isinstance(block.shortcut, nn.Identity):
        assert sources(graph, "⊕") == sorted([(end_of_F, ""), ("", "identity")])  # x itself, marked identity
    else:
        assert sources(graph, "⊕") == sorted([(end_of_F, ""), (f"shortcut.{len(block.shortcut) - 1}", "")])
    with torch.no_grad():
        assert graph.nodes[-1].shape == tuple(block.eval()(torch.randn(shape)).shape[1:])


# Change the module, and the picture changes with it: a ReLU taken out of F, or a projection put on the
# shortcut in place of the identity.
def test_changing_the_module_changes_the_picture():
    x = torch.randn(1, 64, 8, 8)
    block = BasicBlock(64, 64)
    no_relu = copy.deepcopy(block)
    no_relu.F = nn.Sequential(*(m for i, m in enumerate(block.F) if i != 2))
    projected = copy.deepcopy(block)
    projected.shortcut = nn.Sequential(conv1x1(64, 64), nn.BatchNorm2d(64))
    before, after_relu, after_proj = (trace(m, x) for m in (block, no_relu, projected))

    assert kinds(before) - kinds(after_relu) == Counter({"ReLU": 1})
    assert len(before.edges) - len(after_relu.edges) == 1
    assert kinds(after_proj) - kinds(before) == Counter({"conv": 1, "BN": 1})
    assert len(after_proj.edges) - len(before.edges) == 2
    assert ("", "identity") in sources(before, "⊕") and ("", "identity") not in sources(after_proj, "⊕")
    assert any(c[1] == "W_s" for n in after_proj.nodes for c in n.clusters)
    if HAS_GRAPHVIZ:
        svgs = [to_svg([g], "block") for g in (before, after_relu, after_proj)]
        assert len(set(svgs)) == 3


# ResNeXt's Fig. 3: three different graphs for the same sum. (a) one ⊕ over the C paths, (b) a concatenation
# of C paths, (c) one grouped convolution; all three hold the same parameters and give the same shape.
def test_three_resnext_forms_differ_but_sum_the_same():
    C, d, c = 4, 4, 64
    forms = {"a": SplitTransformMerge(c, C, d, c), "b": EarlyConcat(c, C, d, c), "c": GroupedConv(c, C, d, c)}
    graphs = {k: trace(m, torch.randn(1, c, 8, 8)) for k, m in forms.items()}
    shown = {k: kinds(g) for k, g in graphs.items()}
    assert shown["a"]["⊕"] == 1 and len(sources(graphs["a"], "⊕")) == C and "concat" not in shown["a"]
    assert shown["b"]["concat"] == 1 and len(sources(graphs["b"], "concat")) == C and "⊕" not in shown["b"]
    assert "⊕" not in shown["c"] and "concat" not in shown["c"]
    assert f"3×3 conv, {C * d}, grp={C}" in [n.label for n in graphs["c"].nodes]
    assert shown["a"] != shown["b"] != shown["c"] != shown["a"]
    for k, graph in graphs.items():
        assert sum(n.params for n in graph.nodes) == sum(p.numel() for p in forms[k].parameters())
        assert graph.nodes[-1].shape == (c, 8, 8)
    assert len({sum(n.params for n in g.nodes) for g in graphs.values()}) == 1


# ResNet-34 and plain-34 (He et al. 2015, Fig. 3), folded: each stage shows its first block and a run of equal
# blocks marked ×n, and only the residual net adds. Unfolded, every block's addition and every conv is there.
def test_resnet34_and_plain34_fold_by_stage():
    class PlainBlock(BasicBlock):
        def forward(self, x):
            return self.relu(self.F(x))

    x = torch.zeros(1, 3, 224, 224, device="meta")
    with torch.device("meta"):
        residual, plain = resnet(34), ResNet(PlainBlock, TABLE_1[34].blocks_per_stage)
    hide = (nn.BatchNorm2d, nn.ReLU)
    full = trace(residual, x, hide=hide)
    assert kinds(full)["⊕"] == sum(TABLE_1[34].blocks_per_stage) and kinds(full)["conv"] == layers(residual, nn.Conv2d)
    folds = {k: c for g in [trace(residual, x, fold=True, hide=hide)] for n in g.nodes for k, c in n.clusters
             if c.startswith("×")}
    n2, *later = TABLE_1[34].blocks_per_stage
    assert sorted(folds.values()) == sorted([f"×{n2}"] + [f"×{n - 1}" for n in later])
    folded_plain = trace(plain, x, fold=True, hide=hide)
    assert kinds(folded_plain)["⊕"] == 0 and "BN" not in kinds(folded_plain)
    assert kinds(trace(residual, x, fold=True, hide=hide))["⊕"] == 1 + 2 * len(later)


# The Keras stage: the stride sits in the last block (its 3×3 and a 1×1 max-pool on the shortcut).
def test_keras_stage_has_its_stride_in_the_last_block():
    graph = trace(stack2(256, 128, 4), torch.zeros(1, 256, 28, 28), fold=True)
    strided = [n for n in graph.nodes if "/2" in n.label]
    assert {n.label for n in strided} == {"3×3 conv, 128, /2", "1×1 max pool, /2"}
    assert {n.owner.split(".")[0] for n in strided} == {"block4"}


# Drawing leaves the module as it was: its train/eval modes and BN statistics.
def test_trace_leaves_the_module_unchanged():
    block = Bottleneck(64, 16).train()
    block.F[1].eval()
    state = copy.deepcopy(block.state_dict())
    trace(block, torch.randn(2, 64, 8, 8))
    assert block.training and not block.F[1].training and block.F[4].training
    assert all(torch.equal(state[k], v) for k, v in block.state_dict().items())


FIGURES = {
    "one block": lambda: [trace(BasicBlock(16, 32, 2), torch.zeros(1, 16, 8, 8))],
    "shortcut options": lambda: [trace(nn.Sequential(BasicBlock(16, 32, 2, f), BasicBlock(32, 32, 1, f)),
                                       torch.zeros(1, 16, 8, 8), f"option {k}") for k, f in SHORTCUTS.items()],
    "activation variants": lambda: [trace(ActivationVariantUnit(8, v), title=v) for v in ACTIVATION_VARIANTS],
    "folded stage": lambda: [trace(stack2(64, 16, 4), torch.zeros(1, 64, 8, 8), fold=True)],
}


# Every SVG is valid XML; its first children are a <title> and a <desc> that `aria-labelledby` points to; ids are
# unique; every node's name is in the picture.
@needs_graphviz
@pytest.mark.parametrize("figure", FIGURES)
def test_svg_is_valid_and_accessible(figure):
    graphs = FIGURES[figure]()
    root = ET.fromstring(to_svg(graphs, figure, per_row=3))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title, desc = list(root)[:2]
    assert (title.tag, desc.tag) == (f"{SVG}title", f"{SVG}desc") and title.text == figure
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert all(n.label in desc.text for g in graphs for n in g.nodes)
    assert len(root.findall(f".//{SVG}title")) == 1
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids))
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert all(n.label in texts for g in graphs for n in g.nodes if n.label not in ("⊕", "⊙"))


# Without Graphviz, drawing prints one line saying how to install it (once, however many drawings) and the
# program goes on: with `dot` off the PATH, and with the graphviz package missing.
@pytest.mark.parametrize("missing", ["dot", "package"])
def test_missing_graphviz_prints_one_line(missing, monkeypatch, capsys):
    if missing == "dot":
        monkeypatch.setenv("PATH", os.path.dirname(sys.executable))
    else:
        monkeypatch.setitem(sys.modules, "graphviz", None)  # `import graphviz` raises ImportError
    graphviz_available.cache_clear()
    try:
        draw(BasicBlock(8, 8))
        draw(BasicBlock(8, 16, 2))
        print("still running")
    finally:
        graphviz_available.cache_clear()  # the next test looks again
    assert capsys.readouterr().out.splitlines() == [INSTALL, "still running"]


# The downloaded notebook of a page: with Graphviz its diagram is an SVG output; with `dot` off the PATH the
# same cell prints the one line and every other cell still runs. ("present" reads the build's cached run of the
# download; "missing" runs the whole page once more, without `dot`.)
@pytest.mark.slow
@needs_graphviz
@pytest.mark.parametrize("dot", ["present", "missing"])
def test_downloaded_notebook_draws_or_says_why_not(dot, tmp_path):
    page = next(p for p in PAGES if p.name == "residual_block")
    if dot == "present":  # the build's own run of the download (cached: the suite runs it once)
        notebook = execute.executed(page.path)
    else:
        notebook = nbformat.reads(notebook_json(page.path), as_version=4)
        env = {"RESNET_DEVICE": "cpu", "PYTHONPATH": "", "PATH": os.path.dirname(sys.executable)}
        run_notebook(notebook, tmp_path, env, "residual_block.ipynb")
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    svgs = [o["data"]["image/svg+xml"] for o in outputs if "image/svg+xml" in o.get("data", {})]
    printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream").splitlines()
    if dot == "present":
        assert len(svgs) == 1 and INSTALL not in printed
        assert ET.fromstring(svgs[0]).find(f"{SVG}desc").text
    else:
        assert svgs == [] and printed.count(INSTALL) == 1
