# %% [markdown]
# # Activation variants: where BN and ReLU go
#
# The second condition of the [propagation page](propagation.md) is that nothing happens after the
# addition, $f$ = identity. Fig. 4 of the paper tries five ways to arrange the same conv, BN and ReLU
# layers around the addition; the last one, *full pre-activation*, is the unit of ResNet v2. This page
# builds all five from one table, prints Table 2, and measures on 100 stacked units what a "clean"
# shortcut path means for the signal and its gradient.
#
# > "Figure 4. Various usages of activation in Table 2. All these units consist of the same
# > components — only the orders are different." — He et al. 2016, Fig. 4

# %%
import torch
from torch import nn

from labml_style_src.device import DEVICE
from labml_style_src.resnet_v1.residual_block import conv3x3, residual_add

# %% [markdown]
# ## The same parts in five orders
#
# A unit computes $\mathbf{y}_l = \mathbf{x}_l + F(\mathbf{x}_l)$ and $\mathbf{x}_{l+1} = f(\mathbf{y}_l)$
# (eqs. 1–2). A variant is the order of the layers inside $F$ and the layers of $f$, written as a
# string, so the table reads like Fig. 4:
#
# | Fig. 4 | variant | $F$ | $f$ |
# |---|---|---|---|
# | (a) | original | conv BN ReLU conv BN | ReLU |
# | (b) | BN after addition | conv BN ReLU conv | BN ReLU |
# | (c) | ReLU before addition | conv BN ReLU conv BN ReLU | identity |
# | (d) | ReLU-only pre-activation | ReLU conv BN ReLU conv BN | identity |
# | (e) | full pre-activation | BN ReLU conv BN ReLU conv | identity |

# %%
ACTIVATION_VARIANTS = {
    # name: (layers of F, layers of f after the addition), Fig. 4 (a)–(e).
    "original": ("conv bn relu conv bn", "relu"),
    "bn_after_addition": ("conv bn relu conv", "bn relu"),
    "relu_before_addition": ("conv bn relu conv bn relu", ""),
    "relu_only_preact": ("relu conv bn relu conv bn", ""),
    "full_preact": ("bn relu conv bn relu conv", ""),
}


def layers(order: str, c: int) -> nn.Sequential:
    # "conv bn relu" -> conv3×3 → BN → ReLU on `c` channels; "" -> the identity.
    make = {"conv": lambda: conv3x3(c, c), "bn": lambda: nn.BatchNorm2d(c), "relu": nn.ReLU}
    return nn.Sequential(*(make[name]() for name in order.split()))


class ActivationVariantUnit(nn.Module):
    def __init__(self, c: int, variant: str = "full_preact"):
        super().__init__()
        if variant not in ACTIVATION_VARIANTS:
            raise ValueError(f"unknown activation variant {variant!r}; choose one of {list(ACTIVATION_VARIANTS)}")
        F_order, f_order = ACTIVATION_VARIANTS[variant]
        self.F, self.f = layers(F_order, c), layers(f_order, c)

    def forward(self, x):  # x: [B, c, H, W] -> [B, c, H, W]
        # Eqs. (1)–(2): $x_{l+1} = f(x_l + F(x_l))$; $f$ is empty, the identity, for (c)–(e).
        return self.f(residual_add(self.F(x), x))


# %% [markdown]
# ## Table 2 of the paper
#
# CIFAR-10 test error (%), median of 5 runs, ResNet-110 (two-3×3 units) and ResNet-164 (bottleneck
# units, built on the [next page](preact_resnet.md)).

# %%
TABLE_2 = {
    # variant: (Fig. 4, ResNet-110, ResNet-164)
    "original": ("(a)", 6.61, 5.93),
    "bn_after_addition": ("(b)", 8.17, 6.50),
    "relu_before_addition": ("(c)", 7.84, 6.14),
    "relu_only_preact": ("(d)", 6.71, 5.91),
    "full_preact": ("(e)", 6.37, 5.46),
}

if __name__ == "__main__":
    print(f"{'variant':<22} {'Fig. 4':>6} {'ResNet-110':>11} {'ResNet-164':>11}")
    for name, (fig, e110, e164) in TABLE_2.items():
        print(f"{name:<22} {fig:>6} {e110:>11.2f} {e164:>11.2f}")
    assert min(TABLE_2, key=lambda k: TABLE_2[k][1]) == min(TABLE_2, key=lambda k: TABLE_2[k][2]) == "full_preact"

# %% [markdown]
# ## "The shortcut path stays clean", measured
#
# > "These experiments suggest that keeping a “clean” information path (indicated by the grey arrows
# > in Fig. 1, 2, and 4) is helpful for easing optimization." — He et al. 2016, §1
#
# We stack 100 units of each variant at initialisation (BN in training mode, as in the first step of
# training) and run one batch through. Two ways to look at the path from $\mathbf{x}_0$ to
# $\mathbf{x}_L$:
#
# *With $F$ as initialised:*
#
# - `std x_L/x_0`: how the size of the signal changes over 100 units;
# - `grad x_0/x_L`: $|\partial E/\partial \mathbf{x}_0| / |\partial E/\partial \mathbf{x}_L|$ for a
#   random linear read-out $E$;
# - `eq.(4) gap`: $|\mathbf{x}_L - \mathbf{x}_0 - \sum_i F(\mathbf{x}_i)| / |\mathbf{x}_L|$, zero
#   exactly when the path from $\mathbf{x}_0$ to $\mathbf{x}_L$ is nothing but additions;
# - `min(x_L-x_0)`: the smallest change of any element.
#
# *With $F$ switched off* (the last conv of every $F$ zeroed, so $F \equiv 0$ and only the shortcut
# path is left):
#
# - `off: |x_L-x_0|/|x_0|`: what 100 "empty" units do to the signal; 0 means a clean path;
# - `off: grad ratio`: the same gradient ratio; 1 means the direct term of eq. (5) arrives untouched.

# %%
def measure(variant: str, n_units: int = 100, c: int = 8, seed: int = 0, F_off: bool = False) -> dict:
    torch.manual_seed(seed)
    units = nn.ModuleList(ActivationVariantUnit(c, variant) for _ in range(n_units)).to(DEVICE)
    if F_off:
        for unit in units:
            nn.init.zeros_([m for m in unit.F if isinstance(m, nn.Conv2d)][-1].weight)
    # A forward hook on every $F$ collects $F(x_i)$ during the one forward pass.
    F_outputs = []
    hooks = [unit.F.register_forward_hook(lambda module, inputs, out: F_outputs.append(out)) for unit in units]
    x0 = torch.randn(4, c, 8, 8).to(DEVICE).requires_grad_()  # [B, c, H, W]
    xL = x0
    for unit in units:
        xL = unit(xL)
    for hook in hooks:
        hook.remove()
    readout = torch.randn(xL.shape).to(DEVICE)
    dE_dx0, = torch.autograd.grad((xL * readout).sum(), x0)
    with torch.no_grad():
        sum_F = sum(F_outputs)
        return {
            "std x_L/x_0": (xL.std() / x0.std()).item(),
            "grad x_0/x_L": (dE_dx0.norm() / readout.norm()).item(),
            "eq.(4) gap": ((xL - x0 - sum_F).norm() / xL.norm()).item(),
            "min(x_L-x_0)": (xL - x0).min().item(),
            "|x_L-x_0|/|x_0|": ((xL - x0).norm() / x0.norm()).item(),
        }


# %%
if __name__ == "__main__":
    on = {name: measure(name) for name in ACTIVATION_VARIANTS}
    off = {name: measure(name, F_off=True) for name in ACTIVATION_VARIANTS}
    columns = ["std x_L/x_0", "grad x_0/x_L", "eq.(4) gap", "min(x_L-x_0)"]
    print(f"{'variant':<21}" + "".join(f"{col:>13}" for col in columns)
          + f"{'off: |x_L-x_0|/|x_0|':>21}{'off: grad ratio':>16}")
    for name in ACTIVATION_VARIANTS:
        print(f"{name:<21}" + "".join(f"{on[name][col]:>13.4g}" for col in columns)
              + f"{off[name]['|x_L-x_0|/|x_0|']:>21.4g}{off[name]['grad x_0/x_L']:>16.4g}")
    clean, unclean = ("relu_before_addition", "relu_only_preact", "full_preact"), ("original", "bn_after_addition")
    for name in clean:  # f = identity: eq. (4) to float rounding, and an untouched shortcut path
        assert on[name]["eq.(4) gap"] < 1e-5
        assert off[name]["|x_L-x_0|/|x_0|"] == 0 and abs(off[name]["grad x_0/x_L"] - 1) < 1e-6
    for name in unclean:  # something sits after every addition
        assert on[name]["eq.(4) gap"] > 0.1 and off[name]["|x_L-x_0|/|x_0|"] > 0.1
    # (b): BN after every addition pins the size of the signal; all the others let it grow. Even with
    # F off, 100 BN-ReLUs change x_0 by more than its own size.
    assert off["bn_after_addition"]["|x_L-x_0|/|x_0|"] > 1
    assert min(on, key=lambda k: on[k]["std x_L/x_0"]) == "bn_after_addition"
    # (c): a non-negative F can only push the signal up.
    assert on["relu_before_addition"]["min(x_L-x_0)"] >= 0

# %% [markdown]
# What the numbers say:
#
# - **Full and ReLU-only pre-activation** (d, e): $\mathbf{x}_{100}$ is $\mathbf{x}_0$ plus the sum of
#   all residuals, to rounding. With $F$ off, 100 units are exactly the identity, forward and
#   backward: the direct term of eq. (5) reaches $\mathbf{x}_0$ with factor 1.
# - **BN after addition** (b): the size of the signal is pinned because every unit normalises the
#   sum. Even with $F$ off, 100 BN–ReLUs on the shortcut change $\mathbf{x}_0$ by more than its own
#   size. The paper sees it as trouble in reducing the training loss at the beginning (8.17 % vs
#   6.61 %).
# - **ReLU before addition** (c): eq. (4) holds and the path is clean, but every residual is
#   $\ge 0$, so no element ever decreases (`min(x_L-x_0)` $\ge 0$) and the signal drifts upwards. A
#   residual should be able to take either sign (7.84 %).
# - **Original** (a): the ReLU after each addition breaks eq. (4). With $F$ off it only cuts the
#   negative part of $\mathbf{x}_0$ once (after that $\mathbf{x}_l \ge 0$ passes), but with $F$ on it
#   cuts wherever $F$ is very negative, in every unit, which is why the paper's ResNet-1001 trains
#   slowly with this unit (7.61 % vs 4.92 % pre-activated).
#
# The pre-activation unit is the original unit read differently: the ReLU after the addition of unit
# $l$ and the first BN–ReLU of unit $l+1$ act only on the $F$ path of the next unit (Fig. 5), and the
# shortcut is left alone.
#
# Every variant keeps the shape and runs forward/backward on CPU and CUDA:
# [test](../tests/test_resnet_v2.md#test_every_variant_block_runs); an unknown name raises a
# `ValueError` that lists the five: [test](../tests/test_resnet_v2.md#test_bad_variant_names).
#
# ## Exercises
#
# 1. **Which unit only adds? (auto-checked)** Exactly one variant can never decrease any element of
#    its input, whatever the weights. Call `check_never_decreasing(name)` with its name.
# 2. Measure the five variants with `n_units=10` and with `n_units=1000` (on a GPU). Which columns
#    change with depth, and which variant changes most?
# 3. In the ReLU-only pre-activation (d) the first ReLU is "not used in conjunction with a BN layer".
#    Print the mean and std of the input to the first conv of unit 50 for (d) and (e). What does the
#    BN of (e) change?
# 4. Write the asymmetric form of eq. (9), $\mathbf{x}_{l+1} = \mathbf{x}_l + F(\hat f(\mathbf{x}_l))$,
#    with $\hat f$ = BN–ReLU, and show with a stack of 3 units that it is the full pre-activation unit.

# %%
def check_never_decreasing(name: str) -> None:
    # For every variant: does x_L - x_0 >= 0 hold on several random stacks? Exactly one must say yes.
    if name not in ACTIVATION_VARIANTS:
        raise AssertionError(f"{name!r} is not a variant; choose one of {list(ACTIVATION_VARIANTS)}")
    never = [v for v in ACTIVATION_VARIANTS if all(measure(v, n_units=5, c=4, seed=s)["min(x_L-x_0)"] >= 0
                                                   for s in range(2))]
    if never != [name]:
        raise AssertionError(f"{name!r} decreases some elements (min(x_L-x_0) < 0 on a random stack); "
                             "look for a unit whose F ends in a ReLU")
    print(f"correct: {name} adds a non-negative F(x) to x, so the signal can only grow")
