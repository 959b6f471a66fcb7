# %% [markdown]
# # Residual learning and the basic block
#
# A residual block does not ask its layers for the output $H(x)$ directly. It asks them for the
# *difference* $F(x) = H(x) - x$ and adds the input back: $H(x) = F(x) + x$.
#
# > "To the extreme, if an identity mapping were optimal, it would be easier to push the residual
# > to zero than to fit an identity mapping by a stack of nonlinear layers." — He et al. 2015, §1
#
# This page builds the *basic block* of ResNet-18/34 and checks, on real tensors, the three facts
# everything else on this site relies on: where BN and ReLU go, what the shortcut does when shapes
# change, and why "do nothing" is the easy default for a residual block.

# %%
import torch
from torch import nn

from labml_style_src.device import DEVICE
from labml_style_src.diagrams import draw

# %% [markdown]
# ## Adding two tensors, carefully
#
# The addition $F(x) + x$ is where residual networks hide their bugs. PyTorch *broadcasts*: a
# `[B, 1, H, W]` tensor added to a `[B, C, H, W]` tensor silently becomes `[B, C, H, W]`. A residual
# branch and its shortcut must have exactly the same shape, so every block on this site adds through
# `residual_add`, which refuses anything else with a message that names both shapes.
# The [ResNeXt chapter](../resnext/add_pitfall.md) shows the bugs this catches.

# %%
def residual_add(fx: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
    # $F(x) + x$, but only for equal shapes: no broadcasting, no zero-padding.
    if fx.shape != shortcut.shape:
        raise ValueError(
            f"residual add needs equal shapes, got F(x) {tuple(fx.shape)} and "
            f"shortcut {tuple(shortcut.shape)}; project the shortcut (option B/C) "
            f"or pad it (option A)"
        )
    return fx + shortcut


# %% [markdown]
# ## The residual function $F$
#
# > "We adopt batch normalization (BN) [16] right after each convolution and before activation,
# > following [16]." — He et al. 2015, §3.4
#
# So $F$ is conv → BN → ReLU → conv → BN. The convolutions carry no bias: BN subtracts the
# mean right after, which would cancel any bias, and BN's own shift $\beta$ plays its part.

# %%
def conv3x3(c_in: int, c_out: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    # 3×3 with padding 1: the map keeps its size at stride 1 and halves at stride 2.
    # `groups > 1` splits the channels into independent groups (ResNeXt, later).
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1,
                     groups=groups, bias=False)


def conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=False)


# %% [markdown]
# ## The shortcut $W_s x$
#
# When $F(x)$ and $x$ have the same shape the shortcut is the identity. When the block halves the
# map and widens the channels, eq. (2) of the paper projects $x$:
# $y = F(x, \{W_i\}) + W_s x$, with $W_s$ a 1×1 convolution of stride 2 (followed by BN, as
# torchvision does). Projecting only where the shape changes is the paper's *option B*; the
# [shortcuts page](shortcuts.md) adds options A and C with the same signature.

# %%
def identity_or_projection(c_in: int, c_out: int, stride: int) -> nn.Module:
    # Option B: identity when shapes match, else $W_s$ = 1×1 conv (stride `stride`) + BN.
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))


# %% [markdown]
# ## The basic block
#
# > "The operation $F + x$ is performed by a shortcut connection and element-wise addition. We adopt
# > the second nonlinearity after the addition (i.e., $\sigma(y)$, see Fig. 2)." — He et al. 2015, §3.2
#
# The block is therefore $y = \sigma(F(x) + W_s x)$, and `forward` says exactly that. The shortcut is
# chosen once, in `__init__`, by a function passed in as data: no `if` in `forward`.

# %%
class BasicBlock(nn.Module):
    # Channels leaving the block = `width * expansion`; the bottleneck block uses 4.
    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int = 1,
                 shortcut=identity_or_projection):
        super().__init__()
        c_out = width * self.expansion
        # $F$: conv3×3 (carries the stride) → BN → ReLU → conv3×3 → BN.
        self.F = nn.Sequential(
            conv3x3(c_in, width, stride), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            conv3x3(width, c_out), nn.BatchNorm2d(c_out),
        )
        self.shortcut = shortcut(c_in, c_out, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):  # x: [B, C_in, H, W] -> [B, C_out, H / stride, W / stride]
        # $y = \sigma(F(x) + W_s x)$: the second ReLU comes after the addition.
        return self.relu(residual_add(self.F(x), self.shortcut(x)))


# %% [markdown]
# ## Shapes, on a real tensor
#
# Two blocks as they appear at the start of ResNet-18's `conv3_x`: the first halves the 56×56 map
# and doubles 64 channels to 128, so its shortcut is a projection; the second keeps the shape and its
# shortcut is the identity.

# %%
if __name__ == "__main__":
    torch.manual_seed(0)
    x = torch.randn(2, 64, 56, 56, device=DEVICE)  # [B, C, H, W]
    down = BasicBlock(64, 128, stride=2).to(DEVICE)
    keep = BasicBlock(128, 128).to(DEVICE)
    h = down(x)
    y = keep(h)
    print("input        ", tuple(x.shape))
    print("after down   ", tuple(h.shape), "shortcut:", type(down.shortcut).__name__)
    print("after keep   ", tuple(y.shape), "shortcut:", type(keep.shortcut).__name__)
    assert h.shape == (2, 128, 28, 28) and y.shape == (2, 128, 28, 28)
    assert isinstance(keep.shortcut, nn.Identity)
    assert not isinstance(down.shortcut, nn.Identity)
    # The output went through a ReLU last, so nothing is negative.
    assert (y >= 0).all()

# %%
if __name__ == "__main__":
    # The two blocks, drawn by running them on `x` (the paper's Fig. 2, with BN): a
    # projection $W_s$ where the shape changes, the identity where it does not.
    draw(nn.Sequential(down, keep), x,
         title="BasicBlock(64, 128, stride=2), then BasicBlock(128, 128)")

# %% [markdown]
# ## Why "do nothing" is easy for a residual block
#
# If the best thing a block can do is pass its input on, the residual form only has to drive $F$ to
# zero. One number is enough: the scale $\gamma$ of the last BN in $F$. With $\gamma = 0$ (and the
# BN shift $\beta = 0$, its default) $F(x) = 0$, and the block returns $\sigma(x)$, which *is* $x$ for
# the non-negative inputs every block after the first ReLU receives. A plain stack of
# conv–BN–ReLU layers has no such shortcut: to pass $x$ on it must learn identity kernels. The cell
# checks both claims on a real block. (Setting $\gamma = 0$ at initialisation is a known trick,
# `zero_init_residual=True` in torchvision.)

# %%
if __name__ == "__main__":
    block = BasicBlock(64, 64).to(DEVICE).eval()  # eval: BN uses its running statistics
    nn.init.zeros_(block.F[-1].weight)  # γ of the last BN
    # Non-negative, like a previous block's output.
    x = torch.relu(torch.randn(2, 64, 14, 14, device=DEVICE))
    with torch.no_grad():
        print("max |block(x) - x| with γ = 0:", (block(x) - x).abs().max().item())
        assert torch.equal(block(x), x)

    plain = nn.Sequential(conv3x3(64, 64), nn.BatchNorm2d(64), nn.ReLU(),
                          conv3x3(64, 64), nn.BatchNorm2d(64))
    plain = plain.to(DEVICE).eval()
    with torch.no_grad():
        err = (torch.relu(plain(x)) - x).abs().max().item()
    print("max |plain(x) - x| at initialisation:", round(err, 3))
    assert err > 0.1

# %% [markdown]
# ## Exercises
#
# 1. **Count the parameters (auto-checked).** Write `basic_block_params(c)`, the number of parameters
#    of `BasicBlock(c, c)` (identity shortcut) as a formula in `c` — two 3×3 convolutions without bias
#    and two BNs with $\gamma$ and $\beta$ each. Run `check_basic_block_params(basic_block_params)` in the
#    notebook: it compares your formula with the real module for several widths.
# 2. Put the second ReLU *before* the addition, $y = \sigma(F(x)) + x$. What can such a block never
#    do to its input? (Hint: the sign of what is added.) The
#    [activation variants page](../resnet_v2/activation_variants.md) measures this variant.
# 3. Replace `residual_add` by a plain `+` and build `BasicBlock(64, 128, stride=2, shortcut=lambda *a: nn.Identity())`.
#    What error do you get, and from where? Which error message would you rather debug?

# %%
def n_params(module: nn.Module, kind: type | None = None) -> int:
    # The one parameter counter of this site: all parameters of `module`, or with `kind`
    # (e.g. `nn.BatchNorm2d`) only those of its submodules of that type.
    parts = [m for m in module.modules() if isinstance(m, kind)] if kind else [module]
    return sum(p.numel() for m in parts for p in m.parameters())


def check_basic_block_params(formula) -> None:
    # Compares `formula(c)` with the parameter count of a real `BasicBlock(c, c)`.
    for c in (1, 16, 64, 256):
        truth = n_params(BasicBlock(c, c))
        got = formula(c)
        if got != truth:
            hint = "too many" if got > truth else "too few"
            raise AssertionError(
                f"for c={c} your formula gives {got}: {hint}. Count the weights of "
                "each 3×3 convolution (no bias) and the γ and β of each BN")
    print("correct: your formula matches BasicBlock(c, c) for c = 1, 16, 64, 256")
