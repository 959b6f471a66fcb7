# %% [markdown]
# # Scaling the shortcut: eq. (8) and the gradient at every depth
#
# The [propagation equations](propagation.md) hold because the shortcut is an identity. Multiply it
# by a constant $\lambda$ and the direct term of the gradient, the one that skipped every weight,
# is multiplied by $\lambda$ once per unit. This page measures that factor on the same stack of 54
# pre-activation units, for $\lambda$ below, at and above 1, and follows the gradient down the
# whole stack.

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

from labml_style_src.device import DEVICE
from labml_style_src.resnet_v1.residual_block import residual_add
from labml_style_src.resnet_v2.propagation import (
    forward_all,
    grad_decomposition,
    make_stack,
    sample_input,
)

# %% [markdown]
# The stack and the loss are the previous page's: $L = 54$ units in float64, and
# $E = \langle \text{readout}, \mathbf{x}_L \rangle$ for a fixed random `readout`, so that
# $\partial E / \partial \mathbf{x}_L$ is `readout` itself.

# %%
if __name__ == "__main__":
    L = 54
    torch.manual_seed(2)
    readout = torch.randn(sample_input().shape, dtype=torch.float64).to(DEVICE)

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
# 2. Eq. (7) says $\hat F_i = \lambda^{L-1-i} F(\mathbf{x}_i)$ for a constant $\lambda$. With
#    `make_stack(L, 0.9)` and `forward_all`, verify
#    $\mathbf{x}_L = \lambda^{L-l}\mathbf{x}_l + \sum_i \hat F_i$. Why does the weight of
#    $F(\mathbf{x}_i)$ depend on how far unit $i$ is from the top?
# 3. In the right panel the gradient at $\lambda = 0.5$ grows towards the bottom of the stack although
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
