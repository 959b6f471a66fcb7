# %% [markdown]
# # Three equivalent forms: paths, concatenation, grouped convolution
#
# The paper draws its block three ways (Fig. 3): (a) $C$ separate paths whose outputs are summed,
# (b) the same paths with their 3×3 outputs concatenated and one 1×1 convolution after them, and
# (c) a single *grouped* 3×3 convolution. It trained all three and builds its models with the last:
#
# > "We note that the three forms in Fig. 3 are strictly equivalent, when BN and ReLU are
# > appropriately addressed as mentioned above. We have trained all three forms and obtained the same
# > results. We choose to implement by Fig. 3(c) because it is more succinct and faster than the other
# > two forms." — Xie et al. 2017, §4
#
# This page proves the equivalence on real tensors: we build (a), copy its weights into (b) and (c),
# and compare outputs and gradients. "Appropriately addressed" is the part to get right, and the end
# of the page shows what goes wrong otherwise.

# %%
import torch
from torch import nn

from labml_style_src.device import DEVICE
from labml_style_src.diagrams import draw
from labml_style_src.resnet_v1.residual_block import conv1x1, n_params
from labml_style_src.resnext.aggregated import SplitTransformMerge, transformation

# %% [markdown]
# ## What `groups=` does to a convolution
#
# A convolution with `groups=g` splits its $C_{in}$ input channels into $g$ consecutive groups and its
# $C_{out}$ output channels likewise; output group $j$ sees only input group $j$. So each filter spans
# $C_{in}/g$ channels, and the weight tensor is `[C_out, C_in / g, k, k]` — $g$ times smaller than a
# dense one. Both channel counts must be divisible by $g$; PyTorch refuses otherwise (the cell tries).

# %%
if __name__ == "__main__":
    dense = nn.Conv2d(128, 128, 3, padding=1, bias=False)
    grouped = nn.Conv2d(128, 128, 3, padding=1, bias=False, groups=32)
    print("dense  ", tuple(dense.weight.shape), dense.weight.numel())
    print("grouped", tuple(grouped.weight.shape), grouped.weight.numel())
    assert grouped.weight.shape == (128, 128 // 32, 3, 3)
    assert dense.weight.numel() == 32 * grouped.weight.numel()
    # Output group j depends on input group j only: poke group 0, only outputs 0..3 move.
    x = torch.randn(1, 128, 5, 5)
    dx = torch.zeros_like(x)
    dx[:, 0:4] = 1.0
    with torch.no_grad():
        changed = (grouped(x + dx) - grouped(x)).abs().amax(dim=(0, 2, 3)) > 0
    assert changed[:4].all() and not changed[4:].any()
    # 100 output channels do not split into 32 groups.
    try:
        nn.Conv2d(128, 100, 3, groups=32)
        raise AssertionError("unreachable")
    except ValueError as e:
        print("ValueError:", e)

# %% [markdown]
# ## Form (b): early concatenation
#
# Each path keeps its first two layers (1×1 to $d$, 3×3 on $d$). Their $C$ outputs, $d$ channels each,
# are concatenated to $C \cdot d$ channels and one 1×1 convolution maps them to $c_{out}$. That single
# 1×1 is the $C$ separate final 1×1s of form (a) side by side: a 1×1 convolution over a concatenation
# *is* the sum of 1×1 convolutions over the parts, $W [z_1; \dots; z_C] = \sum_i W_i z_i$.

# %%
class EarlyConcat(nn.Module):
    def __init__(self, c_in: int, C: int, d: int, c_out: int, stride: int = 1):
        super().__init__()
        # The first six layers of each $\mathcal{T}_i$: 1×1 → BN → ReLU → 3×3 → BN → ReLU.
        self.paths = nn.ModuleList(
            transformation(c_in, d, c_out, stride)[:6] for _ in range(C))
        self.expand = conv1x1(C * d, c_out)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):  # [B, c_in, H, W] -> [B, C*d, H/s, W/s] -> [B, c_out, ...]
        return self.bn(self.expand(torch.cat([T(x) for T in self.paths], dim=1)))


# %% [markdown]
# ## Form (c): grouped convolution
#
# Now concatenate the first layers too. $C$ 1×1 convolutions from $c_{in}$ to $d$ are one 1×1 from
# $c_{in}$ to $C \cdot d$. The $C$ 3×3 convolutions, each from its own $d$ channels to $d$, are exactly a
# grouped convolution with `groups=C`. This is the ResNet bottleneck with a grouped 3×3 — the block
# [ResNeXt-50](resnext_nets.md) is built from. Its layer layout matches one path of form (a), so
# copying weights into it is a concatenation per layer.

# %%
class GroupedConv(nn.Module):
    def __init__(self, c_in: int, C: int, d: int, c_out: int, stride: int = 1):
        super().__init__()
        width = C * d
        # 1×1 → BN → ReLU → grouped 3×3 (weight `[C*d, d, 3, 3]`) → BN → ReLU → 1×1.
        self.F = nn.Sequential(
            conv1x1(c_in, width), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride, padding=1, groups=C, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            conv1x1(width, c_out),
        )
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):  # [B, c_in, H, W] -> [B, c_out, H/s, W/s]
        return self.bn(self.F(x))


# %%
if __name__ == "__main__":
    # Fig. 3 drawn from the three modules, with 4 paths of width 4 (not 32) to keep it
    # small: (a) sums the paths, (b) concatenates them for one 1×1, (c) groups the 3×3.
    draw({"(a) split, transform, sum": SplitTransformMerge(256, 4, 4, 256),
          "(b) early concatenation": EarlyConcat(256, 4, 4, 256),
          "(c) grouped convolution": GroupedConv(256, 4, 4, 256)},
         torch.zeros(1, 256, 14, 14), per_row=1)


# %% [markdown]
# ## Copying weights from (a)
#
# One mapping handles every tensor of form (a) — weights, BN parameters, BN running statistics, and
# (later) gradients, because all of them live under the same names. In form (a) the keys are
# `paths.{i}.{layer}.{name}`; `layer` indexes `transformation`'s `Sequential`:
# 0 = 1×1, 1 = BN, 3 = 3×3, 4 = BN, 6 = last 1×1.
#
# - to (b): layers 0–4 stay per path; the last 1×1s are concatenated along the *input* axis (dim 1).
# - to (c): layers 0–4 are concatenated along the *output* axis (dim 0) — filters of path $i$ become
#   output channels $i d \dots (i+1) d - 1$, exactly the channels group $i$ owns; the last 1×1s along
#   dim 1 as in (b).
#
# BN is per channel, so $C$ BNs over $d$ channels each *are* one BN over $C \cdot d$ channels with the
# concatenated $\gamma, \beta$ and running statistics — in training mode too, because batch statistics
# are computed channel by channel. BN's step counter `num_batches_tracked` is the same in every path;
# we keep path 0's.

# %%
def _paths(sd: dict, C: int, layer: int, name: str, dim: int) -> torch.Tensor:
    return torch.cat([sd[f"paths.{i}.{layer}.{name}"] for i in range(C)], dim=dim)


def to_early_concat(sd: dict, C: int) -> dict:
    # State dict (or dict of gradients) of form (a) -> form (b).
    out = {k: v for k, v in sd.items()
           if not (k.startswith("paths.") and k.split(".")[2] == "6")}
    out["expand.weight"] = _paths(sd, C, 6, "weight", dim=1)
    return out


def to_grouped(sd: dict, C: int) -> dict:
    # State dict (or dict of gradients) of form (a) -> form (c).
    out = {k: v for k, v in sd.items() if k.startswith("bn.")}
    for key in sd:
        if key.startswith("paths.0."):
            _, _, layer, name = key.split(".")
            if name == "num_batches_tracked":
                out[f"F.{layer}.{name}"] = sd[key]
            else:
                dim = 1 if layer == "6" else 0
                out[f"F.{layer}.{name}"] = _paths(sd, C, int(layer), name, dim=dim)
    return out


# %% [markdown]
# ## Equal outputs, equal gradients
#
# Now the proof: ResNeXt-50's `conv2` block shape (256 → 32 paths of width 4 → 256), a batch of real
# tensors, BN in **training** mode (batch statistics, the harder case) and then in eval mode. After
# `backward`, the gradient with respect to the input must agree, and the gradients of (a)'s weights,
# pushed through the *same* mapping, must equal those of (b) and (c).

# %%
def grads(model: nn.Module) -> dict:
    return {n: p.grad for n, p in model.named_parameters()}


def max_diff(d1: dict, d2: dict) -> float:
    assert d1.keys() == d2.keys(), sorted(set(d1) ^ set(d2))
    return max((d1[k].double() - d2[k].double()).abs().max().item() for k in d1)


if __name__ == "__main__":
    torch.manual_seed(0)
    C, d = 32, 4
    a = SplitTransformMerge(256, C, d, 256).to(DEVICE)
    b = EarlyConcat(256, C, d, 256).to(DEVICE)
    c = GroupedConv(256, C, d, 256).to(DEVICE)
    # Random BN parameters, so the copy of γ and β is tested too.
    for m in a.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5), nn.init.uniform_(m.bias, -0.5, 0.5)
    b.load_state_dict(to_early_concat(a.state_dict(), C))
    c.load_state_dict(to_grouped(a.state_dict(), C))
    # Same number of parameters in all three forms.
    counts = [n_params(m) for m in (a, b, c)]
    print("parameters (a), (b), (c):", counts)
    assert len(set(counts)) == 1

    x = torch.randn(8, 256, 8, 8, device=DEVICE, requires_grad=True)
    target = torch.randn(8, 256, 8, 8, device=DEVICE)
    outs, input_grads = [], []
    for model in (a, b, c):
        x.grad = None
        y = model(x)  # training mode: BN normalises with batch statistics
        ((y - target) ** 2).mean().backward()
        outs.append(y.detach())
        input_grads.append(x.grad.clone())
    for name, y, g in zip("bc", outs[1:], input_grads[1:]):
        print(f"max |(a) - ({name})| output {(y - outs[0]).abs().max().item():.1e}, "
              f"input grad {(g - input_grads[0]).abs().max().item():.1e}")
        assert torch.allclose(y, outs[0], atol=1e-5)
        assert torch.allclose(g, input_grads[0], atol=1e-6)
    dw_b = max_diff(to_early_concat(grads(a), C), grads(b))
    dw_c = max_diff(to_grouped(grads(a), C), grads(c))
    print(f"max weight-gradient difference after mapping: (b) {dw_b:.1e}, "
          f"(c) {dw_c:.1e}")
    assert dw_b < 1e-5 and dw_c < 1e-5

    # Eval mode: BN uses the running statistics the training step just updated, mapped like weights.
    b.load_state_dict(to_early_concat(a.state_dict(), C))
    c.load_state_dict(to_grouped(a.state_dict(), C))
    with torch.no_grad():
        ya, yb, yc = (m.eval()(x) for m in (a, b, c))
    assert torch.allclose(ya, yb, atol=1e-5) and torch.allclose(ya, yc, atol=1e-5)

# %% [markdown]
# The fidelity test [`test_three_forms_equal`](../tests/test_resnext.md#test_three_forms_equal) repeats
# this in double precision and with a stride-2 block.
#
# ## Where BN may and may not go
#
# What we compared is precise: per-path BNs on the $d$-channel layers of (a) against one BN on the
# $C \cdot d$ concatenated channels of (b)/(c) — equal, as shown. The *last* BN is different. Had each
# path in (a) its own BN after its final 1×1 (so $C$ BNs over all $c_{out}$ channels each), the sum of
# $C$ separately normalised outputs is **not** one BN of the sum: in training mode each path is divided
# by its own batch standard deviation. That is why form (a) above puts a single BN on the sum, which is
# where a grouped-convolution block has its last BN anyway. The cell shows the difference is real.

# %%
class PerPathLastBN(nn.Module):
    # Form (a) with a BN at the end of *every* path: not equivalent to (b)/(c).
    def __init__(self, c_in: int, C: int, d: int, c_out: int):
        super().__init__()
        self.paths = nn.ModuleList(
            nn.Sequential(*transformation(c_in, d, c_out), nn.BatchNorm2d(c_out))
            for _ in range(C))

    def forward(self, x):
        return sum(T(x) for T in self.paths)


if __name__ == "__main__":
    torch.manual_seed(0)
    per_path = PerPathLastBN(64, 4, 4, 64).to(DEVICE)
    grouped = GroupedConv(64, 4, 4, 64).to(DEVICE)
    # Copy everything that has a counterpart (layers 0-6); the last BNs cannot be merged into one.
    sd = {k: v for k, v in per_path.state_dict().items() if k.split(".")[2] != "7"}
    own_bn = {k: v for k, v in grouped.state_dict().items() if k.startswith("bn.")}
    grouped.load_state_dict(to_grouped(sd, 4) | own_bn)
    x = torch.randn(8, 64, 8, 8, device=DEVICE)
    with torch.no_grad():
        gap = (per_path(x) - grouped(x)).abs().max().item()
    print(f"per-path last BN vs grouped form, training mode: max difference {gap:.2f}")
    assert gap > 0.1

# %% [markdown]
# The paper places this last BN the same way:
#
# > "With BN, for the equivalent form in Fig. 3(a), BN is employed after aggregating the
# > transformations and before adding to the shortcut." — Xie et al. 2017, §4, footnote 6
#
# !!! note "Where the paper leaves details out"
#     The paper's Fig. 3 shows only the convolutions; where BN sits is in its §4 (BN right after the
#     convolutions of form (c), ReLU after each BN except at the block output, where ReLU comes after
#     the shortcut addition) and in the footnote above. The BNs inside (a) and (b) are ours, placed so
#     that the forms equal (c) exactly. The authors' released Torch code (`facebookresearch/ResNeXt`,
#     `models/resnext.lua`) has a form (b) block with the same BN placement as our `EarlyConcat`: a BN
#     on each path's $d$ channels, one BN after the concatenated 1×1.
#
# ## Exercises
#
# 1. **Go back from (c) to (a) (auto-checked).** Write `from_grouped(sd, C)`, the inverse of
#    `to_grouped`: it takes the state dict of a `GroupedConv` and returns one that
#    `SplitTransformMerge` loads (strictly) and that computes the same function. Run
#    `check_from_grouped(from_grouped)`; it tries several $C$ and $d$, in training and eval mode.
# 2. Why must the final 1×1 of (a) be concatenated along dim 1 but the first 1×1 along dim 0? Write
#    both weight shapes down for $C = 32$, $d = 4$, $c = 256$.
# 3. Count the MACs of forms (a) and (c) with `count_macs` from the
#    [bottleneck page](../resnet_v1/bottleneck.md). Equal? Then time them on your machine: which is
#    faster, and why?
# 4. In eval mode BN is an affine map. Show that `PerPathLastBN` in eval mode *can* be rewritten as
#    form (c): what $\gamma$ and $\beta$ (and which 1×1 weights) would the single last BN need?

# %%
def check_from_grouped(from_grouped) -> None:
    # A random grouped block (BN statistics included) -> your mapping -> form (a); same outputs?
    torch.manual_seed(0)
    for C, d in ((32, 4), (8, 14), (2, 40)):
        c = GroupedConv(16, C, d, 16)
        for m in c.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.uniform_(m.weight, 0.5, 1.5)
                nn.init.uniform_(m.bias, -0.5, 0.5)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
        a = SplitTransformMerge(16, C, d, 16)
        try:
            a.load_state_dict(from_grouped(c.state_dict(), C))
        except RuntimeError as e:
            first = str(e).splitlines()[1].strip()
            raise AssertionError(f"C={C}, d={d}: form (a) does not load your state "
                                 f"dict: {first}") from None
        x = torch.randn(4, 16, 6, 6)
        for mode in ("training", "eval"):
            a.train(mode == "training"), c.train(mode == "training")
            with torch.no_grad():
                if not torch.allclose(a(x), c(x), atol=1e-5):
                    raise AssertionError(
                        f"C={C}, d={d}: every key loads, but form (a) computes "
                        f"something else in {mode} mode. Hint: for each layer, "
                        f"which axis of the grouped tensor did `to_grouped` "
                        f"concatenate along?")
    print("correct: your mapping turns a grouped block back into its C paths")
