"""Diagrams of blocks and networks, drawn from the modules themselves.

`draw(module, x)` runs the module once on `x` and records it: each call of a `torch.nn` layer and
each tensor operation between layers (`+`, `*`, `torch.cat`, a slice) becomes a node named as the
papers name it ("3×3 conv, 64", "BN", "ReLU", "⊕"), each tensor handed on an edge, with its shape
where it changes. We record a real forward pass (hooks for layers, a `TorchFunctionMode` for the
operations) because `torch.fx` stops at any `if` on a shape, like the check in `residual_add`.
Graphviz lays the graph out as an SVG with a `<title>` and a `<desc>` for screen readers; without
Graphviz one line says how to install it, and the page runs on.
"""

import functools
import hashlib
import html
import importlib
import re
import sys
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

INSTALL = ("No diagram: Graphviz is missing. Install it with `pip install graphviz` and its `dot` "
           "program (apt-get install graphviz, brew install graphviz or conda install graphviz).")
# Pale fills under dark text read on light and dark pages; lines are a grey that shows on both.
FILL = {"conv": "#cfe0fc", "bn": "#fde2b8", "act": "#cdeccf", "pool": "#e5dcf7", "op": "#eceff3"}
INK, LINE, FONT = "#1f2328", "#7d8590", "Helvetica,Arial,sans-serif"


@dataclass
class Node:
    label: str  # "3×3 conv, 64", "BN", "ReLU", "⊕", ...; "x" and "y" are the input and output
    kind: str  # its colour: conv, bn, act, pool, op
    owner: str  # name of the module that made it ("" is the drawn module itself)
    shape: tuple = ()  # output shape without the batch dimension
    params: int = 0
    clusters: tuple = ()  # ((key, caption), ...), outermost first: a folded block "×3", "W_s"


@dataclass
class Graph:
    title: str
    nodes: list = field(default_factory=list)
    edges: list = field(default_factory=list)  # (source, target, note), indices into `nodes`
    shapes: bool = True  # write tensor shapes on the edges


def layer_label(m: nn.Module) -> tuple[str, str]:
    # A layer as the papers write it ("3×3 conv, 128, /2"), and its colour.
    if isinstance(m, nn.Conv2d):
        (kh, kw), s, g = m.kernel_size, m.stride[0], m.groups
        text = f"{kh}×{kw} conv, {m.out_channels}" + f", /{s}" * (s > 1) + f", grp={g}" * (g > 1)
        return text, "conv"
    if isinstance(m, nn.MaxPool2d):
        k, s = (v if isinstance(v, int) else v[0] for v in (m.kernel_size, m.stride))
        return f"{k}×{k} max pool" + f", /{s}" * (s > 1), "pool"
    if isinstance(m, nn.Linear):
        return f"fc {m.out_features}", "conv"
    if isinstance(m, nn.Dropout):
        return f"dropout {m.p}", "op"
    if isinstance(m, nn.ZeroPad2d):
        return f"zero-pad {m.padding[0]}", "op"
    simple = {nn.BatchNorm2d: ("BN", "bn"), nn.Sigmoid: ("σ", "act"),
              nn.AvgPool2d: ("avg pool", "pool"), nn.AdaptiveAvgPool2d: ("avg pool", "pool")}
    return simple.get(type(m), (type(m).__name__, "act"))  # ReLU and other activations by name


def op_label(name: str, args: tuple) -> tuple[str, str] | None:
    # An operation between layers; None for one that only reshapes, or adds 0 (as `sum` starts).
    tensors = sum(isinstance(a, torch.Tensor) for a in args)
    number = next((a for a in args if isinstance(a, (int, float))), None)
    if name in ("add", "radd", "iadd"):
        return ("⊕", "op") if tensors == 2 else None if number == 0 else (f"+ {number}", "op")
    if name in ("mul", "rmul", "imul"):
        return ("⊙", "op") if tensors == 2 else (f"× {number}", "op")
    if name == "getitem":  # `x[:, :, ::2, ::2]`, option A's subsampling
        steps = [s.step for s in args[1] if isinstance(s, slice) and s.step] \
            if isinstance(args[1], tuple) else []
        return (f"subsample /{max(steps)}" if steps else "slice"), "op"
    if name == "pad":  # `(W_left, W_right, H_top, H_bottom, C_front, C_back)`
        channels = sum(args[1][4:6])
        return (f"+ {channels} zero channels" if channels else "zero-pad"), "op"
    if name in ("flatten", "view", "reshape", "contiguous"):
        return None
    return {"rsub": (f"{number} − ·", "op"), "sigmoid": ("σ", "act"), "relu": ("ReLU", "act"),
            "cat": ("concat", "op")}.get(name, (name, "op"))


def is_layer(m: nn.Module) -> bool:
    # A `torch.nn` layer is one node; containers and our own modules are recorded inside.
    containers = (nn.Sequential, nn.ModuleList)
    return type(m).__module__.startswith("torch.nn") and not isinstance(m, containers)


def _key(t: torch.Tensor) -> tuple:
    return id(t), t._version  # the version tells a tensor before and after an in-place ReLU apart


class _Recorder(TorchFunctionMode):
    """One forward pass into `graph`: layers through their hooks, operations between them here."""

    def __init__(self, module: nn.Module, graph: Graph, hide: tuple):
        super().__init__()
        self.graph, self.hide, self.made, self.alive = graph, hide, {}, []
        self.names, self.inputs = [], []  # the modules entered, the inputs of the layers entered
        self.depth = 0  # how many layers we are inside
        self.handles = [h for name, m in module.named_modules() for h in (
            m.register_forward_pre_hook(functools.partial(self.enter, name)),
            m.register_forward_hook(functools.partial(self.leave, name)))]

    def bind(self, t: torch.Tensor, source: tuple) -> None:
        self.alive.append(t)  # keeps `id(t)` from being reused while we record
        self.made[_key(t)] = source  # (the node that made it, a note for the edges out of it)

    def add(self, label, kind, keys, out, params=0) -> None:
        sources = [self.made[k] for k in keys if k in self.made]
        if not sources or not isinstance(out, torch.Tensor):
            return
        if label is None:  # hand the tensor on as if nothing happened
            return self.bind(out, sources[0])
        nodes, owner = self.graph.nodes, self.names[-1] if self.names else ""
        nodes.append(Node(label, kind, owner, tuple(out.shape[1:]), params))
        self.graph.edges += [(s, len(nodes) - 1, note) for s, note in sources]
        self.bind(out, (len(nodes) - 1, None))

    def enter(self, name, m, args):
        self.names.append(name)
        if is_layer(m):
            self.depth += 1
            self.inputs.append([_key(a) for a in args if isinstance(a, torch.Tensor)])

    def leave(self, name, m, args, out):
        if is_layer(m):
            keys = self.inputs.pop()
            if isinstance(out, torch.Tensor) and _key(out) in keys:  # it returned its input:
                out = out.view_as(out)  # a view gives the output a key of its own
            self.depth -= 1
            source = self.made.get(keys[0]) if keys else None
            if source and isinstance(m, nn.Identity):  # as the papers draw it: an edge, "identity"
                self.bind(out, (source[0], "identity"))
            elif source and isinstance(m, self.hide):
                self.bind(out, source)
            else:
                self.add(*layer_label(m), keys, out, sum(p.numel() for p in m.parameters()))
        self.names.pop()
        return out

    def __torch_function__(self, func, types, args=(), kwargs=None):
        keys = [_key(t) for t in tree_flatten(args)[0] if isinstance(t, torch.Tensor)]
        out = func(*args, **(kwargs or {}))
        if self.depth == 0 and isinstance(out, torch.Tensor):  # between layers, not inside one
            label = op_label(getattr(func, "__name__", "op").strip("_").rstrip("_"), args)
            self.add(*(label or (None, "")), keys, out)
        return out


def trace(module: nn.Module, x: torch.Tensor | None = None, title: str | None = None, *,
          fold: bool = False, hide: tuple = ()) -> Graph:
    """The graph of `module` run on `x`, in eval mode without gradients (its modes are restored).
    No `x`: zeros for the first layer on a 32×32 map, and no shapes. `hide`: layer types left
    out. `fold`: in a Sequential of blocks, a run of equal blocks is drawn once, marked ×n."""
    graph = Graph(title or type(module).__name__, shapes=x is not None)
    if x is None:
        first = next(m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d)))
        c = first.in_channels if isinstance(first, nn.Conv2d) else first.num_features
        x = torch.zeros(1, c, 32, 32, device=first.weight.device)
    x, modes = x.detach().clone(), {m: m.training for m in module.modules()}
    recorder = _Recorder(module, graph, tuple(hide))
    graph.nodes.append(Node("x", "op", "", tuple(x.shape[1:])))
    recorder.bind(x, (0, None))
    try:
        with torch.no_grad(), recorder:
            y = module.eval()(x)
    finally:
        for handle in recorder.handles:
            handle.remove()
        for m, training in modes.items():
            m.training = training
    graph.nodes.append(Node("y", "op", "", tuple(y.shape[1:])))
    source, note = recorder.made[_key(y)]
    graph.edges.append((source, len(graph.nodes) - 1, note))
    _merge_sums(graph)
    names = dict(module.named_modules())
    for node in graph.nodes:  # a shortcut that is not the identity is boxed: W_s if it has weights
        parts = node.owner.split(".")
        for i in (i for i, part in enumerate(parts) if part in ("shortcut", "W_s")):
            key = ".".join(parts[: i + 1])
            node.clusters += ((key, "W_s" if list(names[key].parameters()) else "shortcut"),)
    if fold:
        _fold(graph, module)
    return graph


def _remove(graph: Graph, gone: dict) -> None:
    # Drops the nodes `gone` maps to kept ones: edges into them go, edges out of them now leave
    # from the kept node.
    edges = dict.fromkeys((gone.get(s, s), t, n) for s, t, n in graph.edges if t not in gone)
    new = {old: i for i, old in enumerate(i for i in range(len(graph.nodes)) if i not in gone)}
    graph.nodes = [graph.nodes[old] for old in new]
    graph.edges = [(new[s], new[t], n) for s, t, n in edges]


def _merge_sums(graph: Graph) -> None:
    # `a + b + c` is one ⊕ with three inputs, as the papers draw a sum.
    while True:
        fanout, nodes = Counter(s for s, _, _ in graph.edges), graph.nodes
        pair = next(((s, t) for s, t, _ in graph.edges if nodes[s].label == nodes[t].label == "⊕"
                     and fanout[s] == 1 and nodes[s].owner == nodes[t].owner), None)
        if pair is None:
            return
        s, t = pair
        graph.edges = [(a, t if b == s else b, n) for a, b, n in graph.edges if (a, b) != (s, t)]
        _remove(graph, {s: t})


def _fold(graph: Graph, module: nn.Module) -> None:
    def signature(block):  # labels, shapes and wiring, the block's own nodes numbered from 0
        at = {i: p for p, i in enumerate(block)}
        reads = {i: sorted((at.get(s, -1), str(n)) for s, t, n in graph.edges if t == i)
                 for i in block}
        return [(graph.nodes[i].label, graph.nodes[i].shape, reads[i]) for i in block]

    gone = {}
    for name, seq in module.named_modules():
        if not isinstance(seq, nn.Sequential) or len({type(b) for b in seq}) > 1 or is_layer(seq[0]):
            continue  # not a Sequential of blocks of one class
        prefixes = [f"{name}.{child}".lstrip(".") for child, _ in seq.named_children()]
        blocks = [[i for i, n in enumerate(graph.nodes) if f"{n.owner}.".startswith(p + ".")]
                  for p in prefixes]
        start = 0
        while start < len(blocks):
            end = start + 1
            while end < len(blocks) and signature(blocks[end]) == signature(blocks[start]):
                gone.update(zip(blocks[end], blocks[start]))
                end += 1
            for node in (graph.nodes[i] for i in blocks[start]) if end - start > 1 else ():
                node.clusters = ((prefixes[start], f"×{end - start}"),) + node.clusters
            start = end
    _remove(graph, gone)


def describe(graph: Graph) -> str:
    # The graph in words, for the SVG's `<desc>`: numbered steps, each with its box ("×3", "W_s")
    # and what it reads, unless that is the step just before it.
    reads = {}
    for s, t, note in graph.edges:
        reads.setdefault(t, []).append(f"({s + 1})" + f" by {note}" * bool(note))
    steps = []
    for i, node in enumerate(graph.nodes):
        text = f"({i + 1}) {node.label}" + "".join(f" [{caption}]" for _, caption in node.clusters)
        if graph.shapes and node.label in ("x", "y"):
            text += " " + "×".join(map(str, node.shape))
        if reads.get(i, [f"({i})"]) != [f"({i})"]:
            text += " from " + " and ".join(reads[i])
        steps.append(text)
    return f"{graph.title}, top to bottom: " + "; ".join(steps) + "."


@functools.cache
def graphviz_available() -> bool:
    try:
        import graphviz

        graphviz.version()  # runs `dot -V`
        return True
    except Exception:  # no package, no `dot`, or a `dot` that fails: say so, once
        print(INSTALL)
        return False


def _chip(text: str, size: int = 9) -> str:
    # A label on a pale chip (a Graphviz HTML label), readable on any background.
    text = html.escape(text).replace("W_s", "W<sub>s</sub>")
    return (f'<<table border="0" cellpadding="1" cellspacing="0" bgcolor="{FILL["op"]}"><tr><td>'
            f'<font point-size="{size}" color="{INK}">{text}</font></td></tr></table>>')


def _place(sub, graph: Graph, p: int, members: list, depth: int = 0) -> None:
    # Nodes, each in its (nested) boxes: a folded block, a shortcut.
    boxes = {}
    for i in members:
        node = graph.nodes[i]
        if len(node.clusters) > depth:
            boxes.setdefault(node.clusters[depth], []).append(i)
        elif node.label in ("⊕", "⊙"):  # the papers' circled plus and times
            sub.node(f"p{p}n{i}", "+" if node.label == "⊕" else "×", shape="circle", width="0.24",
                     fixedsize="true", fontsize="13", fillcolor=FILL["op"])
        else:
            sub.node(f"p{p}n{i}", node.label, fillcolor=FILL[node.kind])
    for (key, caption), inside in boxes.items():
        with sub.subgraph(name=f"cluster_p{p}_" + re.sub(r"\W", "_", key)) as box:
            box.attr(label=_chip(caption, 10), style="dashed,rounded", pencolor=LINE, labeljust="r")
            _place(box, graph, p, inside, depth + 1)


def to_svg(graphs: list, title: str, per_row: int = 2) -> str | None:
    """The graphs side by side, `per_row` to a row, as one SVG; None without Graphviz."""
    if not graphviz_available():
        return None
    import graphviz

    dot = graphviz.Digraph(
        graph_attr=dict(bgcolor="transparent", nodesep="0.12", ranksep="0.12", fontname=FONT),
        node_attr=dict(shape="box", style="rounded,filled", fontname=FONT, fontsize="11",
                       fontcolor=INK, color=LINE, height="0.24", margin="0.06,0.02"),
        edge_attr=dict(color=LINE, arrowsize="0.6", penwidth="1.1", fontname=FONT))
    for p, graph in enumerate(graphs):
        with dot.subgraph(name=f"cluster_p{p}") as panel:
            panel.attr(label=_chip(graph.title, 11), pencolor="transparent")
            _place(panel, graph, p, list(range(len(graph.nodes))))
        reads, told = {t: s for s, t, _ in reversed(graph.edges)}, set()
        for s, t, note in graph.edges:  # a shape is written once, after the node that changed it
            shape = graph.nodes[s].shape
            new = s not in reads or graph.nodes[reads[s]].shape != shape
            text = note or "×".join(map(str, shape)) * (graph.shapes and new and s not in told)
            told.add(s)
            dot.edge(f"p{p}n{s}", f"p{p}n{t}", label=_chip(text) if text else None)
    for row in range(0, len(graphs), per_row):  # an invisible node over each row keeps its order
        dot.node(f"row{row}", style="invis", shape="point", width="0", ordering="out")
        for p in range(row, min(row + per_row, len(graphs))):
            dot.edge(f"row{row}", f"p{p}n0", style="invis")
        for q in range(row - per_row, row) if row else ():  # and hangs it below the row before
            dot.edge(f"p{q}n{len(graphs[q].nodes) - 1}", f"row{row}", style="invis")
    svg = dot.pipe(format="svg", encoding="utf-8")
    return _accessible(svg, title, " ".join(describe(g) for g in graphs))


def _accessible(svg: str, title: str, desc: str) -> str:
    # The <svg> element alone, with ids unique on a page, a title and a description.
    uid = "diagram-" + hashlib.sha1(svg.encode()).hexdigest()[:10]
    svg = re.sub(r"<!--.*?-->\s*|<title>.*?</title>\s*", "", svg[svg.index("<svg"):], flags=re.DOTALL)
    svg = svg.replace(' id="', f' id="{uid}-').replace("<svg", (
        f'<svg role="img" aria-labelledby="{uid}-title {uid}-desc"'
        ' style="max-width:100%;height:auto"'), 1)
    head = svg.index(">") + 1
    return (svg[:head] + f'\n<title id="{uid}-title">{html.escape(title)}</title>'
            f'\n<desc id="{uid}-desc">{html.escape(desc)}</desc>' + svg[head:])


def draw(modules, x: torch.Tensor | None = None, *, title: str | None = None, fold: bool = False,
         hide: tuple = (), per_row: int = 2) -> None:
    """Draws a module, or {caption: module, ...} side by side, each run on `x`. A notebook shows
    the SVG as the cell's output; a program prints one line saying what was drawn."""
    items = modules.items() if isinstance(modules, dict) else [(title, modules)]
    graphs = [trace(m, x, caption, fold=fold, hide=hide) for caption, m in items]
    title = title or " | ".join(g.title for g in graphs)
    svg = to_svg(graphs, title, per_row)
    if svg is None:  # no Graphviz: the one line has been printed
        return
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if shell is None:  # a program, not a notebook
        print(f"[diagram: {title}, {sum(len(g.nodes) for g in graphs)} nodes; a notebook shows it]")
    else:  # a notebook always has IPython
        ipython_display = importlib.import_module("IPython.display")
        ipython_display.display(ipython_display.SVG(svg))
