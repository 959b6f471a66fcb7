# %% [markdown]
# # ResNet50V2: the Keras layout in PyTorch
#
# `keras.applications.ResNet50V2` is the pre-activation ResNet most people meet first, and not quite
# the network of the paper's appendix: the stride sits in the *last* block of a stage, a downsampling
# identity shortcut is a 1×1 max-pool, and a few convolutions carry biases. This page writes it in
# PyTorch, one Keras layer per module with Keras' name, and checks every layer's output shape and
# parameter count, and the totals Keras reports for ResNet50V2, ResNet101V2 and ResNet152V2.
#
# > "This motivates us to propose a new residual unit, which makes training easier and improves
# > generalization." — He et al. 2016, Abstract

# %%
from collections import OrderedDict

import torch
from torch import nn

from labml_style_src.device import DEVICE
from labml_style_src.diagrams import draw
from labml_style_src.paper_tables import (
    KERAS_RESNET50V2_TRAINABLE,
    KERAS_RESNET_V2_TOTAL,
)
from labml_style_src.resnet_v1.residual_block import n_params, residual_add
from labml_style_src.resnet_v1.resnet import TABLE_1, resnet
from labml_style_src.resnet_v2.preact_resnet import param_breakdown

# %% [markdown]
# ## `block2`: one pre-activation bottleneck
#
# The full pre-activation bottleneck of the [previous page](preact_resnet.md), with Keras' choices:
#
# - `preact`: BN → ReLU of the input, shared by $F$ and a projecting shortcut;
# - the shortcut: `_0_conv` (a 1×1 conv *with bias* on the pre-activated input), or the raw input,
#   subsampled by `MaxPool2d(1, stride)` (it keeps every second pixel) when the block has a stride;
# - $F$: `_1_conv` 1×1 (no bias) → BN → ReLU → zero-pad 1 → `_2_conv` 3×3 with the stride (no
#   bias) → BN → ReLU → `_3_conv` 1×1 *with bias*. There is no BN after `_3_conv`.
#
# Modules carry Keras' layer names: `conv3.block1.F.1_conv.weight` is `conv3_block1_1_conv/kernel`.

# %%
def keras_bn(c: int) -> nn.BatchNorm2d:
    # Keras: `epsilon=1.001e-5`, `momentum=0.99` weighting the *old* running average;
    # PyTorch's `momentum` weights the new batch, so 0.01 is the same rule.
    return nn.BatchNorm2d(c, eps=1.001e-5, momentum=0.01)


class Block2(nn.Module):
    expansion = 4

    # `width`: channels of the 3×3, as in every block on this site (Keras calls it `filters`).
    def __init__(self, c_in: int, width: int, stride: int = 1,
                 conv_shortcut: bool = False):
        super().__init__()
        c_out = 4 * width
        self.preact = nn.Sequential(OrderedDict(preact_bn=keras_bn(c_in),
                                                preact_relu=nn.ReLU()))
        if conv_shortcut:  # `_0_conv`, with bias
            self.shortcut = nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride)
        elif stride > 1:
            self.shortcut = nn.MaxPool2d(kernel_size=1, stride=stride)
        else:
            self.shortcut = nn.Identity()
        self.shortcut_reads_preact = conv_shortcut
        self.F = nn.Sequential(OrderedDict([
            ("1_conv", nn.Conv2d(c_in, width, kernel_size=1, bias=False)),
            ("1_bn", keras_bn(width)), ("1_relu", nn.ReLU()),
            ("2_pad", nn.ZeroPad2d(1)),
            ("2_conv", nn.Conv2d(width, width, 3, stride=stride, bias=False)),
            ("2_bn", keras_bn(width)), ("2_relu", nn.ReLU()),
            ("3_conv", nn.Conv2d(width, c_out, kernel_size=1)),
        ]))

    def forward(self, x):  # x: [B, C_in, H, W] -> [B, 4 * width, H/stride, W/stride]
        a = self.preact(x)
        h = self.shortcut(a if self.shortcut_reads_preact else x)
        # `_out` = Add([shortcut, x]): $F(\mathrm{preact}(x)) + h$, nothing after the addition.
        return residual_add(self.F(a), h)


# %% [markdown]
# ## `stack2`: where the stride goes
#
# Keras' stage: the first block projects (at stride 1), the middle ones are identities, the **last**
# carries the stride. So `conv2` halves its map at its end, not at the start of `conv3` as in ResNet
# v1; `conv5`, built with `stride1=1`, never halves.

# %%
def stack2(c_in: int, width: int, blocks: int, stride1: int = 2) -> nn.Sequential:
    # `blocks` >= 2: block1 projects, block2 … block(n-1) are identities, block(n) has the stride.
    layout = [Block2(c_in, width, conv_shortcut=True)]
    layout += [Block2(4 * width, width) for _ in range(2, blocks)]
    layout += [Block2(4 * width, width, stride=stride1)]
    return nn.Sequential(OrderedDict((f"block{i}", block)
                                     for i, block in enumerate(layout, start=1)))


# %% [markdown]
# ## The network
#
# The stem is a 7×7/2 convolution with bias and *no* BN or ReLU (each block pre-activates its own
# input), then a 3×3/2 max-pool, each after explicit zero padding as in Keras. The pool's padding
# must be explicit: its input has negative values, and `nn.MaxPool2d(3, 2, padding=1)` pads with
# $-\infty$, which differs on the border wherever a window's real values are all negative
# ([test](../tests/test_resnet_v2.md#test_keras_stem_pads_with_zeros)). After the last stage:
# `post_bn` → `post_relu`, global average pooling and the classifier (`predictions`; we return
# logits, Keras applies the softmax inside). The block counts are ResNet v1's Table 1.

# %%
class ResNetV2(nn.Module):
    def __init__(self, blocks_per_stage=(3, 4, 6, 3), num_classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(OrderedDict(
            conv1_pad=nn.ZeroPad2d(3), conv1_conv=nn.Conv2d(3, 64, 7, stride=2),
            pool1_pad=nn.ZeroPad2d(1), pool1_pool=nn.MaxPool2d(3, stride=2),
        ))
        n2, n3, n4, n5 = blocks_per_stage
        self.stages = nn.Sequential(OrderedDict(
            conv2=stack2(64, 64, n2), conv3=stack2(256, 128, n3),
            conv4=stack2(512, 256, n4), conv5=stack2(1024, 512, n5, stride1=1),
        ))
        self.post = nn.Sequential(OrderedDict(post_bn=keras_bn(2048),
                                              post_relu=nn.ReLU()))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, num_classes)
        self.reset_parameters()

    def reset_parameters(self):
        # Keras defaults: Glorot-uniform kernels, zero biases (BN starts at γ = 1, β = 0 in both).
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):  # x: [B, 3, 224, 224] -> logits [B, num_classes]
        x = self.post(self.stages(self.stem(x)))  # [B, 2048, 7, 7]
        return self.fc(torch.flatten(self.pool(x), 1))


KERAS_DEPTHS = (50, 101, 152)


def resnet_v2_keras(depth: int = 50, num_classes: int = 1000) -> ResNetV2:
    # ResNet50V2 / ResNet101V2 / ResNet152V2.
    if depth not in KERAS_DEPTHS:
        raise ValueError(f"Keras has ResNet50V2, ResNet101V2 and ResNet152V2: depth "
                         f"must be one of {list(KERAS_DEPTHS)}, got {depth}")
    return ResNetV2(TABLE_1[depth].blocks_per_stage, num_classes)


# %% [markdown]
# ## Counting like Keras, layer by layer
#
# Keras' `model.summary()` lists every layer with its output shape and parameter count, then the
# totals, *trainable* and *non-trainable* (BN's moving mean and variance: PyTorch's running buffers).
# `keras_layers` lists our port the same way: Keras' names (automatic ones for the unnamed stride-2
# max-pool), shapes with channels last, BN's moving statistics counted. As matching totals could hide
# two errors that cancel, a [test](../tests/test_resnet_v2.md#test_keras_layers_match_the_keras_layout)
# compares every row with the layout derived from the Keras source; ResNet101V2 and ResNet152V2
# (44,675,560 and 60,380,648) are counted in [another](../tests/test_resnet_v2.md#test_keras_resnet_v2_counts).
#
# The cell prints the stem and the block outputs of `conv2` and `conv3`: the first block of `conv3`
# still works on 28×28, because `conv2` already halved the map in its last block.

# %%
def keras_name(path: str) -> str:
    # `stages.conv3.block1.F.1_conv` -> `conv3_block1_1_conv`, without our containers.
    containers = ("stem", "stages", "post", "preact", "F")
    name = "_".join(p for p in path.split(".") if p not in containers)
    name = name.replace("shortcut", "0_conv")
    return {"pool": "avg_pool", "fc": "predictions"}.get(name, name)


def keras_layers(model: nn.Module, size: int = 224) -> dict:
    # Keras layer name -> (output shape without the batch, channels last; parameters).
    rows = {}

    def record(name):
        def hook(module, inputs, out):
            shape = tuple(out.shape[1:])
            if isinstance(module, nn.AdaptiveAvgPool2d):
                shape = shape[:1]  # Keras' global pooling returns (C,)
            elif out.dim() == 4:
                shape = shape[1:] + shape[:1]  # [C, H, W] -> Keras' (H, W, C)
            # A layer's own parameters, BN's moving mean and variance included; `_out`
            # (Keras' Add layer) has none.
            bn = isinstance(module, nn.BatchNorm2d)
            moving = 2 * module.num_features if bn else 0
            own = 0 if isinstance(module, Block2) else n_params(module) + moving
            rows[name] = (shape, own)
        return hook

    hooks, pools = [], []
    for path, module in model.named_modules():
        if isinstance(module, Block2):
            name = keras_name(path) + "_out"
        elif isinstance(module, nn.MaxPool2d) and path.endswith("shortcut"):
            # Unnamed in Keras, which numbers it: max_pooling2d, max_pooling2d_1, …
            name = "max_pooling2d" + (f"_{len(pools)}" if pools else "")
            pools.append(name)
        elif path and not list(module.children()) and type(module) is not nn.Identity:
            name = keras_name(path)
        else:
            continue  # the model, our containers, identity shortcuts: no Keras layer
        hooks.append(module.register_forward_hook(record(name)))
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size, device=next(model.parameters()).device))
    for hook in hooks:
        hook.remove()
    return rows


if __name__ == "__main__":
    model = resnet_v2_keras(50).to(DEVICE).eval()
    layers = keras_layers(model)
    total, trainable = sum(p for _, p in layers.values()), n_params(model)
    print(f"ResNet50V2: {len(layers)} layers, {total:,d} parameters, "
          f"{trainable:,d} trainable")
    assert (total, trainable) == (KERAS_RESNET_V2_TOTAL[50], KERAS_RESNET50V2_TRAINABLE)
    # Where the map halves: the stem, then each block's output in `conv2` and `conv3`.
    out = {name[:-4]: row[0] for name, row in layers.items() if name.endswith("_out")}
    shown = [name for name in layers if name.startswith(("conv1", "pool1"))]
    shown += [f"{name}_out" for name in out if name.startswith(("conv2", "conv3"))]
    for name in shown:
        print(f"{name:<18} {str(layers[name][0]):<16} {layers[name][1]:>8,d}")
    assert out["conv2_block2"] == (56, 56, 256) and out["conv2_block3"] == (28, 28, 256)
    assert out["conv3_block1"] == (28, 28, 512) and out["conv3_block4"] == (14, 14, 512)
    assert out["conv4_block6"] == (7, 7, 1024) and out["conv5_block3"] == (7, 7, 2048)

# %%
if __name__ == "__main__":
    # `conv3` of the model above (the two equal middle blocks drawn once, ×2). The
    # projection reads the pre-activated input; the last block halves the map.
    draw(model.stages.conv3, torch.zeros(1, 256, 28, 28, device=DEVICE), fold=True,
         title="conv3 of ResNet50V2")

# %% [markdown]
# ## Side by side with the ResNet v1 constructor
#
# | | ResNet-50, [v1 constructor](../resnet_v1/resnet.md) (torchvision layout) | Keras ResNet50V2 |
# |---|---|---|
# | stem | conv 7×7/2 (no bias) → BN → ReLU → max-pool 3×3/2 | zero-pad → conv 7×7/2 **with bias** → zero-pad → max-pool 3×3/2; no BN, no ReLU |
# | unit | 1×1 → BN–ReLU → 3×3 → BN–ReLU → 1×1 → BN, add, ReLU | BN–ReLU, then 1×1 → BN–ReLU → 3×3 → BN–ReLU → 1×1, add; nothing after |
# | stride | first block of `conv3_x`…`conv5_x`, on the 3×3 | **last** block of `conv2`…`conv4`, on the 3×3; `conv5` stride 1 |
# | projection | first block of each stage: 1×1 conv + BN on $x$ | first block of each stage: 1×1 conv with bias on BN–ReLU($x$) |
# | identity at stride 2 | — (never needed) | `MaxPool2d(1, 2)` on the raw $x$ |
# | conv biases | none | stem, every `_3_conv`, every `_0_conv` |
# | BN | eps 1e-5 | eps 1.001e-5 |
# | head | GAP → fc | `post_bn` → ReLU → GAP → fc |
#
# The convolution weights have the same shapes in both, block by block and in the stem
# ([test](../tests/test_resnet_v2.md#test_keras_conv_weights_have_resnet50_shapes)), so the
# parameter difference is conv biases and BN, which the cell breaks down.

# %%
if __name__ == "__main__":
    resnet50 = resnet(50)
    v1, v2 = param_breakdown(resnet50), param_breakdown(model)
    print(f"{'':<6}{'v1 ResNet-50':>14}{'ResNet50V2':>14}{'difference':>12}")
    for key in v1:  # conv: weights and biases; BN: γ and β
        print(f"{key:<6}{v1[key]:>14,}{v2[key]:>14,}{v2[key] - v1[key]:>+12,}")
    assert v1["fc"] == v2["fc"] and v1["total"] == 25_557_032  # torchvision's resnet50

# %% [markdown]
# !!! note "Where Keras differs from the paper"
#     Like the paper's appendix, Keras pre-activates after conv$_1$ through the first unit and adds
#     one BN–ReLU after the last addition; its other departures above are its own choices, and the
#     [previous page](preact_resnet.md) follows the authors' code. Bad depths raise a `ValueError`
#     naming 50, 101 and 152 ([test](../tests/test_resnet_v2.md#test_bad_keras_depth)).
#
# ## Exercises
#
# 1. **Other input sizes (auto-checked).** Keras' ResNet50V2 takes any input of at least 32×32.
#    Without running the network, work out the side of the map that `post_bn` sees for a 299×299
#    and a 225×225 input (for 224×224 it is printed above). Write them as
#    `final_map_size = {299: ..., 225: ...}` and run `check_final_map_size(final_map_size)`.
# 2. Count by hand the conv biases of ResNet50V2 (stem, `_0_conv`, `_3_conv`) and check your sum
#    against the difference in the `conv` row above.
# 3. Move the stride to the first block of each stage (v1 style) in `stack2`. Does the parameter count
#    change? Which blocks would then need a projection or a max-pool shortcut?
# 4. Keras' `_3_conv` has a bias, but the next thing its output meets (after the addition) is the
#    next block's BN. Is that bias redundant? (Hint: the BN sees $F + h$, and $h$ has no bias.)

# %%
def check_final_map_size(answer: dict) -> None:
    # Measures the map that `post_bn` sees for each size, on the "meta" device (shapes only).
    if not {299, 225} <= set(answer):
        raise AssertionError("give the side for both sizes: 299 and 225")
    with torch.device("meta"):
        model = resnet_v2_keras(50)
        for size, side in answer.items():
            truth = model.stages(model.stem(torch.zeros(1, 3, size, size))).shape[-1]
            if side != truth:
                raise AssertionError(
                    f"for {size}×{size} you give {side}. Follow the side through every "
                    "layer that changes it, padding included: a Keras layer without "
                    "padding of its own maps a side s to (s - kernel) // stride + 1")
    print("correct:", ", ".join(f"{size}² -> {side}²" for size, side in answer.items()))
