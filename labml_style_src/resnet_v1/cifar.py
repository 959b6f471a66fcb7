# %% [markdown]
# # CIFAR ResNets: 6n + 2 layers
#
# For CIFAR-10 the paper builds much thinner networks on 32×32 images: a 3×3 stem, three stages of $n$
# basic blocks with 16, 32 and 64 filters on 32×32, 16×16 and 8×8 maps, global average pooling and a
# 10-way fully connected layer, with option A shortcuts everywhere. This page builds ResNet-20 to
# ResNet-1202 with the same `ResNet` class as the ImageNet models and checks the parameter counts of the
# paper's Table 6.

# %%
import torch
from torch.nn import functional as nnf

from labml_style_src.device import DEVICE
from labml_style_src.paper_tables import RESNET_TABLE_6 as TABLE_6  # depth -> row
from labml_style_src.resnet_v1.residual_block import BasicBlock, n_params
from labml_style_src.resnet_v1.resnet import ResNet, stage_shapes

# %% [markdown]
# ## The recipe: 6n + 2
#
# Our summary of §4.2 of the paper: the first layer is a 3×3 convolution; then come $6n$ layers of 3×3
# convolutions, $2n$ on each map size (so $n$ basic blocks per stage); the map halves by a stride-2
# convolution where a stage begins; the network ends with global average pooling and the fully connected
# layer. Counting weight layers gives $1 + 6n + 1 = 6n + 2$. The paper uses identity shortcuts in all
# cases, option A where the channels double, so a CIFAR ResNet has exactly the parameters of its plain
# counterpart ([test](../tests/test_resnet_v1.md#test_shortcut_options_add_exactly_the_projections)).
#
# The `block` argument lets the [ablation chapter](../ablation/degradation.md) pass a plain block
# (no shortcut) and get the plain network of the same shape from the same function.

# %%
CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)


def cifar_resnet(depth: int, num_classes: int = 10, *, shortcut="A",
                 block=BasicBlock) -> ResNet:
    # depth = 6n + 2: the stem conv, 3 stages × n blocks × 2 convs, the fc layer.
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNets have depth 6n+2 with n ≥ 1 (8, 14, 20, …), "
                         f"e.g. the paper's {CIFAR_DEPTHS}; got {depth}")
    n = (depth - 2) // 6
    return ResNet(block, (n, n, n), widths=(16, 32, 64), stem="cifar",
                  shortcut=shortcut, num_classes=num_classes)


# %% [markdown]
# ## Shapes
#
# Three stages on 32, 16 and 8 pixels, with 16, 32 and 64 channels
# ([test](../tests/test_resnet_v1.md#test_stage_shapes_cifar)).

# %%
if __name__ == "__main__":
    torch.manual_seed(0)
    model = cifar_resnet(20).to(DEVICE).eval()
    x = torch.randn(2, 3, 32, 32, device=DEVICE)  # [B, 3, 32, 32]
    shapes = stage_shapes(model, x)
    for name, shape in shapes.items():
        print(f"{name:10s}", shape)
    stages = list(shapes.values())[1:]
    assert stages == [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]
    with torch.no_grad():
        assert model(x).shape == (2, 10)
    # Option A where 16 → 32 channels and 32 → 16 pixels.
    print(model.stages.conv3_x[0].shortcut)

# %% [markdown]
# ## Parameters: Table 6
#
# Table 6 of the paper lists the parameter counts and CIFAR-10 test errors, kept as `TABLE_6`. We count
# on the `meta` device (no memory, so even ResNet-1202 takes a moment) and round as the paper does
# ([test](../tests/test_resnet_v1.md#test_cifar_param_counts_match_table_6)).
# The errors are the paper's measurements, stated as facts. For ResNet-110 the paper trained five
# times and prints "6.43 (6.61±0.16)": 6.43 % is the *best* of the five runs, 6.61 % their mean and
# 0.16 the standard deviation. The pre-activation paper (He et al. 2016), whose CIFAR figures are
# all medians of five runs, also gives 6.61 % for its ResNet-110 baseline: the same number, a
# different statistic, so say which one you quote. ResNet-1202 reaches a training error as low as
# ResNet-110's but tests worse, 7.93 %, which the paper attributes to overfitting a 19.4M-parameter
# model on a small data set. The [training chapter](../training/recipe.md) has the recipe behind
# these numbers.

# %%
if __name__ == "__main__":
    print("depth      params    paper  test error (%)")
    for depth, row in TABLE_6.items():
        with torch.device("meta"):
            n = n_params(cifar_resnet(depth))
        digits = 1 if row.params_m >= 1 else 2  # as printed: 2 decimals below 1M
        error = f"{row.error:.2f}"
        if row.mean is not None:
            error += f" (best of 5; mean {row.mean:.2f} ± {row.std:.2f})"
        print(f"{depth:5d} {n:11,d}  {row.params_m:6.2f}M  {error}")
        assert round(n / 1e6, digits) == row.params_m

# %% [markdown]
# ## What option A saves
#
# Option A adds nothing to the identity: the parameters of a CIFAR ResNet are those of its convolutions,
# BNs and fc layer. Option B adds exactly two projections, 16 → 32 and 32 → 64 (1×1 weights plus BN);
# option C adds a projection to every block
# ([test](../tests/test_resnet_v1.md#test_shortcut_options_add_exactly_the_projections)).

# %%
if __name__ == "__main__":
    counts = {o: n_params(cifar_resnet(20, shortcut=o)) for o in "ABC"}
    print("ResNet-20 params by shortcut option:", counts)
    projections = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert counts["B"] - counts["A"] == projections

# %% [markdown]
# ## A few training steps
#
# Not a training run (that is the [training chapter](../training/recipe.md)), only a check that the
# network learns: a few SGD steps on one fixed batch of random images and labels must lower the loss.

# %%
if __name__ == "__main__":
    torch.manual_seed(0)
    model = cifar_resnet(20).to(DEVICE).train()
    images = torch.randn(8, 3, 32, 32, device=DEVICE)
    labels = torch.randint(0, 10, (8,), device=DEVICE)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    losses = []
    for _step in range(8):
        loss = nnf.cross_entropy(model(images), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print("loss:", " ".join(f"{v:.2f}" for v in losses[::2]), "…", f"{losses[-1]:.2f}")
    assert losses[-1] < losses[0]

# %% [markdown]
# ## Exercises
#
# 1. **Parameters as a formula (auto-checked).** Write `cifar_params(n)`, the parameter count of the
#    option-A CIFAR ResNet with $6n+2$ layers (convolutions without bias, BN with $\gamma$ and $\beta$,
#    the 64 → 10 fc layer with bias), and run `check_cifar_params(cifar_params)`.
# 2. Why can the CIFAR nets not use the ImageNet stem? Compute the map size at the last stage for a
#    32×32 image with a 7×7/2 conv and a 3×3/2 max-pool in front.
# 3. ResNet-1202 has about 70 times the parameters of ResNet-20. Roughly how many times its
#    multiply-adds? (Use `count_macs` from the [bottleneck page](bottleneck.md).)
# 4. Build `cifar_resnet(20, shortcut="B")`: which blocks get a projection? Would option B change the
#    comparison with a plain net that the paper makes with these networks?

# %%
def check_cifar_params(formula) -> None:
    # Compares `formula(n)` with real networks of depth 6n + 2.
    for n in (1, 3, 9, 18):
        with torch.device("meta"):
            truth = n_params(cifar_resnet(6 * n + 2))
        got = formula(n)
        if got != truth:
            hint = "too many" if got > truth else "too few"
            raise AssertionError(
                f"for n={n} (ResNet-{6 * n + 2}) your formula gives {got:,d}: {hint}. "
                "Count the stem, each stage's first block apart from the others, and "
                "the fc layer; option A's shortcuts have no parameters")
    print("correct: your formula matches the CIFAR ResNets for n = 1, 3, 9, 18")
