# %% [markdown]
# # One constructor for ResNet-18, 34, 50, 101 and 152
#
# The five ImageNet ResNets of the paper differ only in data: which block, and how many of them in
# each of four stages. This page writes Table 1 as a table, one `ResNet` class that builds any row of
# it, and proves that the result is the same network as torchvision's by loading torchvision's weights.

# %%
import re
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from labml_style_src.device import DEVICE
from labml_style_src.resnet_v1.bottleneck import Bottleneck
from labml_style_src.resnet_v1.residual_block import BasicBlock, conv3x3
from labml_style_src.resnet_v1.shortcuts import get_shortcut


# %% [markdown]
# ## Table 1 as data

# %%
# Layers of weights in one block: two 3×3 (basic) or 1×1, 3×3, 1×1 (bottleneck).
LAYERS_PER_BLOCK = {BasicBlock: 2, Bottleneck: 3}


@dataclass(frozen=True)
class Arch:
    # One column of Table 1: blocks in `conv2_x … conv5_x`, and the "FLOPs" row (multiply-adds, ×10⁹).
    depth: int
    block: type
    layers: tuple
    gmacs: float

    def __post_init__(self):
        if self.block not in LAYERS_PER_BLOCK:
            raise ValueError(f"block must be one of {[b.__name__ for b in LAYERS_PER_BLOCK]}, got {self.block!r}")
        # depth = stem conv + fc + weight layers of all blocks.
        counted = 2 + LAYERS_PER_BLOCK[self.block] * sum(self.layers)
        if counted != self.depth:
            raise ValueError(
                f"layer table {self.layers} with {self.block.__name__} gives {counted} layers, not {self.depth}: "
                f"{LAYERS_PER_BLOCK[self.block]} layers per block + 2")


TABLE_1 = {a.depth: a for a in (
    Arch(18, BasicBlock, (2, 2, 2, 2), 1.8),
    Arch(34, BasicBlock, (3, 4, 6, 3), 3.6),
    Arch(50, Bottleneck, (3, 4, 6, 3), 3.8),
    Arch(101, Bottleneck, (3, 4, 23, 3), 7.6),
    Arch(152, Bottleneck, (3, 8, 36, 3), 11.3),
)}


# %% [markdown]
# ## Stems

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
    return nn.Sequential(OrderedDict(conv=conv3x3(c_in, c_out), bn=nn.BatchNorm2d(c_out), relu=nn.ReLU(inplace=True)))


STEMS = {"imagenet": imagenet_stem, "cifar": cifar_stem}


# %% [markdown]
# ## The constructor

# %%
class ResNet(nn.Module):
    def __init__(self, block, layers, widths=(64, 128, 256, 512), *, stem="imagenet", stem_width=None,
                 shortcut="B", num_classes=1000, in_channels=3, **block_kwargs):
        super().__init__()
        if len(layers) != len(widths) or not all(isinstance(n, int) and n > 0 for n in layers):
            raise ValueError(f"need one positive block count per stage width, got layers={layers}, widths={widths}")
        if not callable(stem) and stem not in STEMS:
            raise ValueError(f"unknown stem {stem!r}; choose one of {sorted(STEMS)} or pass a function")
        make_stem = STEMS[stem] if isinstance(stem, str) else stem
        make_shortcut = get_shortcut(shortcut)
        self.in_channels = in_channels
        c = stem_width or widths[0]
        self.stem = make_stem(in_channels, c)
        stages = OrderedDict()
        for i, (n, width) in enumerate(zip(layers, widths)):
            # The first block of every stage but the first halves the map.
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                blocks.append(block(c, width, stride if j == 0 else 1, make_shortcut, **block_kwargs))
                c = width * block.expansion
            stages[f"conv{i + 2}_x"] = nn.Sequential(*blocks)
        self.stages = nn.Sequential(stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)
        self.reset_parameters()

    def reset_parameters(self):
        # He initialisation for convolutions, as the paper (§3.4); BN starts as the identity.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):  # x: [B, 3, H, W] -> logits [B, num_classes]
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ResNet expects images [B, {self.in_channels}, H, W], got shape {tuple(x.shape)}")
        x = self.stages(self.stem(x))
        # Global average pooling: [B, C, h, w] -> [B, C], then the fully connected layer.
        return self.fc(torch.flatten(self.pool(x), 1))


def resnet(depth: int, num_classes: int = 1000, *, shortcut="B", stride_on="3x3", groups=1,
           width_per_group=64) -> ResNet:
    # Any column of Table 1.
    if depth not in TABLE_1:
        raise ValueError(f"unknown depth {depth}; Table 1 has {sorted(TABLE_1)}")
    arch = TABLE_1[depth]
    kwargs = {}
    if arch.block is Bottleneck:
        kwargs = dict(stride_on=stride_on, groups=groups, base_width=width_per_group)
    elif groups != 1 or width_per_group != 64:
        raise ValueError(f"ResNet-{depth} uses basic blocks, which have no groups/width_per_group; "
                         f"use depth 50, 101 or 152")
    return ResNet(arch.block, arch.layers, shortcut=shortcut, num_classes=num_classes, **kwargs)


# %% [markdown]
# ## Loading torchvision's weights

# %%
def from_torchvision(state_dict: dict) -> dict:
    # Renames torchvision's keys to ours: `layer1` → `stages.conv2_x`, `conv1/bn1` → `F.0/F.1`, ...
    out = OrderedDict()
    for key, value in state_dict.items():
        k = re.sub(r"^conv1\.", "stem.conv.", key)
        k = re.sub(r"^bn1\.", "stem.bn.", k)
        k = re.sub(r"^layer(\d)\.", lambda m: f"stages.conv{int(m.group(1)) + 1}_x.", k)
        k = re.sub(r"\.conv(\d)\.", lambda m: f".F.{3 * (int(m.group(1)) - 1)}.", k)
        k = re.sub(r"\.bn(\d)\.", lambda m: f".F.{3 * (int(m.group(1)) - 1) + 1}.", k)
        k = k.replace(".downsample.", ".shortcut.")
        out[k] = value
    return out


# %%
if __name__ == "__main__":
    for depth in TABLE_1:
        model = resnet(depth)
        print(depth, sum(p.numel() for p in model.parameters()))
