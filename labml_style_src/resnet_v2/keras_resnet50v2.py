# %% [markdown]
# # ResNet50V2: the Keras layout in PyTorch
#
# `keras.applications.ResNet50V2` is the pre-activation ResNet most people meet first. It is not
# quite the network of the paper's appendix: the stride sits in the *last* block of a stage, a
# downsampling identity shortcut is a 1×1 max-pool, and a few convolutions carry biases. This page
# writes the Keras layout in PyTorch, one Keras layer per module with Keras' names, and proves the
# port by its parameter counts: trainable parameters plus BN moving statistics must give the totals
# Keras reports for ResNet50V2, ResNet101V2 and ResNet152V2.
#
# > "This motivates us to propose a new residual unit, which makes training easier and improves
# > generalization." — He et al. 2016, Abstract

# %%
from collections import OrderedDict

import torch
from torch import nn

from labml_style_src.device import DEVICE
from labml_style_src.resnet_v1.residual_block import n_params, residual_add
from labml_style_src.resnet_v1.resnet import TABLE_1, resnet

# %% [markdown]
# ## Keras' BatchNormalization
#
# Keras builds every BN of this model with `epsilon=1.001e-5` and its default `momentum=0.99`, which
# weights the *old* running average; PyTorch's `momentum` weights the new batch, so it is 0.01 here.

# %%
def keras_bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1.001e-5, momentum=0.01)


# %% [markdown]
# ## `block2`: one pre-activation bottleneck
#
# The block is the full pre-activation bottleneck of the [previous page](preact_resnet.md), with
# Keras' choices:
#
# - `preact`: BN → ReLU of the input, shared by $F$ and a projecting shortcut;
# - the shortcut is either `_0_conv` (a 1×1 conv *with bias* on the pre-activated input), or the raw
#   input itself, subsampled by `MaxPool2d(1, stride)` when the block has a stride: a 1×1 max-pool
#   with stride 2 just keeps every second pixel;
# - $F$: `_1_conv` 1×1 (no bias) → BN → ReLU → zero-pad 1 → `_2_conv` 3×3 with the stride (no
#   bias) → BN → ReLU → `_3_conv` 1×1 *with bias*. There is no BN after `_3_conv`.
#
# Modules carry the Keras layer names, so `conv3.block1.F.1_conv.weight` is Keras'
# `conv3_block1_1_conv/kernel`.

# %%
class Block2(nn.Module):
    expansion = 4

    # `width`: channels of the 3×3, as in every block on this site (Keras calls it `filters`).
    def __init__(self, c_in: int, width: int, stride: int = 1, conv_shortcut: bool = False):
        super().__init__()
        c_out = 4 * width
        self.preact = nn.Sequential(OrderedDict(preact_bn=keras_bn(c_in), preact_relu=nn.ReLU()))
        if conv_shortcut:
            self.shortcut = nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride)  # `_0_conv`, bias
        else:
            self.shortcut = nn.MaxPool2d(kernel_size=1, stride=stride) if stride > 1 else nn.Identity()
        self.shortcut_reads_preact = conv_shortcut
        self.F = nn.Sequential(OrderedDict([
            ("1_conv", nn.Conv2d(c_in, width, kernel_size=1, bias=False)),
            ("1_bn", keras_bn(width)), ("1_relu", nn.ReLU()),
            ("2_pad", nn.ZeroPad2d(1)),
            ("2_conv", nn.Conv2d(width, width, kernel_size=3, stride=stride, bias=False)),
            ("2_bn", keras_bn(width)), ("2_relu", nn.ReLU()),
            ("3_conv", nn.Conv2d(width, c_out, kernel_size=1)),
        ]))

    def forward(self, x):  # x: [B, C_in, H, W] -> [B, 4 * width, H / stride, W / stride]
        a = self.preact(x)
        # `_out` = Add([shortcut, x]): $F(\mathrm{preact}(x)) + h$, nothing after the addition.
        return residual_add(self.F(a), self.shortcut(a if self.shortcut_reads_preact else x))


# %% [markdown]
# ## `stack2`: where the stride goes
#
# Keras' stage: the first block projects (at stride 1), the middle blocks are identities, and the
# **last** block carries the stride. So the map of `conv2` is halved at the end of `conv2`, not at the
# start of `conv3` as in ResNet v1. `conv5` is built with `stride1=1` and never halves.

# %%
def stack2(c_in: int, width: int, blocks: int, stride1: int = 2) -> nn.Sequential:
    # `blocks` >= 2: block1 projects, block2 … block(n-1) are identities, block(n) has the stride.
    layout = [Block2(c_in, width, conv_shortcut=True)]
    layout += [Block2(4 * width, width) for _ in range(2, blocks)]
    layout += [Block2(4 * width, width, stride=stride1)]
    return nn.Sequential(OrderedDict((f"block{i + 1}", block) for i, block in enumerate(layout)))


# %% [markdown]
# ## The network
#
# The stem is a 7×7/2 convolution with bias and *no* BN or ReLU (each block pre-activates its own
# input), zero padding done explicitly as in Keras, then a 3×3/2 max-pool over a zero-padded map.
# After the last stage: `post_bn` → `post_relu`, global average pooling and the classifier
# (`predictions`, a `Dense` layer; we return logits, Keras applies the softmax inside).
# The block counts are the bottleneck columns of Table 1 of ResNet v1, which we import.

# %%
class ResNetV2(nn.Module):
    def __init__(self, blocks_per_stage=(3, 4, 6, 3), num_classes: int = 1000):
        super().__init__()
        self.stem = nn.Sequential(OrderedDict(
            conv1_pad=nn.ZeroPad2d(3), conv1_conv=nn.Conv2d(3, 64, kernel_size=7, stride=2),
            pool1_pad=nn.ZeroPad2d(1), pool1_pool=nn.MaxPool2d(kernel_size=3, stride=2),
        ))
        n2, n3, n4, n5 = blocks_per_stage
        self.stages = nn.Sequential(OrderedDict(
            conv2=stack2(64, 64, n2), conv3=stack2(256, 128, n3),
            conv4=stack2(512, 256, n4), conv5=stack2(1024, 512, n5, stride1=1),
        ))
        self.post = nn.Sequential(OrderedDict(post_bn=keras_bn(2048), post_relu=nn.ReLU()))
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
        raise ValueError(f"Keras has ResNet50V2, ResNet101V2 and ResNet152V2: depth must be one of "
                         f"{list(KERAS_DEPTHS)}, got {depth}")
    return ResNetV2(TABLE_1[depth].blocks_per_stage, num_classes)


# %% [markdown]
# ## Counting like Keras
#
# `model.summary()` in Keras reports *trainable* parameters and *non-trainable* ones; the latter are
# BN's moving mean and moving variance. In PyTorch those are buffers (`running_mean`,
# `running_var`), so we count them separately. (`num_batches_tracked` has no Keras counterpart.)

# %%
def keras_counts(model: nn.Module) -> dict:
    trainable = n_params(model)  # every parameter trains; BN's statistics are buffers
    moving = sum(m.running_mean.numel() + m.running_var.numel()
                 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    return {"trainable": trainable, "non-trainable": moving, "total": trainable + moving}


# %%
if __name__ == "__main__":
    model = resnet_v2_keras(50).to(DEVICE)
    counts = keras_counts(model)
    print("ResNet50V2", {k: f"{v:,}" for k, v in counts.items()})
    # Keras: Total params 25,613,800; Trainable 25,568,360; Non-trainable 45,440.
    assert counts == {"trainable": 25_568_360, "non-trainable": 45_440, "total": 25_613_800}

# %% [markdown]
# ResNet101V2 and ResNet152V2 (44,675,560 and 60,380,648 in total) are checked in the
# [tests](../tests/test_resnet_v2.md#test_keras_resnet_v2_counts), to keep this page fast.
#
# ## Where the map halves
#
# At 224×224 the stem leaves 56×56. We print the output of every block of `conv2` and `conv3`: the
# first block of `conv3` still works on 28×28, because `conv2` already halved the map in its last
# block.

# %%
if __name__ == "__main__":
    model.eval()
    with torch.no_grad():
        h = model.stem(torch.randn(1, 3, 224, 224, device=DEVICE))
        print("stem         ", tuple(h.shape))
        shapes = {}
        for stage_name, stage in model.stages.named_children():
            for block_name, block in stage.named_children():
                h = block(h)
                shapes[stage_name, block_name] = tuple(h.shape[1:])
                if stage_name in ("conv2", "conv3"):
                    print(f"{stage_name}.{block_name:<8}", tuple(h.shape))
            print(f"{stage_name} out    ", tuple(h.shape))
    assert shapes["conv2", "block2"] == (256, 56, 56) and shapes["conv2", "block3"] == (256, 28, 28)
    assert shapes["conv3", "block1"] == (512, 28, 28) and shapes["conv3", "block4"] == (512, 14, 14)
    assert shapes["conv4", "block6"] == (1024, 7, 7) and shapes["conv5", "block3"] == (2048, 7, 7)

# %% [markdown]
# ## Why the padding is explicit
#
# The stem has no ReLU before its max-pool, so the map being pooled has negative values. Keras pads
# it with zeros and then pools; `nn.MaxPool2d(3, 2, padding=1)` pads with $-\infty$. On the border the
# two differ wherever all real values in a window are negative.

# %%
if __name__ == "__main__":
    with torch.no_grad():
        conv1 = model.stem.conv1_conv(model.stem.conv1_pad(torch.randn(1, 3, 224, 224, device=DEVICE)))
        keras_pool = model.stem.pool1_pool(model.stem.pool1_pad(conv1))
        torch_pool = nn.MaxPool2d(3, 2, padding=1)(conv1)
    differ = (keras_pool != torch_pool)
    print("pooled map", tuple(keras_pool.shape), "| positions that differ:", differ.sum().item(),
          "| all on the border:", not differ[..., 1:-1, 1:-1].any().item())
    assert keras_pool.shape == torch_pool.shape and differ.any() and not differ[..., 1:-1, 1:-1].any()

# %% [markdown]
# ## Side by side with the ResNet v1 constructor
#
# | | ResNet-50, [v1 constructor](../resnet_v1/resnet.md) (torchvision layout) | Keras ResNet50V2 |
# |---|---|---|
# | stem | conv 7×7/2 (no bias) → BN → ReLU → max-pool 3×3/2 | zero-pad → conv 7×7/2 **with bias** → zero-pad → max-pool 3×3/2; no BN, no ReLU |
# | unit | conv–BN–ReLU ×3 (no BN-ReLU after the last conv), add, ReLU | BN–ReLU, then 1×1 → BN–ReLU → 3×3 → BN–ReLU → 1×1, add; nothing after |
# | stride | first block of `conv3_x`…`conv5_x`, on the 3×3 | **last** block of `conv2`…`conv4`, on the 3×3; `conv5` stride 1 |
# | projection | first block of each stage: 1×1 conv + BN on $x$ | first block of each stage: 1×1 conv with bias on BN–ReLU($x$) |
# | identity at stride 2 | — (never needed) | `MaxPool2d(1, 2)` on the raw $x$ |
# | conv biases | none | stem, every `_3_conv`, every `_0_conv` |
# | BN | eps 1e-5 | eps 1.001e-5 |
# | head | GAP → fc | `post_bn` → ReLU → GAP → fc |
#
# The convolution weights have exactly the same shapes in both; the parameter difference is biases
# and BN, which the cell below breaks down.

# %%
def breakdown(model: nn.Module) -> dict:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return {
        "conv weights": sum(m.weight.numel() for m in convs),
        "conv biases": sum(m.bias.numel() for m in convs if m.bias is not None),
        "BN γ, β": n_params(model, nn.BatchNorm2d),
        "fc": n_params(model.fc),
    }


if __name__ == "__main__":
    v1, v2 = breakdown(resnet(50)), breakdown(model)
    print(f"{'':<14}{'v1 ResNet-50':>14}{'ResNet50V2':>14}{'difference':>12}")
    for key in v1:
        print(f"{key:<14}{v1[key]:>14,}{v2[key]:>14,}{v2[key] - v1[key]:>+12,}")
    print(f"{'total':<14}{sum(v1.values()):>14,}{sum(v2.values()):>14,}{sum(v2.values()) - sum(v1.values()):>+12,}")
    assert v1["conv weights"] == v2["conv weights"]
    assert sum(v1.values()) == 25_557_032  # torchvision's resnet50

# %% [markdown]
# !!! note "Where Keras differs from the paper"
#     The paper's appendix pre-activates after conv$_1$ through the first unit and adds one BN–ReLU
#     after the last addition; Keras does both the same way. The stride in the *last* block of a
#     stage, the `MaxPool2d(1, 2)` identity and the conv biases are Keras' choices,
#     not the paper's; the [previous page](preact_resnet.md) follows the authors' code instead.
#     Bad depths raise a `ValueError` naming 50, 101 and 152
#     ([test](../tests/test_resnet_v2.md#test_bad_keras_depth)).
#
# ## Exercises
#
# 1. **Where does the map halve? (auto-checked).** For ResNet50V2, give a dict from stage name to the
#    number (1-based) of the block whose output is half the size of its input, or `None` if no block
#    of that stage halves: `check_where_map_halves({"conv2": ..., "conv3": ..., "conv4": ..., "conv5": ...})`.
# 2. Count by hand the conv biases of ResNet50V2 (stem, `_0_conv`, `_3_conv`) and check your sum
#    against the `conv biases` row above.
# 3. Move the stride to the first block of each stage (v1 style) in `stack2`. Does the parameter count
#    change? Which blocks would then need a projection or a max-pool shortcut?
# 4. Keras' `_3_conv` has a bias, but the next thing its output meets (after the addition) is the
#    next block's BN. Is that bias redundant? (Hint: the BN sees $F + h$, and $h$ has no bias.)

# %%
def check_where_map_halves(answer: dict) -> None:
    # Runs ResNet50V2 on a 64×64 image and finds the block of each stage that halves the map. Only
    # shapes matter, so it runs on the "meta" device, which computes shapes and allocates no data.
    with torch.device("meta"):
        model = resnet_v2_keras(50)
    truth = {}
    with torch.no_grad():
        h = model.stem(torch.zeros(1, 3, 64, 64, device="meta"))
        for stage_name, stage in model.stages.named_children():
            truth[stage_name] = None
            for i, block in enumerate(stage):
                out = block(h)
                if out.shape[-1] * 2 == h.shape[-1]:
                    truth[stage_name] = i + 1
                h = out
    for stage_name, block in truth.items():
        if answer.get(stage_name) != block:
            raise AssertionError(f"{stage_name}: you say {answer.get(stage_name)!r}, "
                                 f"but the block that halves the map is {block!r}")
    print("correct: conv2–conv4 halve the map in their last block, conv5 keeps it")
