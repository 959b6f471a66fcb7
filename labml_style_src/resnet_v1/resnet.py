# %% [markdown]
# # One constructor for ResNet-18, 34, 50, 101 and 152
#
# The five ImageNet ResNets of the paper differ only in data: which block, and how many blocks in each
# of four stages. This page writes the paper's Table 1 as a table, builds any row of it with one
# `ResNet` class, counts parameters and multiply-adds, and proves that the result is the same network
# as torchvision's by loading torchvision's weights into it.

# %%
import re
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from labml_style_src.device import DEVICE
from labml_style_src.diagrams import draw
from labml_style_src.paper_tables import RESNET_TABLE_1
from labml_style_src.resnet_v1.bottleneck import (
    Bottleneck,
    count_macs,
    validate_stride_on,
)
from labml_style_src.resnet_v1.residual_block import BasicBlock, conv3x3, n_params
from labml_style_src.resnet_v1.shortcuts import get_shortcut

# %% [markdown]
# ## Table 1 as data
#
# Every network in Table 1 has the same skeleton: a stem (`conv1`: a 7×7 convolution with 64 filters
# and stride 2, then a 3×3 max-pool with stride 2), four stages `conv2_x` … `conv5_x` working on 56×56,
# 28×28, 14×14 and 7×7 maps with 64, 128, 256 and 512 filters (times 4 at the output of a bottleneck
# block), global average pooling and a 1000-way fully connected layer. The first block of `conv3_x`,
# `conv4_x` and `conv5_x` halves the map with stride 2. What changes between columns is the block and
# the number of blocks per stage, plus the column's "FLOPs" row, which counts multiply-adds.
#
# The depth in the name counts weight layers: the stem convolution, the fully connected layer and
# 2 (basic) or 3 (bottleneck) per block. `Arch` checks that, so a layer table that does not fit its
# block kind cannot be written down. ResNet-34 and ResNet-50 have the same table, (3, 4, 6, 3): one
# function builds both, and the block is the only difference. Every paper table on this site is
# typed once, in `labml_style_src/paper_tables.py`; `TABLE_1` turns each column of
# `RESNET_TABLE_1` into an `Arch` with a real block class.

# %%
# Layers of weights in one block: two 3×3 (basic) or 1×1, 3×3, 1×1 (bottleneck).
LAYERS_PER_BLOCK = {BasicBlock: 2, Bottleneck: 3}


@dataclass(frozen=True)
class Arch:
    # One column of Table 1: block kind, blocks in `conv2_x … conv5_x`,
    # "FLOPs" (multiply-adds, ×10⁹).
    depth: int
    block: type
    blocks_per_stage: tuple
    gmacs: float

    def __post_init__(self):
        if self.block not in LAYERS_PER_BLOCK:
            names = [b.__name__ for b in LAYERS_PER_BLOCK]
            raise ValueError(f"block must be one of {names}, got {self.block!r}")
        # depth = stem conv + fc + weight layers of all blocks.
        per_block = LAYERS_PER_BLOCK[self.block]
        counted = 2 + per_block * sum(self.blocks_per_stage)
        if counted != self.depth:
            raise ValueError(
                f"layer table {self.blocks_per_stage} with {self.block.__name__} gives "
                f"{counted} weight layers, not {self.depth} "
                f"({per_block} per block + stem conv + fc)")


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
TABLE_1 = {
    depth: Arch(depth, BLOCKS[column.block], column.blocks_per_stage, column.gflops)
    for depth, column in RESNET_TABLE_1.items()
}


# %%
if __name__ == "__main__":
    r34, r50 = TABLE_1[34], TABLE_1[50]
    assert r34.blocks_per_stage == r50.blocks_per_stage and r34.block is not r50.block
    for arch in TABLE_1.values():
        n = arch.blocks_per_stage
        print(f"ResNet-{arch.depth:<3d} = 2 + {LAYERS_PER_BLOCK[arch.block]} × "
              f"{sum(n):2d} blocks {n}")

# %% [markdown]
# ## Stems
#
# The stem turns the image into the first feature map. Conv → BN → ReLU like everywhere else, and for
# ImageNet a max-pool, so that `conv2_x` starts at 56×56 for a 224×224 image. The CIFAR networks of the
# [CIFAR page](cifar.md) use a single 3×3 convolution and keep the 32×32 map. A stem is a function
# `(c_in, c_out) -> nn.Module`, so later chapters can pass their own.

# %%
def imagenet_stem(c_in: int, c_out: int) -> nn.Sequential:
    # `conv1`: 7×7/2 conv → BN → ReLU, then 3×3/2 max-pool: [B, 3, 224, 224] -> [B, 64, 56, 56].
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(c_in, c_out, kernel_size=7, stride=2, padding=3, bias=False),
        bn=nn.BatchNorm2d(c_out), relu=nn.ReLU(inplace=True),
        pool=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    ))


def cifar_stem(c_in: int, c_out: int) -> nn.Sequential:
    # CIFAR: one 3×3 conv → BN → ReLU, no pooling: [B, 3, 32, 32] -> [B, 16, 32, 32].
    return nn.Sequential(OrderedDict(
        conv=conv3x3(c_in, c_out), bn=nn.BatchNorm2d(c_out), relu=nn.ReLU(inplace=True),
    ))


STEMS = {"imagenet": imagenet_stem, "cifar": cifar_stem}


# %% [markdown]
# ## The constructor
#
# `ResNet` takes the variant as data: the block class, blocks per stage, stage widths, the stem, the
# shortcut option ("A", "B", "C" from the [shortcuts page](shortcuts.md), or a function), and keyword
# arguments passed to every block (`stride_on`, `groups`, `base_width` for the
# [bottleneck](bottleneck.md)). The stride rule lives in one line: the first block of every stage except
# the first has stride 2. Stages are named as in the paper, so a parameter is called e.g.
# `stages.conv3_x.0.F.0.weight`. One more argument, `post`, is for the pre-activation networks of
# the [next chapter](../resnet_v2/preact_resnet.md): a function `c -> nn.Module` whose module runs
# between the last stage and the pooling (in ResNet v1 nothing does, so it defaults to none).

# %%
class ResNet(nn.Module):
    def __init__(self, block, blocks_per_stage, widths=(64, 128, 256, 512), *,
                 stem="imagenet", stem_width=None, shortcut="B", num_classes=1000,
                 c_in=3, post=None, **block_kwargs):
        super().__init__()
        if len(blocks_per_stage) != len(widths) or not all(
                isinstance(n, int) and n > 0 for n in blocks_per_stage):
            raise ValueError(f"need one positive block count per stage width, got "
                             f"blocks_per_stage={blocks_per_stage}, widths={widths}")
        if not callable(stem) and stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}; choose one of {sorted(STEMS)} "
                             f"or pass a function")
        make_stem = STEMS[stem] if isinstance(stem, str) else stem
        make_shortcut = get_shortcut(shortcut)
        self.c_in = c_in
        c = stem_width or widths[0]
        self.stem = make_stem(c_in, c)
        stages = OrderedDict()
        for i, (n, width) in enumerate(zip(blocks_per_stage, widths)):
            # `conv2_x` keeps the map (the stem already pooled); every later stage
            # halves it in its first block.
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                blocks.append(block(c, width, stride if j == 0 else 1, make_shortcut,
                                    **block_kwargs))
                c = width * block.expansion
            stages[f"conv{i + 2}_x"] = nn.Sequential(*blocks)
        self.stages = nn.Sequential(stages)
        # After the last stage, before pooling: nothing in v1 (pre-activation nets: BN → ReLU).
        self.post = post(c) if post else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)
        self.reset_parameters()

    def reset_parameters(self):
        # He initialisation of the convolutions (the paper's §3.4 cites it); BN starts with γ = 1, β = 0.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):  # x: [B, 3, H, W] -> logits [B, num_classes]
        # A cheap check with a readable message instead of an error from deep inside a convolution.
        if x.dim() != 4 or x.shape[1] != self.c_in:
            raise ValueError(f"ResNet expects images [B, {self.c_in}, H, W], "
                             f"got shape {tuple(x.shape)}")
        x = self.post(self.stages(self.stem(x)))  # [B, C, H/32, W/32] for ImageNet
        # Global average pooling [B, C, h, w] -> [B, C], then the fully connected layer.
        return self.fc(torch.flatten(self.pool(x), 1))


def resnet(depth: int, num_classes: int = 1000, *, shortcut="B", stride_on="3x3",
           groups=1, base_width=64) -> ResNet:
    # Any column of Table 1; the defaults give torchvision's layout.
    if depth not in TABLE_1:
        raise ValueError(f"unknown depth {depth}; Table 1 has {sorted(TABLE_1)}")
    validate_stride_on(stride_on)  # also for basic blocks, which ignore it
    arch = TABLE_1[depth]
    kwargs = {}
    if arch.block is Bottleneck:
        kwargs = dict(stride_on=stride_on, groups=groups, base_width=base_width)
    elif groups != 1 or base_width != 64:
        raise ValueError(f"ResNet-{depth} uses basic blocks, which have no "
                         f"groups/base_width; use depth 50, 101 or 152")
    return ResNet(arch.block, arch.blocks_per_stage, shortcut=shortcut,
                  num_classes=num_classes, **kwargs)


# %% [markdown]
# ## Shapes, stage by stage
#
# At 224×224 the four stages must produce 56, 28, 14 and 7. A network in which only the very first
# block of the whole net downsamples would still run, and still give 1000 logits thanks to global
# average pooling; only its shapes (and its cost) give it away.
#
# !!! note "A bug this page cannot have"
#     The best-known annotated ResNet (labml's) has three departures from the paper: it downsamples only
#     in the first block of the network instead of the first block of every stage, it has no ReLU after
#     the stem's BN, and its convolutions carry biases right before BN. Each is caught here by a test:
#     [per-stage shapes](../tests/test_resnet_v1.md#test_stage_shapes_imagenet),
#     [stride 2 in every later stage](../tests/test_resnet_v1.md#test_every_later_stage_starts_with_stride_2),
#     [no bias before BN](../tests/test_resnet_v1.md#test_no_conv_feeding_bn_has_a_bias) and
#     [the stem's ReLU](../tests/test_resnet_v1.md#test_stem_has_its_relu).

# %%
def stage_shapes(model: ResNet, x: torch.Tensor) -> dict:
    # The shape after the stem and after each stage: `{"stem": (B, C, H, W), "conv2_x": ..., ...}`.
    with torch.no_grad():
        shapes = {"stem": tuple((h := model.stem(x)).shape)}
        for name, stage in model.stages.named_children():
            shapes[name] = tuple((h := stage(h)).shape)
    return shapes


if __name__ == "__main__":
    model = resnet(18).to(DEVICE).eval()
    x = torch.randn(1, 3, 224, 224, device=DEVICE)
    for name, shape in stage_shapes(model, x).items():
        print(f"{name:10s}", shape)
    assert [s[-1] for s in stage_shapes(model, x).values()] == [56, 56, 28, 14, 7]
    with torch.no_grad():
        assert model(x).shape == (1, 1000)

# %%
if __name__ == "__main__":
    # The paper's Fig. 3 drawn from the code: ResNet-34 beside plain-34, the same net
    # built from blocks without the shortcut (trained on the
    # [ablation page](../ablation/degradation.md)). BN and ReLU are left out as in the
    # figure; equal blocks in a row are drawn once, ×n. On the meta device: no compute.
    class PlainBlock(BasicBlock):
        def forward(self, x):
            return self.relu(self.F(x))  # σ(F(x)): no shortcut

    with torch.device("meta"):
        nets = {"34-layer plain": ResNet(PlainBlock, TABLE_1[34].blocks_per_stage),
                "34-layer residual": resnet(34)}
    draw(nets, torch.zeros(1, 3, 224, 224, device="meta"), fold=True,
         hide=(nn.BatchNorm2d, nn.ReLU))

# %% [markdown]
# ## Parameters: the same as torchvision, to the unit
#
# We build all five networks on PyTorch's `meta` device (shapes only, no memory, no compute) and count.
# The counts equal torchvision's: 11,689,512 / 21,797,672 / 25,557,032 / 44,549,160 / 60,192,808
# ([test](../tests/test_resnet_v1.md#test_param_counts_match_torchvision)). Option B is the default; for
# ResNet-34, option A has 173,824 fewer parameters: the three projections of B, from 64 to 128, 128 to
# 256 and 256 to 512 channels, each $c \cdot 2c$ weights plus $2 \cdot 2c$ for BN.

# %%
if __name__ == "__main__":
    with torch.device("meta"):
        for depth, arch in TABLE_1.items():
            ours = n_params(resnet(depth))
            theirs = n_params(getattr(torchvision.models, f"resnet{depth}")())
            print(f"ResNet-{depth:<3d} {arch.block.__name__:10s} "
                  f"{arch.blocks_per_stage}  params {ours:12,d}")
            assert ours == theirs
        by_option = {o: n_params(resnet(34, shortcut=o)) for o in "ABC"}
    print("ResNet-34 params by shortcut option:", by_option)
    projections = sum(c * 2 * c + 2 * 2 * c for c in (64, 128, 256))
    assert by_option["B"] - by_option["A"] == projections

# %% [markdown]
# ## Multiply-adds: V1 against V1.5
#
# Table 1's FLOPs row counts multiply-adds for the paper's layout, stride on the first 1×1 of a
# bottleneck ("V1"). Our exact counts at 224×224 (convolutions and the fc layer) are 1.81, 3.66, 3.86,
# 7.57 and 11.28 G: the paper rounds loosely (3.66 is written 3.6, 3.86 is written 3.8), and every
# count is within 2 % of the table ([test](../tests/test_resnet_v1.md#test_macs_match_table_1)). The
# basic-block nets do not care where the stride is. For the bottleneck nets, torchvision's stride on
# the 3×3 ("V1.5") costs 4.09 G for ResNet-50, 6 % more, because the first 1×1 of each downsampling
# block runs on the full map (see the [bottleneck page](bottleneck.md)).
#
# !!! note "3.8 or 4.1 GFLOPs for ResNet-50?"
#     Both figures are in print. ResNet's Table 1 gives 3.8 for the paper's layout (stride on the
#     1×1). ResNeXt's Table 1 (Xie et al. 2017) gives 4.1 for its ResNet-50 baseline, which puts the
#     stride on the 3×3, the V1.5 layout: our 4.09 rounds to it
#     ([test](../tests/test_resnext.md#test_resnet50_flops_in_both_papers)). Both papers count multiply-adds; the
#     difference is where the stride sits.

# %%
if __name__ == "__main__":
    print("depth  Table 1   V1 (1x1)   V1.5 (3x3)   [G multiply-adds]")
    with torch.device("meta"):
        for depth, arch in TABLE_1.items():
            v1 = count_macs(resnet(depth, stride_on="1x1"), (1, 3, 224, 224)) / 1e9
            v15 = count_macs(resnet(depth, stride_on="3x3"), (1, 3, 224, 224)) / 1e9
            print(f"{depth:5d}  {arch.gmacs:7.1f}  {v1:9.2f}  {v15:11.2f}")
            assert abs(v1 / arch.gmacs - 1) < 0.02
            if depth == 50:
                assert round(v15, 2) == 4.09

# %% [markdown]
# ## Loading torchvision's weights
#
# Equal parameter counts do not prove equal networks. Equal outputs do: we take torchvision's
# (randomly initialised) state dict, rename its keys to our paper-style names, load it *strictly*
# (every key must match, every shape must fit) and compare logits. Torchvision calls the stages
# `layer1 … layer4` and the block's layers `conv1, bn1, conv2, …`; ours are `conv2_x … conv5_x` and
# positions in `F`, where convolution $k$ sits at index $3(k-1)$ and its BN right after it.
# The test does this for all five depths with randomised BN statistics
# ([test](../tests/test_resnet_v1.md#test_torchvision_weights_give_same_logits)).

# %%
def from_torchvision(state_dict: dict) -> dict:
    # Torchvision key → our key, e.g. `layer2.0.conv1.weight` → `stages.conv3_x.0.F.0.weight`.
    out = OrderedDict()
    for key, value in state_dict.items():
        k = re.sub(r"^conv1\.", "stem.conv.", key)
        k = re.sub(r"^bn1\.", "stem.bn.", k)
        k = re.sub(r"^layer(\d)\.", lambda m: f"stages.conv{int(m.group(1)) + 1}_x.", k)
        k = re.sub(r"\.conv(\d)\.", lambda m: f".F.{3 * (int(m.group(1)) - 1)}.", k)
        k = re.sub(r"\.bn(\d)\.", lambda m: f".F.{3 * (int(m.group(1)) - 1) + 1}.", k)
        out[k.replace(".downsample.", ".shortcut.")] = value
    return out


# %%
if __name__ == "__main__":
    torch.manual_seed(0)
    theirs = torchvision.models.resnet18(weights=None).to(DEVICE).eval()
    ours = resnet(18).to(DEVICE).eval()
    ours.load_state_dict(from_torchvision(theirs.state_dict()), strict=True)
    x = torch.randn(2, 3, 64, 64, device=DEVICE)
    with torch.no_grad():
        diff = (ours(x) - theirs(x)).abs().max().item()
    key = "layer2.0.downsample.0.weight"
    print(key, "->", from_torchvision({key: 0}).popitem()[0])
    print("max |ours - torchvision| on the logits:", diff)
    assert diff <= 1e-5

# %% [markdown]
# Wrong inputs fail early and say why: unknown depths, shortcut options and stride placements name
# the valid choices, and an image tensor of the wrong shape is refused before the first convolution
# ([test](../tests/test_resnet_v1.md#test_bad_inputs_raise_clear_errors)).
#
# ## Exercises
#
# 1. **Count option C (auto-checked).** How many more parameters does ResNet-50 have with option C
#    than with option B? Work it out by hand: which blocks get a new $W_s$ under C, and what does each
#    one cost (a 1×1 convolution and a BN)? Then set `resnet50_C_minus_B` to your number and run
#    `check_resnet50_C_minus_B(resnet50_C_minus_B)`.
# 2. Add ResNet-200 of the pre-activation paper to `TABLE_1` as data: bottleneck blocks (3, 24, 36, 3).
#    What does `Arch` check for you? (Its "FLOPs" are not in our Table 1; count them with `count_macs`.)
# 3. Global average pooling hands the fc layer one number per channel, whatever the size of the
#    image. Predict the stage shapes of ResNet-18 for a 320×320 image and check them with
#    `stage_shapes`. Then try 16×16: which stage is the first to work on a 1×1 map, and does the
#    network still return 1000 logits?
# 4. Build ResNet-50 with `stride_on="1x1"` and with `stride_on="3x3"`, and load torchvision's
#    ResNet-50 state dict into both with `from_torchvision`. Both loads succeed: what do the two
#    layouts share that makes this possible? Only one of them reproduces torchvision's logits. Which
#    one, and what does the other compute differently?

# %%
def check_resnet50_C_minus_B(answer: int) -> None:
    # Compares your number with the two real networks (built on the meta device: no memory used).
    with torch.device("meta"):
        truth = n_params(resnet(50, shortcut="C")) - n_params(resnet(50, shortcut="B"))
    if answer != truth:
        if answer > truth:
            hint = "too many: blocks that already project under B get nothing new"
        else:
            hint = "too few: every block with an identity shortcut under B gets a W_s"
        raise AssertionError(f"{answer:,d} is {hint}; count them stage by stage, and "
                             "mind that a bottleneck's shortcut joins its wide ends")
    print(f"correct: option C adds {truth:,d} parameters to ResNet-50")
