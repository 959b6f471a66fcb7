# %% [markdown]
# # Aggregated transformations: cardinality and bottleneck width
#
# ResNeXt keeps ResNet's bottleneck block and changes one thing: the block's residual function is a
# *sum of $C$ small transformations with the same shape*, and $C$, the **cardinality**, becomes a
# design knob next to depth and width.
#
# > "This strategy exposes a new dimension, which we call “cardinality” (the size of the set of
# > transformations), as an essential factor in addition to the dimensions of depth and width."
# > — Xie et al. 2017, Abstract
#
# This page writes the block exactly as its equation, $\mathcal{F}(x) = \sum_{i=1}^{C} \mathcal{T}_i(x)$,
# counts what it costs, and recomputes the paper's Table 2: five blocks with $C = 1 \dots 32$ that all
# cost about the same.

# %%
import torch
from torch import nn

from labml_style_src.device import DEVICE
from labml_style_src.paper_tables import (
    RESNEXT_TABLE2_BLOCK_GFLOPS,
    RESNEXT_TABLE2_BLOCK_PARAMS,
    RESNEXT_TABLE2_WIDTH,
    RESNEXT_TABLE3_TOP1,
)
from labml_style_src.resnet_v1.bottleneck import count_macs
from labml_style_src.resnet_v1.residual_block import (
    conv1x1,
    conv3x3,
    n_params,
    residual_add,
)

# %% [markdown]
# ## One path $\mathcal{T}_i$
#
# Each transformation is a tiny bottleneck: a 1×1 convolution embeds the $c$-channel input into $d$
# channels (the paper's **bottleneck width** $d$), a 3×3 convolution works on those $d$ channels, and a
# 1×1 convolution brings them back to $c_{out}$ channels. All $C$ paths have this same topology; only
# their weights differ. BN and ReLU follow the first two convolutions, as everywhere in ResNet.
#
# The third convolution gets no BN of its own: the paper normalises the *aggregated* output once,
# before the shortcut is added (§4, footnote 6; the [three forms page](three_forms.md) shows why this
# placement is what makes the forms interchangeable).

# %%
def transformation(c_in: int, d: int, c_out: int, stride: int = 1) -> nn.Sequential:
    # $\mathcal{T}_i$: `[B, c_in, H, W]` → `[B, d, H/s, W/s]` → `[B, c_out, H/s, W/s]`.
    return nn.Sequential(
        conv1x1(c_in, d), nn.BatchNorm2d(d), nn.ReLU(inplace=True),
        conv3x3(d, d, stride), nn.BatchNorm2d(d), nn.ReLU(inplace=True),
        conv1x1(d, c_out),
    )


# %% [markdown]
# ## The aggregated transformation, written as a sum
#
# $\mathcal{F}(x) = \mathrm{BN}\big(\sum_{i=1}^{C} \mathcal{T}_i(x)\big)$ — the paper's Fig. 3(a),
# "split, transform, merge": each path sees the whole input, transforms it in a low-dimensional
# embedding, and the outputs are merged by summation. Bad sizes fail here, with the numbers.

# %%
class SplitTransformMerge(nn.Module):
    def __init__(self, c_in: int, C: int, d: int, c_out: int, stride: int = 1):
        super().__init__()
        if C < 1 or d < 1:
            raise ValueError(f"cardinality C and bottleneck width d must be >= 1, "
                             f"got C={C}, d={d}")
        self.C, self.d = C, d
        # $\mathcal{T}_1 \dots \mathcal{T}_C$: same topology, independent weights.
        self.paths = nn.ModuleList(
            transformation(c_in, d, c_out, stride) for _ in range(C))
        # One BN on the sum, before the shortcut is added.
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):  # [B, c_in, H, W] -> [B, c_out, H/s, W/s]
        # $\sum_{i=1}^{C} \mathcal{T}_i(x)$, then BN.
        return self.bn(sum(T(x) for T in self.paths))


# %% [markdown]
# ## The residual block
#
# > "Our network is constructed by repeating a building block that aggregates a set of
# > transformations with the same topology." — Xie et al. 2017, Abstract
#
# The block is ResNet's: $y = \sigma\big(x + \sum_{i} \mathcal{T}_i(x)\big)$, through the site's
# shape-guarded `residual_add`. (Here $c_{in} = c_{out}$, so the shortcut is the identity.)

# %%
class AggregatedBlock(nn.Module):
    def __init__(self, c: int, C: int, d: int):
        super().__init__()
        self.F = SplitTransformMerge(c, C, d, c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):  # [B, c, H, W] -> [B, c, H, W]
        # $y = \sigma(\mathcal{F}(x) + x)$
        return self.relu(residual_add(self.F(x), x))


# %% [markdown]
# ## What a block costs: eq. (4)
#
# A path has three convolutions without bias: $c \cdot d$ weights (1×1), $3 \cdot 3 \cdot d \cdot d$
# (3×3) and $d \cdot c$ (1×1). With $C$ paths and $c$ channels in and out, the block has
#
# $$C \cdot (c \cdot d + 3 \cdot 3 \cdot d \cdot d + d \cdot c)$$
#
# convolution weights — the paper's eq. (4), with $c = 256$ for the `conv2` stage. On an $h \times w$
# map every weight is used once per output position, so the multiply-accumulates (MACs, what the paper
# calls FLOPs) are that number times $h \cdot w$. BN adds $2 \cdot (2Cd + c)$ parameters, which the
# paper's count leaves out.

# %%
def block_cost(c: int, C: int, d: int, hw: int = 56) -> tuple[int, int]:
    # (conv weights, MACs) of one block with `c` channels in/out on an `hw`×`hw` map, stride 1.
    params = C * (c * d + 3 * 3 * d * d + d * c)
    return params, params * hw * hw


# %% [markdown]
# ## Table 2: cardinality against width at equal cost
#
# The paper's Table 2 trades cardinality against bottleneck width in the `conv2` stage (256 channels in
# and out, 56×56 maps) so that every row costs about the same as ResNet-50's bottleneck ($C = 1$,
# $d = 64$). Its caption gives about 70k parameters and 0.22 billion FLOPs per block. We build all
# five blocks, count their convolution weights, *measure* their MACs on a 56×56 input with
# `FlopCounterMode`, and check both against eq. (4). The measurement runs on PyTorch's `meta` device:
# the operators see real shapes but do no arithmetic, so counting is instant.
#
# The table's values are read from `labml_style_src/paper_tables.py`, where every figure this site
# quotes from a paper is typed once. The last column is the payoff, from the paper's Table 3: the
# ImageNet top-1 error of a ResNeXt-50 built from each row (facts from the paper, not measured here).

# %%
if __name__ == "__main__":
    print(f"{'C':>3} {'d':>3} {'C*d':>4} {'conv weights':>13} {'MACs (M)':>9} "
          f"{'all params':>11} {'top-1 err. %':>13}")
    rows = {}
    for C, d in RESNEXT_TABLE2_WIDTH.items():  # C -> d, conv2
        block = AggregatedBlock(256, C, d).to("meta").eval()
        params, macs = block_cost(256, C, d)
        # The module and the formula agree exactly, weights (no conv has a bias) and MACs.
        assert n_params(block, nn.Conv2d) == params
        assert count_macs(block, (1, 256, 56, 56)) == macs
        rows[C] = (params, macs)
        total = n_params(block)
        print(f"{C:>3} {d:>3} {C * d:>4} {params:>13,} {macs / 1e6:>9.1f} {total:>11,}"
              f" {RESNEXT_TABLE3_TOP1[50][C]:>13}")
    # "~70k parameters, ~0.22 billion FLOPs": every row is within 3 % of 70k and rounds to 0.22 G.
    for params, macs in rows.values():
        assert abs(params / RESNEXT_TABLE2_BLOCK_PARAMS - 1) < 0.03
        assert round(macs / 1e9, 2) == RESNEXT_TABLE2_BLOCK_GFLOPS

# %% [markdown]
# All five rows land between 69,632 ($C=1$, exactly ResNet-50's bottleneck) and 71,456 ($C=8$)
# weights, and between 218 and 224 million MACs: the paper's "~70k" and "~0.22 billion" are these
# numbers, rounded, and they are multiply-adds at 56×56 — the convention ResNet's Table 1 uses too.
# The error column falls with every step up in cardinality at (nearly) constant cost, from 23.9 % to
# 22.2 %: the paper's central result. These are single-crop errors, and its ResNet-50 is not the one of
# the ResNet paper's tables; [reading the paper's numbers](paper_numbers.md) explains both.
#
# Why these $d$? For a given $C$, each $d$ of the table is the whole number that brings eq. (4)
# closest to the $C = 1$, $d = 64$ block ([test](../tests/test_resnext.md#test_table2_costs)).
# Exercise 1 asks you to find it yourself for other blocks.
#
# ## The template rules
#
# ResNeXt's blocks obey two rules inspired by VGG and ResNet:
#
# > "(i) if producing spatial maps of the same size, the blocks share the same hyper-parameters
# > (width and filter sizes), and (ii) each time when the spatial map is downsampled by a factor of
# > 2, the width of the blocks is multiplied by a factor of 2." — Xie et al. 2017, §3.1
#
# The second rule keeps the cost of a block (roughly, the paper says; exactly, for the blocks that
# keep their map) the same in every stage: halving $h$ and $w$ divides the positions by 4, doubling
# $c$ and $d$ multiplies every $c \cdot d$ or $d \cdot d$ term by 4. The cell checks it on ResNeXt-50 (32×4d), whose bottleneck
# width goes 4, 8, 16, 32 while the map goes 56, 28, 14, 7.

# %%
if __name__ == "__main__":
    # stage: (channels in and out, bottleneck width d, map size)
    stages = {"conv2": (256, 4, 56), "conv3": (512, 8, 28),
              "conv4": (1024, 16, 14), "conv5": (2048, 32, 7)}
    costs = {name: block_cost(c, 32, d, hw) for name, (c, d, hw) in stages.items()}
    for name, (params, macs) in costs.items():
        print(f"{name}: {params:>9,} weights, {macs / 1e6:.1f} M MACs "
              f"per (non-downsampling) block")
    # Same MACs in every stage; 4× the weights at each step.
    assert len({macs for _, macs in costs.values()}) == 1
    weights = [params for params, _ in costs.values()]
    assert all(b == 4 * a for a, b in zip(weights, weights[1:]))

# %% [markdown]
# So a ResNeXt stage is described by two numbers, $C$ and the `conv2` width $d$, written "$C \times d$d":
# ResNeXt-50 **32×4d** means 32 paths of width 4 in `conv2` (and so 8, 16, 32 in the later stages).
#
# !!! note "Where we differ from the paper"
#     Nothing in the arithmetic, nor in the form: the paper trained this summed form too. Its §4 reports
#     that all three forms of its Fig. 3 gave the same results, and that it builds its models with the
#     grouped convolution of Fig. 3(c) because that form is more succinct and faster; the
#     [next page](three_forms.md) quotes it and proves the forms equal. Our `SplitTransformMerge` is
#     for reading: it runs $C$ small convolutions one after another where form (c) runs one grouped
#     convolution. Exercise 3 of the next page asks you to time the two.
#
# ## A real block on a real tensor
#
# The 32×4d block keeps the shape of its input, and — like every residual block — becomes the identity
# on non-negative inputs when the scale $\gamma$ of its last BN is zero.

# %%
if __name__ == "__main__":
    torch.manual_seed(0)
    block = AggregatedBlock(256, C=32, d=4).to(DEVICE).eval()
    # [B, C, H, W], non-negative
    x = torch.relu(torch.randn(2, 256, 14, 14, device=DEVICE))
    with torch.no_grad():
        y = block(x)
        print("in", tuple(x.shape), "-> out", tuple(y.shape),
              "| paths:", len(block.F.paths))
        assert y.shape == x.shape and len(block.F.paths) == 32
        nn.init.zeros_(block.F.bn.weight)  # γ of the BN on the sum
        assert torch.equal(block(x), x)

# %% [markdown]
# ## Exercises
#
# 1. **Find the bottleneck width (auto-checked).** Write `bottleneck_width(c, C)`: the whole number $d$
#    for which $C$ paths cost (eq. 4) as close as possible to a plain ResNet bottleneck with $c$
#    channels in and out and width $c/4$. Run `check_bottleneck_width(bottleneck_width)`: it tries
#    blocks of 256 to 2048 channels and cardinalities the table does not list, and tells you when a
#    neighbouring width would have come closer. (Does 8×14d stay the nearest choice in `conv3`,
#    where its doubled width would be 28?)
# 2. Table 2 has no row for $C = 16$. What $d$ would it get? Compute its cost with `block_cost`; is it
#    as close to 70k as the other rows? Why does a small $d$ make "equal cost" harder to hit exactly?
# 3. Count the BN parameters of the $C = 32$ block and of the $C = 1$ block. Which has more, and why
#    does the paper's eq. (4) leave them out?
# 4. Replace `sum(...)` in `SplitTransformMerge.forward` by `torch.cat(..., dim=1)`. Which layer
#    raises first, and what shape does the concatenation have? Keeping every path's weights as they
#    are, what would you have to change (in the paths, or after them) so that the concatenating block
#    computes exactly the same function as the summing one? Write down the weight shapes for $C = 32$,
#    $d = 4$, $c = 256$ before reading the next page.

# %%
def check_bottleneck_width(bottleneck_width) -> None:
    # Your d must be the best whole width: neither d - 1 nor d + 1 may come closer to the target.
    cases = [(256, C) for C in RESNEXT_TABLE2_WIDTH]
    cases += [(256, 16), (256, 3), (512, 8), (1024, 2), (2048, 64)]
    for c, C in cases:
        target = block_cost(c, 1, c // 4)[0]  # the plain bottleneck, width c/4
        d = bottleneck_width(c, C)
        if not isinstance(d, int) or isinstance(d, bool) or d < 1:
            raise AssertionError(f"bottleneck_width(c={c}, C={C}) must return a whole "
                                 f"number >= 1, got {d!r}")
        # How far C paths of width d - 1, d, d + 1 are from the target.
        below, at, above = (
            abs(block_cost(c, C, w)[0] - target) if w >= 1 else float("inf")
            for w in (d - 1, d, d + 1))
        if at > min(below, above):
            raise AssertionError(
                f"bottleneck_width(c={c}, C={C}) = {d}: eq. (4) gives "
                f"{block_cost(c, C, d)[0]:,} weights against the plain "
                f"bottleneck's {target:,}, and a neighbouring width comes closer. "
                f"Hint: eq. (4) is a quadratic in d; solve it, then compare the "
                f"whole numbers on either side of the root.")
    print("correct: your widths are the nearest whole widths, Table 2's among them")
