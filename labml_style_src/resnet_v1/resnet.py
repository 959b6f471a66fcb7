# %% [markdown]
# # One constructor for ResNet-18, 34, 50, 101 and 152
#
# The five ImageNet ResNets of the paper differ only in data: which block, and how many blocks in each
# of four stages. This page writes the paper's Table 1 as a table and builds any row of it with one
# `ResNet` class. The [next page](against_torchvision.md) counts their parameters and multiply-adds
# and proves that each is torchvision's network by loading torchvision's weights into it.

# %%
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from labml_style_src.device import DEVICE
from labml_style_src.diagrams import draw
from labml_style_src.paper_tables import RESNET_TABLE_1
from labml_style_src.resnet_v1.bottleneck import Bottleneck, validate_stride_on
from labml_style_src.resnet_v1.residual_block import BasicBlock, conv3x3
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
# Wrong inputs fail early and say why: unknown depths, shortcut options and stride placements name
# the valid choices, and an image tensor of the wrong shape is refused before the first convolution
# ([test](../tests/test_resnet_v1.md#test_bad_inputs_raise_clear_errors)).
#
# ## Exercises
#
# 1. Add ResNet-200 of the pre-activation paper to `TABLE_1` as data: bottleneck blocks (3, 24, 36, 3).
#    What does `Arch` check for you? (Its "FLOPs" are not in our Table 1; count them with `count_macs`.)
# 2. **Other image sizes (auto-checked).** Global average pooling hands the fc layer one number per
#    channel, whatever the size of the image. Predict the side of the map after the stem and after
#    each stage of ResNet-18 for a 320×320 image, write it as
#    `sides_320 = {"stem": ..., "conv2_x": ..., "conv3_x": ..., "conv4_x": ..., "conv5_x": ...}`
#    and run `check_sides_320(sides_320)`. Then try 16×16 with `stage_shapes`: which stage is the
#    first to work on a 1×1 map, and does the network still return 1000 logits?
# 3. A stem is any function `(c_in, c_out) -> nn.Module`. Write one for 64×64 images (a 3×3
#    convolution with stride 1, BN and ReLU, no pooling), build ResNet-18 with it and print
#    `stage_shapes` for a 64×64 image. On which map does `conv5_x` work, and how does that compare
#    with the 7×7 of a 224×224 image under the ImageNet stem?

# %%
def check_sides_320(answer: dict) -> None:
    # Runs ResNet-18 on a 320×320 input on the "meta" device (shapes only) and compares.
    with torch.device("meta"):
        shapes = stage_shapes(resnet(18), torch.zeros(1, 3, 320, 320))
    for name, shape in shapes.items():
        if answer.get(name) != shape[-1]:
            raise AssertionError(
                f"{name}: not {answer.get(name)}. The stem divides the side by 4 (a "
                "stride-2 convolution, then a stride-2 max-pool), conv2_x keeps it, "
                "and every later stage halves it in its first block")
    sides = ", ".join(f"{name} {shape[-1]}²" for name, shape in shapes.items())
    print("correct:", sides)
