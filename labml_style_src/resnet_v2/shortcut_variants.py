# %% [markdown]
# # Shortcut variants: scaling, gating, 1×1 convolution, dropout
#
# Fig. 2 of the paper puts something on the shortcut of every residual unit of ResNet-110: a constant
# scale, a sigmoid gate, a 1×1 convolution or dropout. Each variant can represent the identity, yet
# all of them train worse (Table 1). This page builds each variant as a small module with one
# interface, runs all of them, and measures at initialisation how much gradient the shortcut path
# still carries through 54 units: the product of eq. (8) from the [propagation page](propagation.md).
#
# > "Multiplicative manipulations (scaling, gating, 1×1 convolutions, and dropout) on the shortcuts
# > can hamper information propagation and lead to optimization problems." — He et al. 2016, §3.2

# %%
import torch
from torch import nn

from labml_style_src.device import DEVICE
from labml_style_src.resnet_v1.residual_block import (
    conv1x1,
    conv3x3,
    n_params,
    residual_add,
)

# %% [markdown]
# ## One interface: `merge(x, fx)`
#
# In these experiments the unit is the original one, $\mathbf{x}_{l+1} = \mathrm{ReLU}(\mathbf{y}_l)$
# with $F$ = conv → BN → ReLU → conv → BN. What changes is how $\mathbf{x}$ and $F(\mathbf{x})$ are
# combined into $\mathbf{y}$. Gating scales $F$ too, so a variant is a module that receives both and
# returns $\mathbf{y}$. Each `forward` is one line, the equation of its row in Table 1.

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


class Gate(nn.Module):
    # $g(x) = \sigma(W_g x + b_g)$: a 1×1 conv with bias, one gate per channel and pixel.
    def __init__(self, c: int, b_g: float):
        super().__init__()
        self.W_g = nn.Conv2d(c, c, kernel_size=1, bias=True)
        nn.init.constant_(self.W_g.bias, b_g)

    def forward(self, x):
        return torch.sigmoid(self.W_g(x))


class ExclusiveGating(nn.Module):
    def __init__(self, c: int, b_g: float = -6.0):
        super().__init__()
        self.g = Gate(c, b_g)

    def forward(self, x, fx):
        # Fig. 2(c), highway-style: $y = g(x) \odot F(x) + (1 - g(x)) \odot x$.
        g = self.g(x)
        return residual_add(g * fx, (1 - g) * x)


class ShortcutOnlyGating(nn.Module):
    def __init__(self, c: int, b_g: float = -6.0):
        super().__init__()
        self.g = Gate(c, b_g)

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


# %% [markdown]
# ## Variants as data
#
# A name picks a class; keyword arguments carry the numbers of a Table 1 row. An unknown name is an
# error that lists the valid ones.

# %%
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
        raise ValueError(f"unknown shortcut variant {name!r}; choose one of {list(SHORTCUT_VARIANTS)}")
    cls = SHORTCUT_VARIANTS[name]
    return cls(**kwargs) if cls is IdentityShortcut else cls(c, **kwargs)


class ShortcutVariantUnit(nn.Module):
    def __init__(self, c: int, variant: str = "original", **kwargs):
        super().__init__()
        # The original $F$ of a ResNet-110 unit: conv3×3 → BN → ReLU → conv3×3 → BN.
        self.F = nn.Sequential(conv3x3(c, c), nn.BatchNorm2d(c), nn.ReLU(), conv3x3(c, c), nn.BatchNorm2d(c))
        self.merge = shortcut_variant(variant, c, **kwargs)
        self.relu = nn.ReLU()

    def forward(self, x):  # x: [B, c, H, W] -> [B, c, H, W]
        # $x_{l+1} = \mathrm{ReLU}(\mathrm{merge}(x, F(x)))$, $f$ = ReLU as in Table 1.
        return self.relu(self.merge(x, self.F(x)))


# %% [markdown]
# ## Table 1 of the paper
#
# ResNet-110 on CIFAR-10, the variant applied to all 54 units, median of 5 runs; "fail" means a test
# error above 20 %. The last column of each row is the configuration we build for it.

# %%
TABLE_1 = [
    # (case, Fig. 2, on shortcut, on F, error %, remark, variant, kwargs)
    ("original", "(a)", "1", "1", "6.61", "", "original", {}),
    ("constant scaling", "(b)", "0", "1", "fail", "this is a plain net",
     "constant_scaling", dict(on_shortcut=0.0, on_F=1.0)),
    ("constant scaling", "(b)", "0.5", "1", "fail", "", "constant_scaling", dict(on_shortcut=0.5, on_F=1.0)),
    ("constant scaling", "(b)", "0.5", "0.5", "12.35", "frozen gating",
     "constant_scaling", dict(on_shortcut=0.5, on_F=0.5)),
    ("exclusive gating", "(c)", "1-g(x)", "g(x)", "fail", "init b_g = 0 to -5", "exclusive_gating", dict(b_g=0.0)),
    ("exclusive gating", "(c)", "1-g(x)", "g(x)", "8.70", "init b_g = -6", "exclusive_gating", dict(b_g=-6.0)),
    ("exclusive gating", "(c)", "1-g(x)", "g(x)", "9.81", "init b_g = -7", "exclusive_gating", dict(b_g=-7.0)),
    ("shortcut-only gating", "(d)", "1-g(x)", "1", "12.86", "init b_g = 0", "shortcut_only_gating", dict(b_g=0.0)),
    ("shortcut-only gating", "(d)", "1-g(x)", "1", "6.91", "init b_g = -6", "shortcut_only_gating", dict(b_g=-6.0)),
    ("1x1 conv shortcut", "(e)", "1x1 conv", "1", "12.22", "", "conv1x1", {}),
    ("dropout shortcut", "(f)", "dropout 0.5", "1", "fail", "", "dropout", dict(p=0.5)),
]


# %% [markdown]
# ## What the shortcut path carries at initialisation
#
# Eq. (8) says the direct term of the gradient is multiplied by the product of what each shortcut
# does. To see that product alone we switch $F$ off: the last BN of every $F$ gets $\gamma = 0$, so
# $F \equiv 0$ and everything that reaches $\mathbf{x}_0$ came along the shortcuts (gates included).
# The input is non-negative, like the output of a previous unit's ReLU. For the identity the ratio
# $|\partial E/\partial \mathbf{x}_0| / |\partial E/\partial \mathbf{x}_L|$ is exactly 1.

# %%
def shortcut_path_gain(variant: str, n_units: int = 54, c: int = 8, seed: int = 0, **kwargs) -> float:
    # $|\partial E/\partial x_0| / |\partial E/\partial x_L|$ through `n_units` units with $F \equiv 0$.
    torch.manual_seed(seed)
    units = nn.Sequential(*(ShortcutVariantUnit(c, variant, **kwargs) for _ in range(n_units)))
    units = units.to(DEVICE, torch.float64).train()
    for unit in units:
        nn.init.zeros_(unit.F[-1].weight)
    x0 = torch.rand(2, c, 6, 6, dtype=torch.float64, device=DEVICE, requires_grad=True)
    xL = units(x0)
    dE_dxL = torch.ones_like(xL)
    dE_dx0, = torch.autograd.grad(xL, x0, grad_outputs=dE_dxL)
    return (dE_dx0.norm() / dE_dxL.norm()).item()


# %%
if __name__ == "__main__":
    print(f"{'case':<21} {'shortcut':>11} {'F':>5} {'error %':>8}  {'remark':<20} {'shortcut gain, 54 units':>24}")
    gains = {}
    for case, _fig, on_s, on_F, err, remark, variant, kwargs in TABLE_1:
        gains[case, remark] = gain = shortcut_path_gain(variant, **kwargs)
        print(f"{case:<21} {on_s:>11} {on_F:>5} {err:>8}  {remark:<20} {gain:>24.3e}")
    assert gains["original", ""] == 1.0  # the identity passes the gradient untouched
    assert gains["constant scaling", "this is a plain net"] == 0.0
    assert abs(gains["constant scaling", ""] / 0.5 ** 54 - 1) < 1e-9  # eq. (8) with lambda = 0.5
    assert gains["shortcut-only gating", "init b_g = 0"] < 1e-10 < 0.5 < gains["shortcut-only gating", "init b_g = -6"]
    assert gains["dropout shortcut", ""] == 0.0  # no element survives 54 dropouts
    assert gains["1x1 conv shortcut", ""] > 1e3  # BN after each projection: far from 1, upwards

# %% [markdown]
# Read the last column against the error column. Where the shortcut product is tiny at the start
# (scaling by 0.5, gates initialised at $b_g = 0$, dropout) the paper reports a failure or a poor
# result. Gates biased to $b_g = -6$ start close to the identity ($1 - \sigma(-6) \approx 0.9975$ per
# unit) and shortcut-only gating then lands at 6.91 %, close to the 6.61 % of the identity. The 1×1
# convolution errs the other way: 54 projections, each followed by BN, multiply the gradient by about
# $10^5$ in this stack. Either way the product in eq. (8) is no longer 1, and its value is set by
# initialisation details rather than by design; the paper's ResNet-110 with 1×1 shortcuts ends at
# 12.22 %.
#
# !!! note "Where we differ from the paper"
#     The paper describes dropout on the shortcut as a scale with expectation 0.5. PyTorch's
#     `nn.Dropout` is *inverted*: it scales the kept elements by $1/(1-p)$, so the expectation stays 1.
#     The path is blocked anyway: an element reaches $\mathbf{x}_0$ only if it survives all 54
#     dropouts, with probability $2^{-54}$, which is why the measured gain is exactly 0. Our gate is a
#     1×1 conv with bias and no BN (the paper says BN follows the weight layers; for the gate it gives
#     no detail); only its bias $b_g$ matters for the argument.
#
# All variants keep the shape and train forward and backward on CPU and CUDA:
# [test](../tests/test_resnet_v2.md#test_every_variant_block_runs); unknown names raise:
# [test](../tests/test_resnet_v2.md#test_bad_variant_names).

# %%
if __name__ == "__main__":
    x = torch.randn(4, 16, 8, 8, device=DEVICE)
    for name in SHORTCUT_VARIANTS:
        unit = ShortcutVariantUnit(16, name).to(DEVICE)
        y = unit(x)
        y.sum().backward()
        print(f"{name:<21} out {tuple(y.shape)}  "
              f"parameters on the shortcut: {n_params(unit.merge)}")
        assert y.shape == x.shape

# %% [markdown]
# ## Exercises
#
# 1. **The gate's starting point (auto-checked).** With $W_g = 0$ the gate is a constant
#    $g = \sigma(b_g)$. Write `gain(b_g, n)`: the shortcut gain through `n` shortcut-only-gated units
#    with $F \equiv 0$. Run `check_gate_gain(gain)`; it measures real stacks with $W_g = 0$.
# 2. Exclusive gating scales $F$ by $g(x)$. With $b_g = -6$, by how much is $F$ suppressed at the
#    start? Use this to explain why the paper finds exclusive gating (8.70 %) worse than
#    shortcut-only gating (6.91 %) at the same $b_g$.
# 3. The paper notes that shortcut-only gating and the 1×1 conv "cover the solution space" of the
#    identity. Set $W_s$ of a `ConvShortcut` (conv weight and BN) so that the unit is exactly the
#    original unit, and check it with `torch.allclose` on a real input in eval mode.
# 4. Replace `nn.Dropout(p)` by a non-inverted dropout (multiply by a Bernoulli mask without
#    rescaling) and measure the gain of a single unit over many seeds. What is its mean?

# %%
def check_gate_gain(gain) -> None:
    # Compares `gain(b_g, n)` with stacks of shortcut-only-gated units whose $W_g = 0$ and $F \equiv 0$.
    for b_g, n in ((0.0, 4), (-2.0, 10), (-6.0, 54)):
        torch.manual_seed(0)
        units = nn.Sequential(*(ShortcutVariantUnit(4, "shortcut_only_gating", b_g=b_g) for _ in range(n)))
        units = units.to(DEVICE, torch.float64)
        for unit in units:
            nn.init.zeros_(unit.F[-1].weight)
            nn.init.zeros_(unit.merge.g.W_g.weight)
        x0 = torch.rand(1, 4, 3, 3, dtype=torch.float64, device=DEVICE, requires_grad=True)
        xL = units(x0)
        dx0, = torch.autograd.grad(xL, x0, grad_outputs=torch.ones_like(xL))
        truth = dx0.norm().item() / torch.ones_like(xL).norm().item()
        got = gain(b_g, n)
        if not abs(got - truth) <= 1e-9 * truth:
            raise AssertionError(f"for b_g={b_g}, n={n} you give {got}, the stack measures {truth:.6g}")
    print("correct: the gate passes (1 - sigmoid(b_g)) per unit, so the shortcut carries (1 - sigmoid(b_g)) ** n")
