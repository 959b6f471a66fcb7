# %% [markdown]
# # The same networks as torchvision's: parameters, multiply-adds, weights
#
# The [constructor page](resnet.md) builds ResNet-18, 34, 50, 101 and 152 from the paper's Table 1.
# This page checks the result three ways: parameter counts against torchvision's, multiply-adds
# against Table 1's "FLOPs" row, and, the strongest, torchvision's own weights loaded into our
# networks giving the same logits.

# %%
import re
from collections import OrderedDict

import torch
import torchvision

from labml_style_src.device import DEVICE
from labml_style_src.resnet_v1.bottleneck import count_macs
from labml_style_src.resnet_v1.residual_block import n_params
from labml_style_src.resnet_v1.resnet import TABLE_1, resnet

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
# ## Exercises
#
# 1. **Count option C (auto-checked).** How many more parameters does ResNet-50 have with option C
#    than with option B? Work it out by hand: which blocks get a new $W_s$ under C, and what does each
#    one cost (a 1×1 convolution and a BN)? Then set `resnet50_C_minus_B` to your number and run
#    `check_resnet50_C_minus_B(resnet50_C_minus_B)`.
# 2. Build ResNet-50 with `stride_on="1x1"` and with `stride_on="3x3"`, and load torchvision's
#    ResNet-50 state dict into both with `from_torchvision`. Both loads succeed: what do the two
#    layouts share that makes this possible? Only one of them reproduces torchvision's logits. Which
#    one, and what does the other compute differently?
# 3. From ResNet-50's 4.09 G multiply-adds at 224×224, predict its count at 160×160, then measure it
#    with `count_macs`. Which layer does not scale with the number of positions, and why does that
#    barely show?

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
