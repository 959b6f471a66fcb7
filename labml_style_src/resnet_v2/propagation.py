# %% [markdown]
# # Why identity shortcuts matter: the propagation equations
#
# With an identity shortcut and nothing after the addition, a deep ResNet adds things up instead of
# multiplying them: the output of any unit is the input of any earlier unit plus a sum, and the
# gradient at any unit is the gradient at the top plus a term through the weights. This page checks
# each equation of §2–§3 of the paper with autograd on a real stack of 54 residual units (as many as
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
import matplotlib.pyplot as plt
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
# ## Eq. (8): a scaled shortcut multiplies the direct term by $\lambda^{L-l}$
#
# With $h(\mathbf{x}_l) = \lambda \mathbf{x}_l$ the same steps give
#
# $$\frac{\partial E}{\partial \mathbf{x}_l} = \frac{\partial E}{\partial \mathbf{x}_L}
# \Big(\prod_{i=l}^{L-1} \lambda_i + \frac{\partial}{\partial \mathbf{x}_l}
# \sum_{i=l}^{L-1} \hat F(\mathbf{x}_i, \mathcal{W}_i)\Big),$$
#
# where $\hat F_i = \big(\prod_{j=i+1}^{L-1}\lambda_j\big) F_i$ absorbs the scalars (eq. 7).
#
# > "For an extremely deep network ($L$ is large), if $\lambda_i > 1$ for all $i$, this factor can be
# > exponentially large; if $\lambda_i < 1$ for all $i$, this factor can be exponentially small and
# > vanish, which blocks the backpropagated signal from the shortcut and forces it to flow through the
# > weight layers." — He et al. 2016, §3
#
# For each $\lambda$ the table shows two measurements on 54 units. *Shortcut only*: the last conv of
# every $F$ is zeroed, so $F \equiv 0$ and the gradient is the direct term alone; it must equal
# $\lambda^{54}$ times $\partial E / \partial \mathbf{x}_L$. *Full*: $F$ as initialised; the
# decomposition of eq. (8) must hold to rounding.

# %%
def gradient_at_each_depth(units: nn.ModuleList, x0: torch.Tensor,
                           readout: torch.Tensor) -> list:
    # $|\partial E/\partial x_l| / |\partial E/\partial x_L|$ for $l = 0, \dots, L$,
    # for the loss $E = \langle \text{readout}, x_L \rangle$.
    xs = forward_all(units, x0)
    # One backward pass: every stored $x_l$ can be an input of `autograd.grad`.
    grads = torch.autograd.grad((xs[-1] * readout).sum(), xs)
    return [(g.norm() / readout.norm()).item() for g in grads]


# %%
if __name__ == "__main__":
    print(f"{'lambda':>6} {'lambda^54':>10} {'shortcut only':>14} "
          f"{'full |dE/dx_0|/|dE/dx_L|':>25} {'eq. (8) error':>14}")
    for lam in (0.5, 0.9, 1.0, 1.1, 2.0):
        off = make_stack(L, lam, F_off=True)
        direct = gradient_at_each_depth(off, sample_input(), readout)[0]
        units = make_stack(L, lam)
        dE_dxL, dE_dx0, via_F = grad_decomposition(units, sample_input(), 0, readout)
        err = ((dE_dx0 - lam ** L * dE_dxL - via_F).norm()
               / (dE_dx0.norm() + via_F.norm()))
        full = (dE_dx0.norm() / dE_dxL.norm()).item()
        print(f"{lam:>6} {lam ** L:>10.3e} {direct:>14.3e} {full:>25.3e} "
              f"{err.item():>14.1e}")
        assert abs(direct / lam ** L - 1) < 1e-12
        assert err < 1e-12
        if lam == 0.5:
            assert full > 1  # not vanished: it all went through the weights

# %% [markdown]
# At $\lambda = 0.5$ the shortcut passes on $0.5^{54} \approx 5.6 \times 10^{-17}$ of the gradient: the
# signal has to find its way through the weights. At $\lambda = 2$ the factor is about
# $1.8 \times 10^{16}$. Only $\lambda = 1$ leaves the direct term alone for any depth. Note the *full*
# column at $\lambda = 0.5$: the gradient is not small at all, it is large, and all of it comes
# through the weight layers (the BNs inside $F$ rescale whatever reaches them). Blocking the shortcut
# does not make the gradient vanish here; it makes it depend entirely on $F$. This is the
# "constant scaling" row of Table 1, which the [shortcut variants page](shortcut_variants.md) shows
# together with gating, 1×1 convolutions and dropout on the shortcut.
#
# ## The gradient at every depth
#
# The table looked at $\mathbf{x}_0$ only. The figure follows the gradient down the whole stack:
# $|\partial E/\partial \mathbf{x}_l| / |\partial E/\partial \mathbf{x}_L|$ for every unit $l$, for four
# shortcut scales, with $F$ switched off (left: the direct term alone, a straight line of slope
# $\log \lambda$ per unit on the log scale) and with $F$ as initialised (right).

# %%
if __name__ == "__main__":
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for lam in (0.5, 0.9, 1.0, 1.1):
        for ax, F_off in zip(axes, (True, False)):
            units = make_stack(L, lam, F_off=F_off)
            norms = gradient_at_each_depth(units, sample_input(), readout)
            ax.semilogy(range(L + 1), norms, label=f"λ = {lam}")
            if F_off:  # eq. (8) with F ≡ 0: exactly λ^(L - l) at every depth
                assert all(abs(n / lam ** (L - l) - 1) < 1e-12
                           for l, n in enumerate(norms))
    titles = ("F switched off: direct term only", "F as initialised")
    for ax, title in zip(axes, titles):
        ax.set_title(title)
        ax.set_xlabel("unit l (0 = bottom of the stack)")
        ax.legend()
    axes[0].set_ylabel("|dE/dx_l| / |dE/dx_L|")
    fig.suptitle("Gradient at each depth of a stack of 54 residual units, "
                 "for shortcut scales λ = 0.5, 0.9, 1, 1.1 (eq. 8)")
    fig.tight_layout()
    plt.show()

# %% [markdown]
# !!! note "Where we differ from the paper"
#     The paper derives eqs. (4)–(8) for $f$ = identity but runs the Table 1 experiments with
#     $f$ = ReLU, where they are approximations. Our units have $f$ = identity, so here they are exact.
#     The same checks run in the [tests](../tests/test_resnet_v2.md#test_eq4_forward_sum),
#     [eq. (5)](../tests/test_resnet_v2.md#test_eq5_gradient_decomposition) and
#     [eq. (8)](../tests/test_resnet_v2.md#test_eq8_scaled_shortcut).
#
# ## Exercises
#
# 1. **A gradient that cancels (auto-checked).** Eq. (5) says the gradient is unlikely to cancel
#    because $\frac{\partial}{\partial \mathbf{x}_l}\sum F$ "cannot be always −1". Build units for
#    which it is: write `cancelling_F(lam)`, which returns an `F` made of a single 1×1 convolution
#    on 1-channel maps (no BN) such that, in the unit
#    $\mathbf{x}_1 = \lambda\mathbf{x}_0 + F(\mathbf{x}_0)$,
#    $\partial E / \partial \mathbf{x}_0 = 0$ for every input and every loss.
#    Check it with `check_gradient_cancels(cancelling_F(1.0))`, then for a scaled shortcut with
#    `check_gradient_cancels(cancelling_F(0.5), lam=0.5)`. Would training ever drive a real $F$
#    there?
# 2. Eq. (7) says $\hat F_i = \lambda^{L-1-i} F(\mathbf{x}_i)$ for a constant $\lambda$. Change the
#    eq. (4) cell to verify $\mathbf{x}_L = \lambda^{L-l}\mathbf{x}_l + \sum_i \hat F_i$ for
#    $\lambda = 0.9$. Why does the weight of $F(\mathbf{x}_i)$ depend on how far unit $i$ is from the top?
# 3. Put a ReLU after the addition (`torch.relu(residual_add(...))`, $f$ = ReLU as in ResNet v1) and
#    rerun the eq. (4) table. How large is the error now, and which term of eq. (4) does the ReLU change?
# 4. In the right panel the gradient at $\lambda = 0.5$ grows towards the bottom of the stack although
#    the shortcut passes almost nothing. Put the stack in eval mode (`units.eval()`, so BN uses its
#    running statistics instead of the batch's) and redraw it. What changes, and why?

# %%
def check_gradient_cancels(F: nn.Module, lam: float = 1.0) -> None:
    # Runs the unit $x_1 = \lambda x_0 + F(x_0)$ on random 1-channel maps and measures
    # $\partial E/\partial x_0$ for a random linear loss $E$ of $x_1$.
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 1, 5, 5, generator=g, dtype=torch.float64).requires_grad_()
    x1 = residual_add(F.to(torch.float64)(x0), lam * x0)
    readout = torch.randn(x1.shape, generator=g, dtype=torch.float64)
    dE_dx0, = torch.autograd.grad((x1 * readout).sum(), x0)
    ratio = (dE_dx0.norm() / readout.norm()).item()
    if ratio > 1e-12:
        raise AssertionError(f"|dE/dx_0| / |dE/dx_1| is {ratio:.3g}, not 0. Through "
                             "the unit, the gradient is dE/dx_1 times (shortcut factor "
                             "+ dF/dx_0): choose the weight that makes this vanish")
    print(f"correct: this unit (shortcut scale {lam}) passes no gradient at all")
