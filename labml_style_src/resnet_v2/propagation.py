# %% [markdown]
# # Why identity shortcuts matter: the propagation equations
#
# With an identity shortcut and nothing after the addition, a deep ResNet adds things up instead of
# multiplying them: the output of any unit is the input of any earlier unit plus a sum, and the
# gradient at any unit is the gradient at the top plus a term through the weights. This page checks
# each equation of §2 of the paper with autograd on a real stack of 54 residual units (as many as
# ResNet-110 has) and prints the numbers.
#
# > "Our derivations reveal that *if both $h(\mathbf{x}_l)$ and $f(\mathbf{y}_l)$ are identity
# > mappings*, the signal could be directly propagated from one unit to any other units, in both
# > forward and backward passes." — He et al. 2016, §1
#
# A residual unit computes $\mathbf{y}_l = h(\mathbf{x}_l) + F(\mathbf{x}_l, \mathcal{W}_l)$ and
# $\mathbf{x}_{l+1} = f(\mathbf{y}_l)$ (eqs. 1–2). ResNet v1 has $h$ = identity and $f$ = ReLU.
# Here $f$ is the identity, which is what the pre-activation unit of the
# [activation variants page](activation_variants.md) achieves, so the equations hold exactly.

# %%
import torch
from torch import nn

from labml_style_src.device import DEVICE
from labml_style_src.resnet_v1.residual_block import conv3x3, residual_add

# %% [markdown]
# ## A unit with $f$ = identity
#
# Eq. (3) is the unit without anything after the addition:
#
# $$\mathbf{x}_{l+1} = \mathbf{x}_l + F(\mathbf{x}_l, \mathcal{W}_l).$$
#
# §3 breaks the shortcut with a scalar, $h(\mathbf{x}_l) = \lambda_l \mathbf{x}_l$ (eq. 6), so the
# unit takes `lam` as data; $\lambda = 1$ is eq. (3). $F$ is the full pre-activation residual function
# (BN → ReLU → conv → BN → ReLU → conv) that the rest of this chapter uses.

# %%
def preact_F(c: int) -> nn.Sequential:
    # $F$ for a two-3×3 unit: BN → ReLU → conv3×3 → BN → ReLU → conv3×3, `[B, c, H, W]` -> same.
    return nn.Sequential(
        nn.BatchNorm2d(c), nn.ReLU(), conv3x3(c, c),
        nn.BatchNorm2d(c), nn.ReLU(), conv3x3(c, c),
    )


class Unit(nn.Module):
    def __init__(self, c: int, lam: float = 1.0):
        super().__init__()
        self.lam = lam
        self.F = preact_F(c)

    def forward(self, x):  # x: [B, c, H, W] -> [B, c, H, W]
        # Eq. (6): $x_{l+1} = \lambda x_l + F(x_l)$; eq. (3) when $\lambda = 1$.
        return residual_add(self.F(x), self.lam * x)


# %% [markdown]
# ## A stack to measure
#
# We keep every $\mathbf{x}_i$ on the way up. The numbers are float64 so that the tolerances below
# can be tight (1e-9 and better): what remains is rounding, not an approximation. BN stays in training
# mode, as in the first steps of training, so every $F$ is a real, non-small function.

# %%
def make_stack(n_units: int, lam: float = 1.0, c: int = 8, seed: int = 0,
               F_off: bool = False) -> nn.ModuleList:
    torch.manual_seed(seed)
    units = nn.ModuleList(Unit(c, lam) for _ in range(n_units))
    units = units.to(DEVICE, torch.float64)
    if F_off:  # last conv of every $F$ at zero: $F \equiv 0$, only shortcuts are left
        for unit in units:
            nn.init.zeros_(unit.F[-1].weight)
    return units


def forward_all(units: nn.ModuleList, x0: torch.Tensor) -> list:
    # $[x_0, x_1, \dots, x_L]$: L + 1 tensors of shape `[B, c, H, W]`.
    xs = [x0]
    for unit in units:
        xs.append(unit(xs[-1]))
    return xs


def sample_input(c: int = 8, seed: int = 1) -> torch.Tensor:
    # `[B, c, H, W]` = [2, 8, 6, 6], and we will want $\partial E / \partial x_0$.
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c, 6, 6, generator=g, dtype=torch.float64)
    return x.to(DEVICE).requires_grad_()


# %% [markdown]
# ## Eq. (4): $\mathbf{x}_L$ is $\mathbf{x}_l$ plus a sum
#
# Unrolling eq. (3) from any unit $l$ to any deeper unit $L$:
#
# $$\mathbf{x}_L = \mathbf{x}_l + \sum_{i=l}^{L-1} F(\mathbf{x}_i, \mathcal{W}_i).$$
#
# We run the stack, then call each unit's $F$ again on the stored $\mathbf{x}_i$ and add the results
# to $\mathbf{x}_l$. In a plain network $\mathbf{x}_L$ would be a product of $L - l$ layers applied to
# $\mathbf{x}_l$ instead.

# %%
if __name__ == "__main__":
    L = 54
    units = make_stack(L)
    xs = forward_all(units, sample_input())
    print(f"{'l':>3} {'|x_L|':>10} {'|x_l|':>10} {'|sum F|':>10} "
          f"{'max |x_L - x_l - sum F|':>24}")
    for l in (0, 10, 27, 53):
        sum_F = sum(units[i].F(xs[i]) for i in range(l, L))
        err = (xs[L] - xs[l] - sum_F).abs().max().item()
        norms = (xs[L].norm(), xs[l].norm(), sum_F.norm())
        print(f"{l:>3}" + "".join(f" {n:>10.2f}" for n in norms) + f" {err:>24.2e}")
        assert err < 1e-9 * xs[L].abs().max().item()

# %% [markdown]
# ## Eq. (5): the gradient has a term that skips every weight
#
# With a loss $E$, the chain rule applied to eq. (4) gives
#
# $$\frac{\partial E}{\partial \mathbf{x}_l} = \frac{\partial E}{\partial \mathbf{x}_L}
# \Big(1 + \frac{\partial}{\partial \mathbf{x}_l} \sum_{i=l}^{L-1} F(\mathbf{x}_i, \mathcal{W}_i)\Big).$$
#
# The "1" is the *direct* term: $\partial E / \partial \mathbf{x}_L$ arrives at unit $l$ untouched.
# We check it three ways. `torch.autograd.grad` gives the left side through the network as it ran.
# The residual term is a separate vector–Jacobian product of $\sum F$ (recomputed from the stored
# $\mathbf{x}_i$) with $\partial E / \partial \mathbf{x}_L$. What is left must be exactly
# $\partial E / \partial \mathbf{x}_L$. The loss is a fixed random linear read-out of $\mathbf{x}_L$,
# so $\partial E / \partial \mathbf{x}_L$ is a known tensor.

# %%
def grad_decomposition(units: nn.ModuleList, x0: torch.Tensor, l: int,
                       readout: torch.Tensor):
    # Returns $\partial E/\partial x_L$, $\partial E/\partial x_l$ and the term through the weights.
    xs = forward_all(units, x0)
    L = len(units)
    E = (xs[L] * readout).sum()
    dE_dxL, dE_dxl = torch.autograd.grad(E, [xs[L], xs[l]], retain_graph=True)
    # $\hat F_i = \lambda^{L-1-i} F(x_i)$ (eq. 7); plain $F$ when $\lambda = 1$.
    sum_F_hat = sum(units[i].lam ** (L - 1 - i) * units[i].F(xs[i])
                    for i in range(l, L))
    through_F, = torch.autograd.grad(sum_F_hat, xs[l], grad_outputs=dE_dxL)
    return dE_dxL, dE_dxl, through_F


# %%
if __name__ == "__main__":
    torch.manual_seed(2)
    readout = torch.randn_like(xs[L])  # E = <readout, x_L>, so dE/dx_L = readout
    print(f"{'l':>3} {'|dE/dx_l|':>10} {'|direct|':>10} {'|via F|':>10} "
          f"{'max |dE/dx_l - dE/dx_L - via F|':>32}")
    for l in (0, 10, 27, 53):
        dE_dxL, dE_dxl, via_F = grad_decomposition(units, sample_input(), l, readout)
        err = (dE_dxl - dE_dxL - via_F).abs().max().item()
        norms = (dE_dxl.norm(), dE_dxL.norm(), via_F.norm())
        print(f"{l:>3}" + "".join(f" {n:>10.3f}" for n in norms) + f" {err:>32.2e}")
        assert torch.equal(dE_dxL, readout)
        assert err < 1e-9 * dE_dxl.abs().max().item()

# %% [markdown]
# ### The gradient does not vanish when the weights are small
#
# > "This implies that the gradient of a layer does not vanish even when the weights are arbitrarily
# > small." — He et al. 2016, §2
#
# Multiply the last convolution of every $F$ by $\varepsilon$. The term through the weights shrinks
# with $\varepsilon$; the direct term does not, so $\partial E / \partial \mathbf{x}_0$ tends to
# $\partial E / \partial \mathbf{x}_L$ instead of to zero.

# %%
if __name__ == "__main__":
    print(f"{'eps':>7} {'|dE/dx_0| / |dE/dx_L|':>24} {'|via F| / |dE/dx_L|':>22}")
    for eps in (1.0, 1e-3, 1e-6):
        small = make_stack(L)
        with torch.no_grad():
            for unit in small:
                unit.F[-1].weight.mul_(eps)
        dE_dxL, dE_dx0, via_F = grad_decomposition(small, sample_input(), 0, readout)
        ratio = (dE_dx0.norm() / dE_dxL.norm()).item()
        via = (via_F.norm() / dE_dxL.norm()).item()
        print(f"{eps:>7.0e} {ratio:>24.6f} {via:>22.2e}")
    assert abs(ratio - 1) < 1e-4 and via < 1e-4  # eps = 1e-6: only the direct term left

# %% [markdown]
# Both equations need $h$ and $f$ to be identities. The [next page](scaled_shortcut.md) breaks the
# first condition with a scaled shortcut, $h(\mathbf{x}_l) = \lambda \mathbf{x}_l$, and follows the
# gradient down all 54 units; the [activation variants page](activation_variants.md) deals with $f$.
#
# ## Exercises
#
# 1. **Eq. (4) by hand (auto-checked).** Write `unrolled_x_L(units, xs, l)`: given the units and
#    the stored inputs $[\mathbf{x}_0, \dots, \mathbf{x}_{L-1}]$ of each (`xs`, without the output
#    $\mathbf{x}_L$), return $\mathbf{x}_L$ computed from $\mathbf{x}_l$ by eq. (4), calling only
#    the units' `F`. Check it with `check_unrolled(unrolled_x_L)`.
# 2. Put a ReLU after the addition (`torch.relu(residual_add(...))`, $f$ = ReLU as in ResNet v1) and
#    rerun the eq. (4) table. How large is the error now, and which term of eq. (4) does the ReLU
#    change?
# 3. In the small-weights cell, multiply the *first* convolution of every $F$ by $\varepsilon$
#    instead of the last. Does $\partial E / \partial \mathbf{x}_0$ still tend to
#    $\partial E / \partial \mathbf{x}_L$? What does the BN right after that convolution do to the
#    scale (in training mode)?

# %%
def check_unrolled(unrolled_x_L) -> None:
    # Compares `unrolled_x_L(units, xs[:L], l)` with the stack's own output $x_L$ for every $l$.
    units = make_stack(6, c=4, seed=3)
    g = torch.Generator().manual_seed(4)
    x0 = torch.randn(2, 4, 5, 5, generator=g, dtype=torch.float64).to(DEVICE)
    with torch.no_grad():
        xs = forward_all(units, x0)
        for l in range(len(units)):
            got = unrolled_x_L(units, xs[:-1], l)
            err = (got - xs[-1]).abs().max().item()
            if err > 1e-9 * xs[-1].abs().max().item():
                raise AssertionError(f"from l = {l}, x_L is off by {err:.3g}. Eq. (4) "
                                     "starts from x_l and adds the output of F of "
                                     "every unit from l up to the last one")
    print("correct: eq. (4) rebuilds x_L from any unit l")
