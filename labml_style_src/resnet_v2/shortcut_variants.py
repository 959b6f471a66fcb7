# %% [markdown]
# # Shortcut variants: scaling, gating, 1×1 convolution, dropout
#
# Fig. 2 of the paper puts a constant scale, a sigmoid gate, a 1×1 convolution or dropout on the
# shortcut of every unit of ResNet-110, and every one trains worse than the identity (Table 1). For
# shortcut-only gating and the 1×1 convolution that is not a matter of what the network can
# represent: their shortcut can be the identity; the other three can never be. This page builds each
# variant as a small module with one interface, checks which can be the identity, and measures the
# gradient the shortcut path carries through 54 units at initialisation: the product in eq. (8) of
# the [scaled-shortcut page](scaled_shortcut.md).
#
# > "Multiplicative manipulations (scaling, gating, 1×1 convolutions, and dropout) on the shortcuts
# > can hamper information propagation and lead to optimization problems." — He et al. 2016, §3.2

# %%
import torch
from torch import nn

from labml_style_src.device import DEVICE
from labml_style_src.diagrams import draw
from labml_style_src.paper_tables import PREACT_TABLE_1
from labml_style_src.resnet_v1.residual_block import (
    conv1x1,
    conv3x3,
    n_params,
    residual_add,
)

# %% [markdown]
# ## One interface: `merge(x, fx)`
#
# The unit is the original one, $\mathbf{x}_{l+1} = \mathrm{ReLU}(\mathbf{y}_l)$ with $F$ = conv → BN
# → ReLU → conv → BN; what changes is how $\mathbf{x}$ and $F(\mathbf{x})$ combine into $\mathbf{y}$.
# Gating scales $F$ too, so a variant receives both and returns $\mathbf{y}$, in a one-line `forward`.

# %%
class IdentityShortcut(nn.Module):
    def forward(self, x, fx):
        # Fig. 2(a): $y = F(x) + x$.
        return residual_add(fx, x)


class ConstantScaling(nn.Module):
    def __init__(self, c: int, on_shortcut: float = 0.5, on_F: float = 1.0):
        super().__init__()
        self.lam, self.on_F = on_shortcut, on_F

    def forward(self, x, fx):
        # Fig. 2(b): $y = \mu F(x) + \lambda x$.
        return residual_add(self.on_F * fx, self.lam * x)


class ExclusiveGating(nn.Module):
    def __init__(self, c: int, b_g: float = -6.0):
        super().__init__()
        # $g(x) = \sigma(W_g x + b_g)$: a 1×1 conv with bias, one gate per channel and pixel.
        self.W_g = nn.Conv2d(c, c, kernel_size=1, bias=True)
        nn.init.constant_(self.W_g.bias, b_g)

    def g(self, x):
        return torch.sigmoid(self.W_g(x))

    def forward(self, x, fx):
        # Fig. 2(c), highway-style: $y = g(x) \odot F(x) + (1 - g(x)) \odot x$.
        g = self.g(x)
        return residual_add(g * fx, (1 - g) * x)


class ShortcutOnlyGating(ExclusiveGating):  # the same gate, applied to $x$ only
    def forward(self, x, fx):
        # Fig. 2(d): $y = F(x) + (1 - g(x)) \odot x$.
        return residual_add(fx, (1 - self.g(x)) * x)


class ConvShortcut(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        # BN after every weight layer, as in all units of Fig. 2.
        self.W_s = nn.Sequential(conv1x1(c, c), nn.BatchNorm2d(c))

    def forward(self, x, fx):
        # Fig. 2(e): $y = F(x) + W_s x$ on every unit (option C of ResNet v1).
        return residual_add(fx, self.W_s(x))


class DropoutShortcut(nn.Module):
    def __init__(self, c: int, p: float = 0.5):
        super().__init__()
        self.drop = nn.Dropout(p)

    def forward(self, x, fx):
        # Fig. 2(f): $y = F(x) + \mathrm{dropout}(x)$.
        return residual_add(fx, self.drop(x))


# %%
# Variants as data: a name picks a class; keyword arguments carry the numbers of a Table 1 row.
SHORTCUT_VARIANTS = {
    "original": IdentityShortcut,
    "constant_scaling": ConstantScaling,
    "exclusive_gating": ExclusiveGating,
    "shortcut_only_gating": ShortcutOnlyGating,
    "conv1x1": ConvShortcut,
    "dropout": DropoutShortcut,
}


def shortcut_variant(name: str, c: int, **kwargs) -> nn.Module:
    if name not in SHORTCUT_VARIANTS:
        raise ValueError(f"unknown shortcut variant {name!r}; "
                         f"choose one of {list(SHORTCUT_VARIANTS)}")
    cls = SHORTCUT_VARIANTS[name]
    return cls(**kwargs) if cls is IdentityShortcut else cls(c, **kwargs)


class ShortcutVariantUnit(nn.Module):
    def __init__(self, c: int, variant: str = "original", **kwargs):
        super().__init__()
        # The original $F$ of a ResNet-110 unit: conv3×3 → BN → ReLU → conv3×3 → BN.
        self.F = nn.Sequential(conv3x3(c, c), nn.BatchNorm2d(c), nn.ReLU(),
                               conv3x3(c, c), nn.BatchNorm2d(c))
        self.merge = shortcut_variant(variant, c, **kwargs)
        self.relu = nn.ReLU()

    def forward(self, x):  # x: [B, c, H, W] -> [B, c, H, W]
        # $x_{l+1} = \mathrm{ReLU}(\mathrm{merge}(x, F(x)))$, $f$ = ReLU as in Table 1.
        return self.relu(self.merge(x, self.F(x)))


# %%
if __name__ == "__main__":
    # Fig. 2's six units, drawn from `ShortcutVariantUnit` with default settings.
    units = {f"({letter}) {name.replace('_', ' ')}": ShortcutVariantUnit(16, name)
             for letter, name in zip("abcdef", SHORTCUT_VARIANTS)}
    draw(units, torch.zeros(1, 16, 8, 8))

# %% [markdown]
# ## Which variants can be the identity?
#
# > "In fact, the shortcut-only gating and 1×1 convolution cover the solution space of identity
# > shortcuts (*i.e.*, they could be optimized as identity shortcuts)." — He et al. 2016, §3.2
#
# We give a variant the same $F$ as an original unit and look for a shortcut setting that makes both
# units compute the same function:
#
# - **Shortcut-only gating**: $W_g = 0$ and a very negative $b_g$ open the shortcut fully. At
#   $b_g = -40$, $1 - \sigma(b_g)$ rounds to 1 in float64: the units agree to the last bit (cell below).
# - **1×1 convolution**: $W_s$ = the identity matrix, with its BN set to undo its own normalisation;
#   in eval mode the units agree (exercise 3, and the
#   [test](../tests/test_resnet_v2.md#test_identity_is_in_the_solution_space)).
# - **Exclusive gating** would need $g = 1$ for $F$ and $1 - g = 1$ for $x$ at once: as $1 - g(x)$
#   approaches 1, $g(x)$ approaches 0 and suppresses $F$ (§3.1).
# - **Constant scaling** (0.5 or 0) and **dropout** have no parameters on the shortcut (the cell
#   counts them): the scale, or the random mask of training, is fixed. Only $F$ could make up for
#   it, by learning part of the identity, which residual learning was meant to spare it.
#
# So for shortcut-only gating and the 1×1 convolution the worse results are a matter of optimisation,
# as the paper concludes: higher training error although the original network is within reach.

# %%
if __name__ == "__main__":
    torch.manual_seed(0)
    original = ShortcutVariantUnit(8, "original").to(DEVICE, torch.float64).eval()
    gated = ShortcutVariantUnit(8, "shortcut_only_gating")
    gated = gated.to(DEVICE, torch.float64).eval()
    gated.F.load_state_dict(original.F.state_dict())  # the same $F$
    nn.init.zeros_(gated.merge.W_g.weight)  # $W_g = 0$ …
    nn.init.constant_(gated.merge.W_g.bias, -40.0)  # … and $b_g = -40$
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64, device=DEVICE)
    with torch.no_grad():
        print("shortcut-only gating, W_g = 0, b_g = -40: max |unit - original| =",
              (gated(x) - original(x)).abs().max().item())
        assert torch.equal(gated(x), original(x))
    on_shortcut = {name: n_params(shortcut_variant(name, 8))
                   for name in SHORTCUT_VARIANTS}
    print("parameters on the shortcut, 8 channels:", on_shortcut)
    assert on_shortcut["constant_scaling"] == on_shortcut["dropout"] == 0

# %%
# Table 1 (`PREACT_TABLE_1`): ResNet-110 on CIFAR-10, variant on all 54 units, median of 5 runs, "fail"
# for a test error above 20 %. Our setting per row: (case, our variant, its keyword arguments).
TABLE_1_SETTINGS = (
    ("original", "original", {}),
    ("constant scaling", "constant_scaling", dict(on_shortcut=0.0, on_F=1.0)),
    ("constant scaling", "constant_scaling", dict(on_shortcut=0.5, on_F=1.0)),
    ("constant scaling", "constant_scaling", dict(on_shortcut=0.5, on_F=0.5)),
    ("exclusive gating", "exclusive_gating", dict(b_g=0.0)),
    ("exclusive gating", "exclusive_gating", dict(b_g=-6.0)),
    ("exclusive gating", "exclusive_gating", dict(b_g=-7.0)),
    ("shortcut-only gating", "shortcut_only_gating", dict(b_g=0.0)),
    ("shortcut-only gating", "shortcut_only_gating", dict(b_g=-6.0)),
    ("1x1 conv shortcut", "conv1x1", {}),
    ("dropout shortcut", "dropout", dict(p=0.5)),
)


# %% [markdown]
# ## What the shortcut path carries at initialisation
#
# Eq. (8) multiplies the direct term of the gradient by the product of what each shortcut does. To
# see that product alone we set $\gamma = 0$ in the last BN of every $F$: $F \equiv 0$, and all that
# reaches $\mathbf{x}_0$ came along the shortcuts (gates included). The input is non-negative, like a
# ReLU's output. For the identity, $|\partial E/\partial \mathbf{x}_0| / |\partial E/\partial \mathbf{x}_L| = 1$.

# %%
def shortcut_path_gain(variant: str, n_units: int = 54, c: int = 8, seed: int = 0,
                       **kwargs) -> float:
    # $|\partial E/\partial x_0| / |\partial E/\partial x_L|$ through `n_units` units
    # with $F \equiv 0$.
    torch.manual_seed(seed)
    units = nn.Sequential(*(ShortcutVariantUnit(c, variant, **kwargs)
                            for _ in range(n_units)))
    units = units.to(DEVICE, torch.float64).train()
    for unit in units:
        nn.init.zeros_(unit.F[-1].weight)
    g = torch.Generator().manual_seed(seed)  # the same input on every device
    x0 = torch.rand(2, c, 6, 6, generator=g, dtype=torch.float64)
    x0 = x0.to(DEVICE).requires_grad_()
    xL = units(x0)
    dE_dxL = torch.ones_like(xL)
    dE_dx0, = torch.autograd.grad(xL, x0, grad_outputs=dE_dxL)
    return (dE_dx0.norm() / dE_dxL.norm()).item()


# %%
if __name__ == "__main__":
    print(f"{'case':<21} {'shortcut':>11} {'F':>5} {'error %':>8}  {'remark':<20} "
          f"{'shortcut gain, 54 units':>24}")
    gains = {}
    for row, (case, variant, kwargs) in zip(PREACT_TABLE_1, TABLE_1_SETTINGS):
        assert row.case == case  # each setting sits on its own row
        gains[case, row.remark] = gain = shortcut_path_gain(variant, **kwargs)
        err = "fail" if row.error is None else f"{row.error:.2f}"
        print(f"{case:<21} {row.on_shortcut:>11} {row.on_F:>5} {err:>8}  "
              f"{row.remark:<20} {gain:>24.3e}")
    assert gains["original", ""] == 1.0  # the identity passes the gradient untouched
    assert gains["constant scaling", "this is a plain net"] == 0.0
    assert abs(gains["constant scaling", ""] / 0.5 ** 54 - 1) < 1e-9  # eq. (8), λ = 0.5
    assert gains["shortcut-only gating", "init b_g = 0"] < 1e-10
    assert 0.5 < gains["shortcut-only gating", "init b_g = -6"] < 1
    assert gains["dropout shortcut", ""] == 0.0  # no element survives 54 dropouts
    assert 1e4 < gains["1x1 conv shortcut", ""] < 1e6  # BN after each projection

# %% [markdown]
# Read the last column against the error column. Where the shortcut product is tiny at the start
# (scaling by 0.5, gates at $b_g = 0$, dropout) the paper reports a failure or a poor result. Gates at
# $b_g = -6$ start near the identity ($1 - \sigma(-6) \approx 0.9975$ per unit): shortcut-only gating
# lands at 6.91 %, near the identity's 6.61 %. The 1×1 convolution errs the other way: 54 projections
# with BN multiply the gradient by $10^4$ to $10^6$, depending on the random weights (the
# [test](../tests/test_resnet_v2.md#test_shortcut_gain_matches_eq8) tries eight seeds). Either way the
# product is not 1 but set by initialisation details; with 1×1 shortcuts ResNet-110 ends at 12.22 %.
#
# !!! note "Where we differ from the paper"
#     The paper treats dropout on the shortcut as a scale with expectation 0.5; PyTorch's `nn.Dropout`
#     is *inverted* (it scales kept elements by $1/(1-p)$: expectation 1). The path is blocked anyway:
#     an element reaches $\mathbf{x}_0$ only if it survives all 54 dropouts (probability $2^{-54}$),
#     hence the gain of exactly 0. Our gate (no detail in the paper) is a 1×1 conv with bias, no BN.
#
# All variants keep the shape and train forward and backward on CPU and CUDA
# ([test](../tests/test_resnet_v2.md#test_every_variant_block_runs)); unknown names raise a
# `ValueError` that lists the valid ones ([test](../tests/test_resnet_v2.md#test_bad_variant_names)).
#
# ## Exercises
#
# 1. With `shortcut_path_gain`, measure exclusive gating at $b_g = -6$ and $b_g = -7$. The $-7$ gate
#    is closer to the identity on the shortcut, yet the paper's error is worse (9.81 % against 8.70 %).
#    What does the gate do to $F$ at the start, and by how much more at $-7$?
# 2. Replace `nn.Dropout(p)` by a non-inverted dropout (multiply by a Bernoulli mask without
#    rescaling) and measure the gain of a single unit over many seeds. What is its mean?
# 3. **Make the 1×1 shortcut the identity (auto-checked).** Write `set_identity(merge)`, which sets a
#    `ConvShortcut`'s 1×1 convolution and BN (whose running statistics are whatever training left)
#    so that, in eval mode, the unit computes exactly what the original unit with the same $F$ does.
#    Run `check_conv_shortcut_identity(set_identity)`. Could any setting do that in training mode?
# 4. The gating check closes the gate with $b_g = -40$. Roughly how negative must $b_g$ be for
#    $1 - \sigma(b_g)$ to round to exactly 1 in float64, and in float32?

# %%
def check_conv_shortcut_identity(set_identity) -> None:
    # Runs `set_identity` on the shortcut of a 1×1-conv unit whose BN has random running
    # statistics, then compares it in eval mode with an original unit with the same $F$.
    torch.manual_seed(0)
    original = ShortcutVariantUnit(8, "original").to(torch.float64).eval()
    unit = ShortcutVariantUnit(8, "conv1x1").to(torch.float64).eval()
    unit.F.load_state_dict(original.F.state_dict())
    bn = unit.merge.W_s[1]
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        set_identity(unit.merge)
        err = (unit(x) - original(x)).abs().max().item()
    if not err < 1e-10:
        raise AssertionError(
            f"the two units differ by up to {err:.3g}. In eval mode the shortcut "
            "computes, channel by channel, BN(W_s x) = "
            "γ (W_s x − running_mean) / sqrt(running_var + eps) + β: "
            "which W_s, γ and β turn that into x?")
    print("correct: this 1×1-conv unit computes the original unit: the identity is in "
          "its solution space")
