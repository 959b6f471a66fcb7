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
from labml_style_src.diagrams import draw
from labml_style_src.paper_tables import PREACT_TABLE_2
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
    make = {"conv": lambda: conv3x3(c, c), "bn": lambda: nn.BatchNorm2d(c),
            "relu": nn.ReLU}
    return nn.Sequential(*(make[name]() for name in order.split()))


class ActivationVariantUnit(nn.Module):
    def __init__(self, c: int, variant: str = "full_preact"):
        super().__init__()
        if variant not in ACTIVATION_VARIANTS:
            raise ValueError(f"unknown activation variant {variant!r}; "
                             f"choose one of {list(ACTIVATION_VARIANTS)}")
        F_order, f_order = ACTIVATION_VARIANTS[variant]
        self.F, self.f = layers(F_order, c), layers(f_order, c)

    def forward(self, x):  # x: [B, c, H, W] -> [B, c, H, W]
        # Eqs. (1)–(2): $x_{l+1} = f(x_l + F(x_l))$; $f$ is empty, the identity, for (c)–(e).
        return self.f(residual_add(self.F(x), x))


# %%
if __name__ == "__main__":
    # The five units of Fig. 4, drawn from `ActivationVariantUnit`: one set of layers in
    # five orders.
    units = {f"({letter}) {name.replace('_', ' ')}": ActivationVariantUnit(16, name)
             for letter, name in zip("abcde", ACTIVATION_VARIANTS)}
    draw(units, torch.zeros(1, 16, 8, 8), per_row=3)


# %% [markdown]
# ## Table 2 of the paper
#
# CIFAR-10 test error (%), median of 5 runs, ResNet-110 (two-3×3 units) and ResNet-164 (bottleneck
# units, built on the [next page](preact_resnet.md)); `PREACT_TABLE_2` is keyed by our variant names.

# %%
if __name__ == "__main__":
    print(f"{'variant':<22} {'Fig.':>6} {'ResNet-110':>11} {'ResNet-164':>11}")
    for name, row in PREACT_TABLE_2.items():
        print(f"{name:<22} {row.fig:>6} {row.resnet110:>11.2f} {row.resnet164:>11.2f}")
    assert list(PREACT_TABLE_2) == list(ACTIVATION_VARIANTS)
    for column in ("resnet110", "resnet164"):  # the lowest error in both columns
        best = min(PREACT_TABLE_2, key=lambda k: getattr(PREACT_TABLE_2[k], column))
        assert best == "full_preact"

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
def measure(variant: str, n_units: int = 100, c: int = 8, seed: int = 0,
            F_off: bool = False) -> dict:
    torch.manual_seed(seed)
    units = nn.ModuleList(ActivationVariantUnit(c, variant) for _ in range(n_units))
    units = units.to(DEVICE)
    if F_off:
        for unit in units:
            nn.init.zeros_([m for m in unit.F if isinstance(m, nn.Conv2d)][-1].weight)
    # A forward hook on every $F$ collects $F(x_i)$ during the one forward pass.
    F_outputs = []
    hooks = [unit.F.register_forward_hook(lambda m, inputs, out: F_outputs.append(out))
             for unit in units]
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
        off_change, off_grad = off[name]["|x_L-x_0|/|x_0|"], off[name]["grad x_0/x_L"]
        print(f"{name:<21}" + "".join(f"{on[name][col]:>13.4g}" for col in columns)
              + f"{off_change:>21.4g}{off_grad:>16.4g}")
    clean = ("relu_before_addition", "relu_only_preact", "full_preact")
    unclean = ("original", "bn_after_addition")
    for name in clean:  # f = identity: eq. (4) to rounding, an untouched shortcut path
        assert on[name]["eq.(4) gap"] < 1e-5
        assert off[name]["|x_L-x_0|/|x_0|"] == 0
        assert abs(off[name]["grad x_0/x_L"] - 1) < 1e-6
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
#   size. The paper sees it as trouble in reducing the training loss at the beginning (ResNet-110:
#   8.17 % against 6.61 %, medians of 5 runs).
# - **ReLU before addition** (c): eq. (4) holds and the path is clean, but every residual is
#   $\ge 0$, so no element ever decreases (`min(x_L-x_0)` $\ge 0$) and the signal drifts upwards. A
#   residual should be able to take either sign (7.84 %).
# - **Original** (a): the ReLU after each addition breaks eq. (4). With $F$ off it only cuts the
#   negative part of $\mathbf{x}_0$ once (after that $\mathbf{x}_l \ge 0$ passes), but with $F$ on it
#   cuts wherever $F$ is very negative, in every unit. The paper finds this "not severe" at 164
#   layers, where training suffers a little at the start and soon recovers, but at 1001 layers the
#   original unit reduces the training error very slowly at the beginning (its Fig. 1).
#
# ResNet-1001 on CIFAR-10 errs 7.61 % with the original unit and 4.92 % with full pre-activation
# (Table 3, medians of 5 runs). §4.2 of the paper names *two* causes. First, optimisation is easier
# because $f$ is the identity: the effect measured above, strongest at 1000 layers. Second, BN used as
# pre-activation regularises the model: in the original unit a BN output is added to the shortcut,
# so the next weight layer receives an unnormalised sum, whereas in the pre-activation unit the
# input of every weight layer is normalised. The second shows as a slightly higher training loss
# with a lower test error (ResNet-164, Fig. 6 of the paper).
#
# Where the pre-activation unit comes from (Fig. 5): in a stack of original units the activation
# after the addition of unit $l$ feeds *both* paths of unit $l+1$. Apply it to the $F$ path only,
# $\mathbf{x}_{l+1} = \mathbf{x}_l + F(\hat f(\mathbf{x}_l))$ (eq. 9), and the old after-addition
# activation becomes the first layers of the next unit's $F$, its *pre*-activation, while the
# shortcut carries $\mathbf{x}_l$ untouched and the addition is the last operation of every unit.
# Moving the ReLU of (a) this way gives (d); moving the BN–ReLU of (b) gives (e), the full
# pre-activation unit. In our table of orders that is a string operation, checked below.

# %%
if __name__ == "__main__":
    moves = {"original": "relu_only_preact", "bn_after_addition": "full_preact"}
    for post, pre in moves.items():
        F_order, f_order = ACTIVATION_VARIANTS[post]
        # $\hat f$ moved in front of $F$, nothing left after the addition:
        assert ACTIVATION_VARIANTS[pre] == (f"{f_order} {F_order}", "")
        print(f"{post}: F = {F_order!r}, f = {f_order!r}")
        print(f"  -> {pre}: F = {f_order + ' ' + F_order!r}, f = ''")

# %% [markdown]
# Every variant keeps the shape and runs forward/backward on CPU and CUDA:
# [test](../tests/test_resnet_v2.md#test_every_variant_block_runs); an unknown name raises a
# `ValueError` that lists the five: [test](../tests/test_resnet_v2.md#test_bad_variant_names).
#
# ## Exercises
#
# 1. **Which units never output a negative number? (auto-checked)** For some of the five variants,
#    no element of a unit's output $\mathbf{x}_{l+1}$ is ever negative, whatever the weights and the
#    input. Which ones? Set `never_negative` to the set of their names (`{"...", ...}`) and run
#    `check_never_negative(never_negative)`. What does that tell you about the signals the next
#    unit's shortcut can carry?
# 2. Measure the five variants with `n_units=10` and with `n_units=200` (a few seconds on a CPU).
#    Which columns change with depth, and which variant changes most?
# 3. In the ReLU-only pre-activation (d) the first ReLU is "not used in conjunction with a BN layer".
#    Print the mean and std of the input to the first conv of unit 50 for (d) and (e). What does the
#    BN of (e) change?
# 4. Check Fig. 5 on numbers: run 3 "BN after addition" units with their BN–ReLU applied to the $F$
#    path only (eq. 9), and 3 full pre-activation units with the same weights. Which layers must you
#    add before the first and after the last unit for the two outputs to match?

# %%
def check_never_negative(names) -> None:
    # Runs every variant on random weights and inputs: whose output is never negative?
    unknown = set(names) - set(ACTIVATION_VARIANTS)
    if unknown:
        raise AssertionError(f"{sorted(unknown)} are not variants; choose from "
                             f"{list(ACTIVATION_VARIANTS)}")
    truth = set()
    for name in ACTIVATION_VARIANTS:
        torch.manual_seed(0)
        units = nn.Sequential(*(ActivationVariantUnit(4, name) for _ in range(2)))
        with torch.no_grad():
            if units(torch.randn(8, 4, 6, 6)).min() >= 0:
                truth.add(name)
    if set(names) - truth:
        raise AssertionError("a variant you name outputs negative numbers on a random "
                             "input: look at the last layer of each unit")
    if truth - set(names):
        raise AssertionError("a variant whose output is never negative is missing: "
                             "look at the f column of the table of orders")
    print("correct: only a unit that ends in a ReLU keeps every output non-negative")
