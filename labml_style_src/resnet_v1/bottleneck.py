# %% [markdown]
# # The bottleneck block
#
# ResNet-50/101/152 replace the two 3×3 convolutions of the basic block by three layers:
# a 1×1 convolution that *reduces* the channels, a 3×3 convolution on the thin tensor, and a 1×1
# convolution that *expands* the channels again, by a factor of 4. This page builds that block,
# counts its multiply-adds next to a basic block of the same output width, and shows where the
# stride can sit.

# %%
import torch
from torch import nn

from labml_style_src.device import DEVICE
from labml_style_src.resnet_v1.residual_block import BasicBlock, conv1x1, identity_or_projection, residual_add

# %% [markdown]
# ## Reduce, transform, expand
#
# The paper's description of Fig. 5, verbatim:
#
# > "The three layers are 1×1, 3×3, and 1×1 convolutions, where the 1×1 layers are responsible for
# > reducing and then increasing (restoring) dimensions, leaving the 3×3 layer a bottleneck with
# > smaller input/output dimensions." — He et al. 2015, §4.1
#
# In `conv2_x` of ResNet-50 that is 256 → 64 → 64 → 256 channels: the block is called with
# `planes = 64` and returns `planes * expansion = 256` channels. As in the [basic block](residual_block.md),
# every convolution is followed by BN, and every BN but the last by a ReLU; the last ReLU comes after
# the addition.
#
# Two arguments are here for later chapters. `groups` and `base_width` set the inner width to
# $\lfloor \text{planes} \cdot \text{base\_width} / 64 \rfloor \cdot \text{groups}$ and group the 3×3
# convolution: with the defaults (1, 64) the inner width is just `planes`; the
# [ResNeXt chapter](../resnext/aggregated.md) uses 32 groups of width 4.
#
# `stride_on` says which convolution halves the map in the first block of a stage. The paper's
# original code put the stride on the first 1×1 ("V1"); torchvision and most later code put it on
# the 3×3 ("V1.5"). Both are built here from one flag; the [constructor page](resnet.md) counts what
# the difference costs.

# %%
STRIDE_ON = ("1x1", "3x3")


def conv3x3_grouped(c_in: int, c_out: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    # The 3×3 of the bottleneck, optionally grouped (ResNeXt); no bias, BN follows.
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, groups=groups, bias=False)


class Bottleneck(nn.Module):
    # Channels leaving the block = `planes * 4`.
    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1, shortcut=identity_or_projection,
                 stride_on: str = "3x3", groups: int = 1, base_width: int = 64):
        super().__init__()
        if stride_on not in STRIDE_ON:
            raise ValueError(f"stride_on must be one of {STRIDE_ON} ('1x1' = paper V1, '3x3' = V1.5), got {stride_on!r}")
        width = int(planes * base_width / 64) * groups
        c_out = planes * self.expansion
        # The stride goes on exactly one of the first two convolutions.
        s1, s3 = (stride, 1) if stride_on == "1x1" else (1, stride)
        # $F$: 1×1 reduce → BN → ReLU → 3×3 → BN → ReLU → 1×1 expand → BN.
        self.F = nn.Sequential(
            conv1x1(c_in, width, s1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            conv3x3_grouped(width, width, s3, groups), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            conv1x1(width, c_out), nn.BatchNorm2d(c_out),
        )
        self.shortcut = shortcut(c_in, c_out, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):  # x: [B, C_in, H, W] -> [B, 4 * planes, H / stride, W / stride]
        # $y = \sigma(F(x) + W_s x)$, as in the basic block.
        return self.relu(residual_add(self.F(x), self.shortcut(x)))


# %% [markdown]
# ## Shapes, on a real tensor
#
# The first block of ResNet-50's `conv2_x` receives the 64-channel output of the stem and already has
# to widen it to 256 channels, so even at stride 1 its shortcut is a projection. The second block keeps
# the shape and its shortcut is the identity.

# %%
if __name__ == "__main__":
    torch.manual_seed(0)
    x = torch.randn(2, 64, 56, 56, device=DEVICE)  # [B, C, H, W]
    first = Bottleneck(64, 64).to(DEVICE)
    second = Bottleneck(256, 64).to(DEVICE)
    h = first(x)
    y = second(h)
    print("input         ", tuple(x.shape))
    print("after first   ", tuple(h.shape), "shortcut:", type(first.shortcut).__name__)
    print("after second  ", tuple(y.shape), "shortcut:", type(second.shortcut).__name__)
    assert h.shape == y.shape == (2, 256, 56, 56)
    assert not isinstance(first.shortcut, nn.Identity) and isinstance(second.shortcut, nn.Identity)
    # Inner widths: 256 → 64 → 64 → 256.
    assert [m.out_channels for m in second.F if isinstance(m, nn.Conv2d)] == [64, 64, 256]
