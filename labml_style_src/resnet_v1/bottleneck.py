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
from torch.utils.flop_counter import FlopCounterMode

from labml_style_src.device import DEVICE
from labml_style_src.diagrams import draw
from labml_style_src.resnet_v1.residual_block import (
    BasicBlock,
    conv1x1,
    conv3x3,
    identity_or_projection,
    n_params,
    residual_add,
)

# %% [markdown]
# ## Reduce, transform, expand
#
# > "Because of concerns on the training time that we can afford, we modify the building block as a
# > bottleneck design." — He et al. 2015, §4.1
#
# Each residual function $F$ becomes a stack of three layers (Fig. 5 of the paper): a 1×1 convolution
# that shrinks the channels by 4, a 3×3 convolution on the thin tensor, and a 1×1 convolution that
# restores them. In `conv2_x` of ResNet-50 that is 256 → 64 → 64 → 256 channels: the block is called with
# `width = 64` and returns `width * expansion = 256` channels. Every block on this site takes the
# same arguments, `(c_in, width, stride, shortcut)`, where `width` is the stage's width in Table 1
# (the channels of the block's 3×3 convolution) and the block returns `width * expansion` channels;
# torchvision calls `width` `planes`. As in the [basic block](residual_block.md),
# every convolution is followed by BN and has no bias
# ([test](../tests/test_resnet_v1.md#test_no_conv_feeding_bn_has_a_bias)), every BN but the last by a
# ReLU, and the last ReLU comes after the addition.
#
# Two arguments are here for later chapters. `groups` and `base_width` set the 3×3's width to
# $\lfloor \text{width} \cdot \text{base\_width} / 64 \rfloor \cdot \text{groups}$ and group the 3×3
# convolution: with the defaults (1, 64) that is just `width`; the
# [ResNeXt chapter](../resnext/aggregated.md) uses 32 groups of width 4
# ([test](../tests/test_resnet_v1.md#test_bottleneck_widths_and_groups)).
#
# `stride_on` says which convolution halves the map in the first block of a stage. The paper's
# original code put the stride on the first 1×1 ("V1"); torchvision and most later code put it on
# the 3×3 ("V1.5"). Both are built here from one flag; the
# [comparison with torchvision](against_torchvision.md) counts what the difference costs.

# %%
STRIDE_ON = ("1x1", "3x3")


def validate_stride_on(stride_on: str) -> None:
    if stride_on not in STRIDE_ON:
        raise ValueError(f"stride_on must be one of {STRIDE_ON} "
                         f"('1x1' = paper V1, '3x3' = V1.5), got {stride_on!r}")


class Bottleneck(nn.Module):
    # Channels leaving the block = `width * 4`.
    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1,
                 shortcut=identity_or_projection, stride_on: str = "3x3",
                 groups: int = 1, base_width: int = 64):
        super().__init__()
        validate_stride_on(stride_on)
        # `inner`: channels of the 3×3; equal to `width` unless ResNeXt's groups rescale it.
        inner = int(width * base_width / 64) * groups
        if inner < groups:  # each of the `groups` paths needs at least one channel
            raise ValueError(f"bottleneck width per group int({width}·{base_width}/64)"
                             f" = {inner // groups} is empty; "
                             f"use a larger width or base_width")
        c_out = width * self.expansion
        # The stride goes on exactly one of the first two convolutions.
        s1, s3 = (stride, 1) if stride_on == "1x1" else (1, stride)
        # $F$: 1×1 reduce → BN → ReLU → 3×3 → BN → ReLU → 1×1 expand → BN.
        self.F = nn.Sequential(
            conv1x1(c_in, inner, s1), nn.BatchNorm2d(inner), nn.ReLU(inplace=True),
            conv3x3(inner, inner, s3, groups), nn.BatchNorm2d(inner),
            nn.ReLU(inplace=True),
            conv1x1(inner, c_out), nn.BatchNorm2d(c_out),
        )
        self.shortcut = shortcut(c_in, c_out, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):  # [B, C_in, H, W] -> [B, 4 * width, H / stride, W / stride]
        # $y = \sigma(F(x) + W_s x)$, as in the basic block.
        return self.relu(residual_add(self.F(x), self.shortcut(x)))


# %% [markdown]
# ## Shapes, on a real tensor
#
# The first block of ResNet-50's `conv2_x` receives the 64-channel output of the stem and already has
# to widen it to 256 channels, so even at stride 1 its shortcut is a projection (with option B). The
# second block keeps the shape and its shortcut is the identity.

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
    assert not isinstance(first.shortcut, nn.Identity)
    assert isinstance(second.shortcut, nn.Identity)
    # Inner widths: 256 → 64 → 64 → 256.
    convs = [m for m in second.F if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [64, 64, 256]

# %%
if __name__ == "__main__":
    # Both blocks drawn from the modules (the paper's Fig. 5, right, with BN): reduce,
    # transform, expand, and a projection only where 64 channels must become 256.
    draw(nn.Sequential(first, second), x,
         title="Bottleneck(64, 64), then Bottleneck(256, 64)")

# %% [markdown]
# ## Why it is cheaper: counting multiply-adds
#
# A convolution with a $k \times k$ kernel from $c_{in}$ to $c_{out}$ channels costs
# $k^2 \, c_{in} \, c_{out}$ multiply-adds (MACs) per output pixel. Per pixel of a 56×56 map:
#
# | block | layers | MACs per pixel |
# |---|---|---|
# | bottleneck, 256-d in/out | $256 \cdot 64 + 9 \cdot 64 \cdot 64 + 64 \cdot 256$ | 69,632 |
# | basic, 64-d (ResNet-34's `conv2_x`) | $2 \cdot 9 \cdot 64 \cdot 64$ | 73,728 |
# | basic, 256-d (two 3×3 at 4× width) | $2 \cdot 9 \cdot 256 \cdot 256$ | 1,179,648 |
#
# So the bottleneck block carries a 256-channel tensor from block to block for *less* compute than the
# 64-channel basic block, and about $17\times$ less than two 3×3 convolutions at the full 256 width.
# This is how ResNet-50 is deeper and wider than ResNet-34 at nearly the same cost. The paper's own
# footnote says the choice is economic:
#
# > "Deeper non-bottleneck ResNets (e.g., Fig. 5 left) also gain accuracy from increased depth (as
# > shown on CIFAR-10), but are not as economical as the bottleneck ResNets. So the usage of bottleneck
# > designs is mainly due to practical considerations." — He et al. 2015, §4.1
#
# We do not trust the table: `count_macs` runs a block under PyTorch's `FlopCounterMode` and the cell
# checks every row. The counter reports FLOPs and counts one multiply-add as 2 FLOPs, so we halve it.
# It counts convolutions and matrix products only; BN, ReLU and the addition are not in these figures
# (nor in the paper's).

# %%
def count_macs(model: nn.Module, input_shape, device=None) -> int:
    # Multiply-adds of one forward pass of `model` on a zero tensor of `input_shape`.
    device = device or next(model.parameters()).device
    x = torch.zeros(input_shape, device=device)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2  # FlopCounterMode: 1 multiply-add = 2 FLOPs


# %%
if __name__ == "__main__":
    pixels = 56 * 56
    rows = {
        "bottleneck 256-d": (Bottleneck(256, 64), 256,
                             256 * 64 + 9 * 64 * 64 + 64 * 256),
        "basic 64-d": (BasicBlock(64, 64), 64, 2 * 9 * 64 * 64),
        "basic 256-d": (BasicBlock(256, 256), 256, 2 * 9 * 256 * 256),
    }
    macs = {}
    for name, (block, c, per_pixel) in rows.items():
        macs[name] = count_macs(block.to(DEVICE).eval(), (1, c, 56, 56))
        params = n_params(block)
        print(f"{name:18s} MACs {macs[name] / 1e6:8.1f} M   params {params:9,d}")
        assert macs[name] == per_pixel * pixels
    ratio = macs["basic 256-d"] / macs["bottleneck 256-d"]
    print(f"two 3×3 at 256-d cost {ratio:.1f}× the bottleneck")
    assert 16.5 < ratio < 17.5 and macs["bottleneck 256-d"] < macs["basic 64-d"]

# %% [markdown]
# ## Where the stride goes
#
# The first block of `conv3_x`, `conv4_x` and `conv5_x` halves the map. If the stride sits on the
# first 1×1 ("V1", the layout of the paper's Table 1), that 1×1 computes only every second row and
# column and never reads the other three quarters of its input. If the stride sits on the 3×3 ("V1.5",
# torchvision), the first 1×1 runs on the full map and the 3×3 does the subsampling while it looks at
# a 3×3 neighbourhood, so no pixel is skipped. The 3×3 produces a half-size map in both layouts, so
# it costs the same; the whole difference is the first 1×1 running on 4× as many pixels. Parameters
# are identical. The block below is the first block of ResNet-50's `conv3_x` (256 → 128 → 128 → 512
# channels, 56×56 → 28×28).
#
# !!! note "Where we differ from the paper"
#     Our default is `stride_on="3x3"`, as in torchvision, so that torchvision's weights load into our
#     networks ([comparison with torchvision](against_torchvision.md)). `stride_on="1x1"` builds the
#     paper's layout; the MAC counts of the paper's Table 1 are for that layout.

# %%
if __name__ == "__main__":
    v1 = Bottleneck(256, 128, stride=2, stride_on="1x1").to(DEVICE).eval()
    v15 = Bottleneck(256, 128, stride=2, stride_on="3x3").to(DEVICE).eval()
    m1, m15 = count_macs(v1, (1, 256, 56, 56)), count_macs(v15, (1, 256, 56, 56))
    print(f"stride on 1×1 (V1):   {m1 / 1e6:.1f} M MACs")
    print(f"stride on 3×3 (V1.5): {m15 / 1e6:.1f} M MACs  (+{m15 / m1 - 1:.0%})")
    # The difference is exactly the first 1×1 (256 → 128) on 56² instead of 28² pixels.
    extra = (56 * 56 - 28 * 28) * 256 * 128
    assert m15 - m1 == extra
    assert n_params(v1) == n_params(v15)
    with torch.no_grad():
        assert v1(torch.zeros(1, 256, 56, 56, device=DEVICE)).shape == (1, 512, 28, 28)
        # V1's first 1×1 never reads the odd rows: changing them changes nothing it computes.
        x = torch.randn(1, 256, 56, 56, device=DEVICE)
        x_odd_rows_changed = x.clone()
        x_odd_rows_changed[:, :, 1::2, :] += 1.0
        assert torch.equal(v1.F[0](x), v1.F[0](x_odd_rows_changed))
        assert not torch.equal(v15.F[0](x), v15.F[0](x_odd_rows_changed))

# %% [markdown]
# ## Exercises
#
# 1. **Count the MACs (auto-checked).** Write `bottleneck_macs(width, h, w)`, the multiply-adds of
#    `Bottleneck(4 * width, width)` (stride 1, identity shortcut) on an `h × w` map, as a formula.
#    Run `check_bottleneck_macs(bottleneck_macs)`: it compares your formula with `count_macs` on real
#    blocks.
# 2. Why does the first block of ResNet-50's `conv2_x` need a projection shortcut even though its
#    stride is 1? What would option A (see [shortcuts](shortcuts.md)) do there instead?
# 3. Build `Bottleneck(256, 128, stride=2, stride_on="1x1")`. Which input pixels does its first 1×1
#    convolution never read? Check it: change `x[:, :, 1::2, :]` and compare the output of `F[0]`.
# 4. With `groups=32, base_width=4`, what is the inner width of `Bottleneck(256, 64)`, and how many
#    parameters does its 3×3 convolution have compared to the default block?

# %%
def check_bottleneck_macs(formula) -> None:
    # Compares `formula(width, h, w)` with the counted MACs of real blocks.
    for width, h, w in ((1, 5, 5), (16, 8, 6), (64, 14, 14)):
        block = Bottleneck(4 * width, width).eval()
        truth = count_macs(block, (1, 4 * width, h, w), device="cpu")
        got = formula(width, h, w)
        if got != truth:
            hint = "too many" if got > truth else "too few"
            raise AssertionError(
                f"for width={width}, map {h}×{w} your formula gives {got}: {hint}. "
                "Add up k² · c_in · c_out per output pixel for each of the three "
                "convolutions, with the widths of this block")
    print("correct: your formula matches the counted MACs of Bottleneck(4p, p)")
