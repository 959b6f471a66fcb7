# %% [markdown]
# # Shortcut options A, B and C
#
# When a block halves the feature map and widens the channels, $x$ no longer has the shape of $F(x)$,
# and the shortcut has to change it. The paper tries three answers, named A, B and C. This page writes
# each as a small function with one signature, `(c_in, c_out, stride) -> nn.Module`, and compares
# them on parameters and on what they output.
#
# > "The dimensions of $x$ and $F$ must be equal in Eqn.(1)." — He et al. 2015, §3.2
#
# > "When the dimensions increase (dotted line shortcuts in Fig. 3), we consider two options: (A) The
# > shortcut still performs identity mapping, with extra zero entries padded for increasing
# > dimensions. This option introduces no extra parameter; (B) The projection shortcut … is used to
# > match dimensions (done by 1×1 convolutions)." — He et al. 2015, §3.3
#
# > "when the shortcuts go across feature maps of two sizes, they are performed with a stride of 2."
# > — He et al. 2015, §3.3
#
# In its ImageNet experiments (§4.1) the paper adds option C, in which *every* shortcut is a
# projection, even where the shapes already match, and compares the three on ResNet-34.

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.nn import functional as nnf  # not `F`: `F` is the residual branch
from torchvision.transforms.v2.functional import horizontal_flip, ten_crop

from labml_style_src.device import DEVICE
from labml_style_src.diagrams import draw
from labml_style_src.paper_tables import (
    RESNET_34_EXTRA_PROJECTIONS_C,
    RESNET_TABLE_1,
    RESNET_TABLE_2,
    RESNET_TABLE_3,
)
from labml_style_src.resnet_v1.residual_block import (
    BasicBlock,
    conv1x1,
    identity_or_projection,
    n_params,
)

# %% [markdown]
# ## Option A: identity, subsampled and zero-padded
#
# Option A keeps the shortcut free of parameters. Where the map halves, it keeps every second row and
# column, `x[:, :, ::2, ::2]` (the "stride of 2" of the quote); where the channels grow, it appends
# zero channels. We append them after the existing ones; some reimplementations split them between
# front and back, which only permutes channels. For an odd size $H$ a 3×3 convolution with padding 1
# and stride 2 gives $\lceil H/2 \rceil$ rows, and so do `::2` and a 1×1 convolution of stride 2,
# so all three options agree with $F$ on odd maps too (checked below on a 7×7 map).

# %%
class ZeroPadShortcut(nn.Module):
    # Option A: $x$ subsampled by `stride`, then `c_out - c_in` zero channels appended. No parameters.
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        if c_out < c_in:
            raise ValueError(f"option A can only add channels, "
                             f"got c_in={c_in} > c_out={c_out}")
        self.extra, self.stride = c_out - c_in, stride

    def forward(self, x):  # [B, C_in, H, W] -> [B, C_out, ceil(H / s), ceil(W / s)]
        x = x[:, :, ::self.stride, ::self.stride]
        # Pad the channel dimension at its end: `(W_left, W_right, H_top, H_bottom, C_front, C_back)`.
        return nnf.pad(x, (0, 0, 0, 0, 0, self.extra))

    def extra_repr(self):
        return f"extra_channels={self.extra}, stride={self.stride}"


def shortcut_A(c_in: int, c_out: int, stride: int) -> nn.Module:
    # Identity where the shape is unchanged, else subsample + zero-pad.
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return ZeroPadShortcut(c_in, c_out, stride)


# %% [markdown]
# ## Option B: project only where the shape changes
#
# This is the shortcut the [basic block page](residual_block.md) already uses, `identity_or_projection`:
# a 1×1 convolution with the block's stride, followed by BN, where the shape changes, and the identity
# everywhere else. It is torchvision's default.

# %%
shortcut_B = identity_or_projection


# %% [markdown]
# ## Option C: project everywhere
#
# Every block gets its own $W_s$, even where the shape is unchanged. `SHORTCUTS` maps the paper's letters
# to the three functions, and `get_shortcut` is what the [constructor](resnet.md) calls: a letter, or
# any function with the same signature (later chapters pass their own), and a clear error otherwise.

# %%
def shortcut_C(c_in: int, c_out: int, stride: int) -> nn.Module:
    # $W_s$ = 1×1 conv + BN in every block.
    return nn.Sequential(conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))


SHORTCUTS = {"A": shortcut_A, "B": shortcut_B, "C": shortcut_C}


def get_shortcut(option):
    # Accepts "A" / "B" / "C" or a function with the shortcut signature.
    if callable(option):
        return option
    if option not in SHORTCUTS:
        raise ValueError(f"unknown shortcut option {option!r}; "
                         f"choose one of {sorted(SHORTCUTS)} or pass a function")
    return SHORTCUTS[option]


# %% [markdown]
# ## Parameters
#
# A transition from 16 to 32 channels at stride 2 (the start of the second stage of a CIFAR ResNet),
# and a block that keeps 32 channels. Option A costs nothing anywhere; B pays for $W_s$ (a 1×1
# convolution, $c_{in} c_{out}$ weights, plus BN's $2 c_{out}$) only at the transition; C pays in
# every block.

# %%
if __name__ == "__main__":
    print("option  16→32 /2   32→32")
    for name, make in SHORTCUTS.items():
        down, keep = n_params(make(16, 32, 2)), n_params(make(32, 32, 1))
        print(f"  {name}     {down:6d}   {keep:6d}")
    projection = 16 * 32 + 2 * 32  # 1×1 weights + BN's γ, β
    assert [n_params(make(16, 32, 2)) for make in SHORTCUTS.values()] == [
        0, projection, projection]
    assert [n_params(make(32, 32, 1)) for make in SHORTCUTS.values()] == [
        0, 0, 32 * 32 + 2 * 32]

# %%
if __name__ == "__main__":
    # Each option in a 16→32 block and a 32→32 block, drawn from the code: A subsamples
    # and pads, B projects only where the shape changes, C projects in both blocks.
    def two_blocks(make):
        return nn.Sequential(BasicBlock(16, 32, 2, make), BasicBlock(32, 32, 1, make))

    draw({f"option {name}": two_blocks(make) for name, make in SHORTCUTS.items()},
         torch.zeros(1, 16, 32, 32))

# %% [markdown]
# ## Outputs
#
# Option A passes the subsampled input through unchanged in the first `c_in` channels and adds
# exact zeros in the rest. B and C output a learned linear mix of all input channels in every output
# channel (after BN). In a block, $y = \sigma(F(x) + \text{shortcut}(x))$, so with option A the new
# channels are just $\sigma(F(x))$: they have no shortcut at all. That is the paper's explanation for
# why B does a little better than A.

# %%
if __name__ == "__main__":
    torch.manual_seed(0)
    x = torch.randn(2, 16, 32, 32, device=DEVICE)  # [B, 16, 32, 32]
    outs = {}
    with torch.no_grad():
        for name, make in SHORTCUTS.items():
            outs[name] = make(16, 32, 2).to(DEVICE).eval()(x)  # [B, 32, 16, 16]
            zero = (outs[name] == 0).all(dim=(0, 2, 3)).sum().item()
            print(f"option {name}: shape {tuple(outs[name].shape)}, "
                  f"all-zero channels: {zero} of 32")
    a = outs["A"]
    assert torch.equal(a[:, :16], x[:, :, ::2, ::2]) and (a[:, 16:] == 0).all()
    # Every channel of B carries signal.
    assert (outs["B"] != 0).any(dim=(0, 2, 3)).all()

# %% [markdown]
# All three give the same shape as $F$ on an odd map, here 7×7 → 4×4, as in a block whose input
# does not divide by 2.

# %%
if __name__ == "__main__":
    x_odd = torch.randn(1, 16, 7, 7, device=DEVICE)
    # Like the first conv of F:
    f = nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False).to(DEVICE)
    for make in SHORTCUTS.values():
        with torch.no_grad():
            shortcut = make(16, 32, 2).to(DEVICE)
            assert shortcut(x_odd).shape == f(x_odd).shape == (1, 32, 4, 4)
    print("7×7 input: F and options A, B, C all give [1, 32, 4, 4]")

# %% [markdown]
# ## What the paper measured
#
# Table 3 of the paper compares the three options on ResNet-34; Table 2 gives the plain (no-shortcut)
# baselines. Both report top-1 error on the ImageNet validation set with *10-crop testing*, the
# protocol of Krizhevsky et al. (2012): each validation image (here with its shorter side resized to
# 256, as He et al. 2016, §5, describe the original test) is cut into five 224×224 crops, the four
# corners and the centre, and the same five are cut from its mirror image; the network's ten softmax
# outputs are averaged into one prediction. Averaging ten views errs less than a single centre crop,
# so these numbers are not comparable with single-crop errors, such as those of ResNeXt's Table 3.
# The cell below cuts the ten crops with torchvision's `ten_crop` and prints the two tables.

# %%
if __name__ == "__main__":
    image = torch.rand(3, 256, 320)  # [C, H, W], shorter side 256
    # Four corners and the centre of the image, then the same five of its mirror image.
    crops = ten_crop(image, [224, 224])
    assert len(crops) == 10 and all(crop.shape == (3, 224, 224) for crop in crops)
    assert torch.equal(crops[0], image[:, :224, :224])  # top-left corner
    assert torch.equal(crops[5], horizontal_flip(crops[1]))  # the mirror's top-left
    print(f"10-crop testing: {len(crops)} crops of {tuple(crops[0].shape)} per image")

    rows = {f"{kind}-{depth}": err for (kind, depth), err in RESNET_TABLE_2.items()}
    for name in ("ResNet-34 A", "ResNet-34 B", "ResNet-34 C"):
        rows[f"{name} (Table 3)"] = RESNET_TABLE_3[name].top1
    print("ImageNet val. top-1 error (%, 10-crop), He et al. 2015, Tables 2 and 3")
    for name, err in rows.items():
        print(f"  {name:<22} {err:6.2f}")
    table_3 = {option: RESNET_TABLE_3[f"ResNet-34 {option}"].top1 for option in "ABC"}
    assert RESNET_TABLE_2["plain", 34] > table_3["A"] > table_3["B"] > table_3["C"]

# %% [markdown]
# Our summary of the paper's reading: all three options are far better than the plain net; B beats A
# slightly (the zero-padded channels learn no residual); C beats B marginally, which the paper credits
# to the extra parameters of "many (thirteen) projection shortcuts". The differences are small, so
# projections are not what makes deep residual nets work, and the paper keeps C out of its deeper
# models to save memory and time. Torchvision, and our default, is option B. The CIFAR nets of the
# [CIFAR page](cifar.md) use option A.
#
# What do the projections cost? The figure counts the parameters on the shortcuts of ResNet-34, stage
# by stage (its Table 1 column gives the blocks per stage), and puts the totals next to the errors
# of Table 3. `basic_stage` builds the blocks of one stage; it works on PyTorch's `meta` device, which
# knows shapes and allocates nothing.

# %%
def basic_stage(n: int, c_in: int, c_out: int, stride: int, shortcut) -> nn.Sequential:
    # `n` basic blocks: `c_in` → `c_out` with `stride` first, then `c_out` → `c_out`.
    rest = [BasicBlock(c_out, c_out, 1, shortcut) for _ in range(n - 1)]
    return nn.Sequential(BasicBlock(c_in, c_out, stride, shortcut), *rest)


if __name__ == "__main__":
    widths = (64, 128, 256, 512)
    stage_names = ("conv2_x", "conv3_x", "conv4_x", "conv5_x")
    # (blocks, c_in, c_out, stride) of each stage of ResNet-34, from its Table 1 column.
    blocks = RESNET_TABLE_1[34].blocks_per_stage
    stage_specs = [(n, widths[max(i - 1, 0)], widths[i], 2 if i else 1)
                   for i, n in enumerate(blocks)]
    per_stage, projections = {}, {}
    with torch.device("meta"):
        for option, make in SHORTCUTS.items():
            stages = [basic_stage(*spec, make) for spec in stage_specs]
            per_stage[option] = [sum(n_params(b.shortcut) for b in s) for s in stages]
            projections[option] = sum(n_params(b.shortcut) > 0
                                      for s in stages for b in s)
    for option, counts in per_stage.items():
        print(f"option {option}: per stage {counts}, total {sum(counts):,d}")
    assert projections == {"A": 0, "B": 3, "C": 16}
    assert projections["C"] - projections["B"] == RESNET_34_EXTRA_PROJECTIONS_C

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, (option, counts) in enumerate(per_stage.items()):
        label = f"option {option}" + (" (none)" if sum(counts) == 0 else "")
        left.bar([i + 0.27 * (k - 1) for i in range(4)], [c / 1e3 for c in counts],
                 width=0.27, label=label)
    left.set_xticks(range(4), stage_names)
    left.set_ylabel("parameters on the shortcuts (thousands)")
    left.legend()
    totals = [sum(per_stage[option]) / 1e6 for option in "ABC"]
    right.plot(totals, list(table_3.values()), "o-")
    for option, x, y in zip("ABC", totals, table_3.values()):
        right.annotate(option, (x, y), textcoords="offset points", xytext=(6, 4))
    right.axhline(RESNET_TABLE_2["plain", 34], linestyle="--", color="grey",
                  label="plain-34")
    right.set_xlabel("parameters on all shortcuts (millions)")
    right.set_ylabel("top-1 error (%, 10-crop)")
    right.legend()
    fig.suptitle("ResNet-34 with shortcut options A, B, C: shortcut parameters per "
                 "stage, and ImageNet top-1 error (He et al. 2015, Table 3)")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## Exercises
#
# 1. **Count what C costs (auto-checked).** A stage has `n` basic blocks; the first goes from `c_in`
#    to `c_out` channels at stride 2, the others keep `c_out`. Write `extra_params_C(n, c_in, c_out)`,
#    the number of parameters option C adds to that stage compared with option A, and run
#    `check_extra_params_C(extra_params_C)`.
# 2. Write a shortcut function with the same signature whose projection is a 3×3 convolution (with
#    BN) where the shape changes, and build ResNet-34 with it on the [constructor page](resnet.md).
#    How many parameters does it add over option B? Would you expect it to help more than C's
#    thirteen 1×1 projections, and why?
# 3. In option A, build a block whose shortcut pads zeros and set all of $F$'s weights to zero. What is
#    the block's output in the padded channels? Does any gradient reach the input through them?
# 4. Replace `x[:, :, ::2, ::2]` by 2×2 average pooling in option A. Is it still parameter-free? Is it
#    still an identity mapping in the sense of the paper?

# %%
def check_extra_params_C(formula) -> None:
    # Compares `formula(n, c_in, c_out)` with real stages built with option A and option C.
    for n, c_in, c_out in ((1, 4, 8), (3, 16, 32), (5, 32, 64)):
        truth = n_params(basic_stage(n, c_in, c_out, 2, shortcut_C)) - n_params(
            basic_stage(n, c_in, c_out, 2, shortcut_A))
        got = formula(n, c_in, c_out)
        if got != truth:
            hint = "too many" if got > truth else "too few"
            raise AssertionError(
                f"for n={n}, {c_in}→{c_out} your formula gives {got}: {hint}. Option C "
                "puts a W_s (1×1 conv and BN) on every block; count the first block "
                "apart from the others")
    print("correct: your formula matches the extra parameters of option C")
