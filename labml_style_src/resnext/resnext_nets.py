# %% [markdown]
# # ResNeXt-50 (32×4d) and ResNeXt-29 for CIFAR
#
# A ResNeXt is a ResNet whose bottleneck 3×3 convolution is grouped. Nothing else changes, so this page
# writes no new network class: ResNeXt-50, Wide ResNet-50-2 and the CIFAR ResNeXt-29 are *data* — a
# cardinality $C$ and a width per group $d$ — handed to the same `ResNet` constructor that builds
# ResNet-18 … 152 in the [ResNet chapter](../resnet_v1/resnet.md). We count their parameters and
# multiply-adds, and prove ResNeXt-50 is torchvision's network by loading its weights. The
# [next page](paper_numbers.md) sets these counts beside the paper's tables.

# %%
from dataclasses import dataclass

import torch
from torch import nn

from labml_style_src.device import DEVICE
from labml_style_src.paper_tables import RESNEXT_TABLE7_CIFAR
from labml_style_src.resnet_v1.against_torchvision import from_torchvision
from labml_style_src.resnet_v1.bottleneck import Bottleneck, count_macs
from labml_style_src.resnet_v1.residual_block import n_params
from labml_style_src.resnet_v1.resnet import ResNet, resnet
from labml_style_src.resnext.aggregated import SplitTransformMerge
from labml_style_src.resnext.three_forms import to_grouped

# %% [markdown]
# ## A template is two numbers
#
# In a bottleneck of `width` $p$, ResNet's 3×3 has $p$ channels (64, 128, 256, 512 in `conv2_x …
# conv5_x`). ResNeXt's has $C$ groups of $d \cdot p / 64$ channels: $d$ is the group width in `conv2_x`,
# and the template rule doubles it with every stage. "32×4d" is $C = 32$, $d = 4$. The bottleneck block
# takes these as `groups=C, base_width=d`. It truncates $d \cdot p/64$ to an integer silently, so
# `Template` checks first that every stage gets a whole, non-zero group width, and says which does not.
# A template can also be given by the total width of the `conv2_x` 3×3, $C \cdot d$, which must split
# into $C$ equal groups.

# %%
@dataclass(frozen=True)
class Template:
    C: int  # cardinality: groups of the 3×3 convolution
    d: int  # width of one group in conv2_x (stage width 64)

    def __post_init__(self):
        for name, v in (("cardinality C", self.C), ("width per group d", self.d)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")

    @classmethod
    def from_width(cls, width: int, C: int) -> "Template":
        # From the width of the conv2_x grouped 3×3 (Table 2's "width of group conv."): d = width / C.
        if C < 1 or width % C:
            q, r = width // max(C, 1), width % max(C, 1)
            raise ValueError(f"a grouped 3×3 of width {width} cannot be split into "
                             f"C={C} equal groups ({width} = {C}·{q} + {r})")
        return cls(C, width // C)

    def group_widths(self, widths) -> list:
        # Width of one group in each stage of width p: d·p/64, a whole number ≥ 1.
        for p in widths:
            if (self.d * p) % 64:
                name = f"{self.C}x{self.d}d"
                raise ValueError(f"{name} does not fit a stage of width {p}: "
                                 f"d·width/64 = {self.d}·{p}/64 = {self.d * p / 64:g} "
                                 f"is not a whole number")
        return [self.d * p // 64 for p in widths]

    def block_kwargs(self, widths) -> dict:
        self.group_widths(widths)
        return dict(groups=self.C, base_width=self.d)


IMAGENET_WIDTHS = (64, 128, 256, 512)

if __name__ == "__main__":
    # 32×4d: groups of 4, 8, 16, 32 channels; the same template from its 128-wide conv2_x 3×3.
    assert Template(32, 4).group_widths(IMAGENET_WIDTHS) == [4, 8, 16, 32]
    assert Template.from_width(128, 32) == Template(32, 4)
    # With the thin CIFAR ResNet stages (widths 16, 32, 64), 8×2d would need groups of 0.5 channels.
    for bad in (lambda: Template(8, 2).group_widths((16, 32, 64)),
                lambda: Template.from_width(100, 32)):
        try:
            bad()
            raise AssertionError("unreachable")
        except ValueError as e:
            print("ValueError:", e)

# %% [markdown]
# ## The ImageNet variants, as a table
#
# Depth from the ResNet paper's Table 1 (via `resnet`), template from the variant's name.
# Wide ResNet-50-2 is the same constructor with one group of double width, $1 \times 128$d: its 3×3
# stage is as wide as ResNeXt-50's (128 channels in `conv2_x`) but dense, which costs 2.75× the
# parameters (the next cell counts them).

# %%
IMAGENET_VARIANTS = {
    "resnet50": (50, Template(1, 64)),
    "resnext50_32x4d": (50, Template(32, 4)),
    "resnext101_32x8d": (101, Template(32, 8)),
    "wide_resnet50_2": (50, Template(1, 128)),
}


def resnext(name: str, num_classes: int = 1000) -> ResNet:
    if name not in IMAGENET_VARIANTS:
        raise ValueError(f"unknown variant {name!r}; "
                         f"choose one of {sorted(IMAGENET_VARIANTS)}")
    depth, t = IMAGENET_VARIANTS[name]
    t.group_widths(IMAGENET_WIDTHS)
    return resnet(depth, num_classes, groups=t.C, base_width=t.d)


# %% [markdown]
# ## Counting, on the `meta` device
#
# We count every variant's parameters and its multiply-adds at 224×224 on the `meta` device: the model
# is built and run on shapes only, so even ImageNet-sized inputs cost nothing. The parameter counts are
# torchvision's, to the unit (the fidelity test counts torchvision's own models too).

# %%
def meta_model(build, *args, **kwargs) -> nn.Module:
    # Build on the `meta` device: shapes only, no memory, instant.
    with torch.device("meta"):
        return build(*args, **kwargs)


if __name__ == "__main__":
    counts = {}
    for name in IMAGENET_VARIANTS:
        model = meta_model(resnext, name)
        counts[name] = (n_params(model), count_macs(model, (1, 3, 224, 224)))
        params, macs = counts[name]
        print(f"{name:18s} {params:>12,} params {macs / 1e9:6.2f} GMACs at 224²")
    assert counts["resnext50_32x4d"][0] == 25_028_904
    assert counts["wide_resnet50_2"][0] == 68_883_240
    assert counts["resnext101_32x8d"][0] == 88_791_336
    assert round(counts["resnet50"][1] / 1e9, 2) == 4.09
    assert round(counts["resnext50_32x4d"][1] / 1e9, 2) == 4.23
    # Dense 1×128d against grouped 32×4d: 2.75× the parameters.
    assert round(counts["wide_resnet50_2"][0] / counts["resnext50_32x4d"][0], 2) == 2.75

# %% [markdown]
# ResNet-50 and ResNeXt-50 come out at 25.6M and 25.0M parameters, 4.09 and 4.23 billion
# multiply-adds. The paper's Table 1 says 25.5M and 25.0M, 4.1 and 4.2: the
# [next page](paper_numbers.md) shows what the paper counted, and where in the network the two differ.
#
# ## The block is the aggregated transformation
#
# The 3×3 of ResNeXt-50's `conv2_x` blocks has the grouped weight `[128, 4, 3, 3]`, so the block is the
# [grouped form (c)](three_forms.md). The cell goes the whole way back to the sum of 32 paths: it builds
# `SplitTransformMerge` (form (a), the [first page](aggregated.md)), maps its weights with the *same*
# `to_grouped` as before, loads them into a real `Bottleneck(256, 64, groups=32, base_width=4)` and
# compares the residual functions.

# %%
if __name__ == "__main__":
    torch.manual_seed(0)
    block = Bottleneck(256, 64, groups=32, base_width=4).to(DEVICE).eval()
    assert block.F[3].weight.shape == (128, 4, 3, 3) and block.F[3].groups == 32
    paths = SplitTransformMerge(256, 32, 4, 256).to(DEVICE).eval()
    sd = to_grouped(paths.state_dict(), 32)
    # Our bottleneck keeps its last BN inside `F` (index 7); form (a) calls it `bn`.
    sd = {k.replace("bn.", "F.7."): v for k, v in sd.items()}
    block.F.load_state_dict({k[2:]: v for k, v in sd.items()})
    x = torch.randn(1, 256, 7, 7, device=DEVICE)
    with torch.no_grad():
        gap = (block.F(x) - paths(x)).abs().max().item()
    print(f"max |Bottleneck(groups=32).F(x) - sum of 32 paths| = {gap:.1e}")
    assert gap < 1e-5

# %% [markdown]
# ## The same network as torchvision's
#
# The strongest check that two implementations are the same network: load one's weights into the
# other and compare outputs. We randomise BN's running statistics first (fresh ones are 0 and 1, which
# would hide a mix-up) and compare eval-mode logits on a small 64×64 image. The ResNet chapter's
# `from_torchvision` renames the keys; nothing ResNeXt-specific is needed. The fidelity test
# [`test_resnext50_matches_torchvision`](../tests/test_resnext.md#test_resnext50_matches_torchvision)
# does the same for Wide ResNet-50-2 and counts torchvision's parameters and MACs.

# %%
def randomize_bn_stats(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model


if __name__ == "__main__":
    import torchvision

    torch.manual_seed(0)
    theirs = torchvision.models.resnext50_32x4d(weights=None)
    theirs = randomize_bn_stats(theirs).eval().to(DEVICE)
    ours = resnext("resnext50_32x4d").eval().to(DEVICE)
    # Strict: every key matched.
    ours.load_state_dict(from_torchvision(theirs.state_dict()))
    x = torch.randn(1, 3, 64, 64, device=DEVICE)
    with torch.no_grad():
        gap = (ours(x) - theirs(x)).abs().max().item()
    print(f"max |ours - torchvision| over 1000 logits: {gap:.1e}")
    assert gap <= 1e-5

# %% [markdown]
# ## ResNeXt-29 for CIFAR
#
# For CIFAR-10 the paper uses a 29-layer ResNeXt: a 3×3 stem, three stages of three bottleneck blocks
# on 32×32, 16×16 and 8×8 maps, global average pooling and a linear classifier ($1 + 3 \cdot 3 \cdot 3 +
# 1 = 29$ layers). The stages' output widths are 256, 512 and 1024 (stage widths 64, 128, 256), and the
# template varies $C$ at $d = 64$: "8×64d" has a 3×3 of $8 \cdot 64 = 512$ channels in the first stage.
# Table 7 of the paper: ResNeXt-29 8×64d has **34.4M** parameters and **3.65 %** test error on CIFAR-10,
# 16×64d **68.1M** and **3.58 %**, each error the average of 10 runs (facts from the paper, not
# measured here). Again no new class: `ResNet` with the CIFAR stem, three stages, and the template.
#
# The rest of the layout is in the paper's text. The CIFAR appendix gives the stem:
#
# > "The first layer is 3×3 conv with 64 filters." — Xie et al. 2017, Appendix A
#
# and §4 the shortcuts and where the stride goes:
#
# > "The shortcuts are identity connections except for those increasing dimensions which are
# > projections (type B in [14]). Downsampling of conv3, 4, and 5 is done by stride-2 convolutions in
# > the 3×3 layer of the first block in each stage, as suggested in [11]." — Xie et al. 2017, §4
#
# §4 describes the ImageNet models; the appendix says that the CIFAR models follow the same
# implementation otherwise ([11] is `fb.resnet.torch`), and the authors' released Torch code
# (`facebookresearch/ResNeXt`, `models/resnext.lua`) builds its CIFAR nets exactly so: type-B
# shortcuts by default, the stride on the grouped 3×3. Here the blocks that downsample are the first
# of `conv3_x` and of `conv4_x` ([test](../tests/test_resnext.md#test_resnext29_layout)).

# %%
CIFAR_WIDTHS = (64, 128, 256)


def resnext29(C: int = 8, d: int = 64, num_classes: int = 10) -> ResNet:
    # 3×3 stem to 64 channels, then 3 stages × 3 bottlenecks with C groups of width d·p/64.
    t = Template(C, d)
    return ResNet(Bottleneck, (3, 3, 3), widths=CIFAR_WIDTHS, stem="cifar",
                  stem_width=64, shortcut="B", num_classes=num_classes,
                  **t.block_kwargs(CIFAR_WIDTHS))


if __name__ == "__main__":
    for (C, d), paper in RESNEXT_TABLE7_CIFAR.items():
        model = meta_model(resnext29, C, d)
        n, n_bn = n_params(model), n_params(model, nn.BatchNorm2d)
        print(f"ResNeXt-29 {C}×{d}d: {n:,} params ({n / 1e6:.2f}M), "
              f"{(n - n_bn) / 1e6:.2f}M without BN; paper {paper['params_m']}M, "
              f"CIFAR-10 error {paper['cifar10']} %; "
              f"{count_macs(model, (1, 3, 32, 32)) / 1e9:.1f} GMACs")
        # The paper's figure is the count without BN's γ and β, rounded.
        assert round((n - n_bn) / 1e6, 1) == paper["params_m"]
    assert round(n_params(meta_model(resnext29, 8, 64)) / 1e6, 1) == 34.4

# %% [markdown]
# 8×64d rounds to 34.4M with or without BN parameters. For 16×64d the full count is 68.16M, which
# rounds to 68.2M; the paper's 68.1M matches the count of convolution and fc weights only (68.05M), so
# Table 7 appears to leave BN out, as eq. (4) does — and as Table 1 does (next page)
# ([test](../tests/test_resnext.md#test_resnext29)).
#
# A real forward pass, with a small template so the page stays fast on a CPU:

# %%
if __name__ == "__main__":
    torch.manual_seed(0)
    small = resnext29(C=4, d=8).to(DEVICE).eval()
    x = torch.randn(2, 3, 32, 32, device=DEVICE)  # [B, 3, 32, 32], CIFAR-sized
    h = small.stem(x)
    for name, stage in small.stages.named_children():
        h = stage(h)
        grouped = tuple(stage[0].F[3].weight.shape)
        print(f"{name}: {tuple(h.shape)}, grouped 3×3 weight {grouped}")
    assert h.shape == (2, 1024, 8, 8)
    # §4's layout: stride 2 on the grouped 3×3 of the first block of conv3_x and conv4_x;
    # a projection shortcut in the first block of each stage (the width grows), identity elsewhere.
    assert [stage[0].F[3].stride for stage in small.stages] == [(1, 1), (2, 2), (2, 2)]
    assert [stage[0].F[0].stride for stage in small.stages] == [(1, 1)] * 3
    assert all(not isinstance(stage[0].shortcut, nn.Identity) for stage in small.stages)
    assert all(isinstance(b.shortcut, nn.Identity)
               for stage in small.stages for b in stage[1:])
    with torch.no_grad():
        assert small(x).shape == (2, 10)

# %% [markdown]
# ## Exercises
#
# 1. **Where the parameters live (auto-checked).** Write `stage_weights(C, d)`: for ResNeXt-29
#    $C \times d$d, a dict mapping each stage name (`"conv2_x"`, `"conv3_x"`, `"conv4_x"`) to the number
#    of convolution weights in that stage. Work it out from the template, with pencil and paper first;
#    then run `check_stage_weights(stage_weights)`, which compares it with networks built by
#    `resnext29` for several templates. Which stage holds most of 8×64d's 34.4M parameters, and why?
# 2. Build `resnext("resnext101_32x8d")` on the `meta` device and count its MACs at 224². How does
#    its cost compare with ResNeXt-50 and with Wide ResNet-50-2?
# 3. `Template(8, 2)` fails on stages of width 16, 32, 64. Which of the three, and what would
#    `Bottleneck(64, 16, groups=8, base_width=2)` build silently without the check? Does it run?
# 4. ResNeXt-29 16×64d and Wide ResNet-50-2 have about the same number of parameters (68M). Why is the
#    CIFAR net's MAC count so different from the ImageNet one's, given the input sizes?

# %%
def check_stage_weights(stage_weights) -> None:
    # Your counts against the convolution weights of each stage of real (meta) networks.
    for C, d in ((8, 64), (16, 64), (4, 16), (2, 32)):
        model = meta_model(resnext29, C, d)
        answer = stage_weights(C, d)
        for name, stage in model.stages.named_children():
            truth, got = n_params(stage, nn.Conv2d), answer.get(name)
            if got != truth:
                hint = ("missing" if got is None
                        else "too high" if got > truth else "too low")
                raise AssertionError(
                    f"{C}×{d}d, {name}: your count is {hint}. Per block: a 1×1 "
                    f"into the grouped width, the grouped 3×3 (what is its weight's "
                    f"shape?), a 1×1 out; which blocks also have a projection "
                    f"shortcut?")
    print("correct: you can count a ResNeXt's weights from its template")
