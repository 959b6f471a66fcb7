# %% [markdown]
# # The full pre-activation ResNet: ResNet-164 and ResNet-1001
#
# The full pre-activation unit moves BN and ReLU in front of every weight layer, so that the
# addition is the last operation of a unit and the shortcut carries $\mathbf{x}_l$ unchanged. This
# page builds the pre-activation bottleneck, assembles the CIFAR networks of the paper with the
# [ResNet v1 constructor](../resnet_v1/resnet.md), counts their parameters, and takes care of the
# two places where a pre-activation network needs an extra activation: right after the first
# convolution, and after the last addition.
#
# > "For the first Residual Unit (that follows a stand-alone convolutional layer, conv$_1$), we adopt
# > the first activation right after conv$_1$ and before splitting into two paths; for the last
# > Residual Unit (followed by average pooling and a fully-connected classifier), we adopt an extra
# > activation right after its element-wise addition." — He et al. 2016, Appendix

# %%
from collections import OrderedDict

import torch
from torch import nn

from labml_style_src.device import DEVICE
from labml_style_src.paper_tables import PREACT_TABLE_3, PREACT_TABLE_4_CIFAR10
from labml_style_src.resnet_v1.bottleneck import Bottleneck
from labml_style_src.resnet_v1.residual_block import (
    conv1x1,
    conv3x3,
    n_params,
    residual_add,
)
from labml_style_src.resnet_v1.resnet import ResNet

# %% [markdown]
# ## The pre-activation bottleneck
#
# The bottleneck of ResNet v1 is 1×1 (reduce) → 3×3 → 1×1 (restore to $4\times$), with BN and ReLU
# after the convolutions. The pre-activation version puts BN → ReLU before each of the three:
#
# $$\mathbf{x}_{l+1} = \mathbf{x}_l + F(\mathbf{x}_l), \quad F = \text{BN-ReLU-conv}_{1\times1}
# \text{-BN-ReLU-conv}_{3\times3}\text{-BN-ReLU-conv}_{1\times1}.$$
#
# When the unit changes the shape (more channels, or stride 2), the shortcut needs a projection
# $W_s$. The paper's appendix says that "these projection shortcuts are also with pre-activation":
# $W_s$ reads the same BN–ReLU output as $F$. An identity shortcut reads the raw $\mathbf{x}_l$, so
# the clean path is untouched. We therefore split off the first BN–ReLU as `preact` and let the
# unit decide once, in `__init__`, what its shortcut reads.

# %%
def bn_relu(c: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))


def preact_shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    # Identity when shapes match, else $W_s$ = 1×1 conv without BN (its input is already normalised).
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return conv1x1(c_in, c_out, stride)


class PreActBottleneck(nn.Module):
    # Channels leaving the unit = `width * 4`, as in the v1 bottleneck.
    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1,
                 shortcut=preact_shortcut):
        super().__init__()
        c_out = width * self.expansion
        # The first BN → ReLU of $F$, shared with a projecting shortcut.
        self.preact = bn_relu(c_in)
        # The rest of $F$: conv1×1 (stride) → BN-ReLU → conv3×3 → BN-ReLU → conv1×1; no BN at the end.
        self.F = nn.Sequential(
            conv1x1(c_in, width, stride), bn_relu(width),
            conv3x3(width, width), bn_relu(width),
            conv1x1(width, c_out),
        )
        self.shortcut = shortcut(c_in, c_out, stride)
        self.shortcut_reads_preact = not isinstance(self.shortcut, nn.Identity)

    def forward(self, x):  # x: [B, C_in, H, W] -> [B, 4 * width, H/stride, W/stride]
        a = self.preact(x)
        # $x_{l+1} = F(x_l) + h(x_l)$ with nothing after the addition.
        h = self.shortcut(a if self.shortcut_reads_preact else x)
        return residual_add(self.F(a), h)


# %% [markdown]
# ## The network: the v1 constructor with two changes
#
# The CIFAR ResNets of the paper have a 3×3 stem and three stages of 16, 32 and 64 bottleneck widths
# (64, 128, 256 channels out) on 32×32, 16×16 and 8×8 maps. A bottleneck unit has 3 weight layers,
# so the depth is $3 \cdot 3n + 2 = 9n + 2$: ResNet-164 has $n = 18$ units per stage and
# ResNet-1001 has $n = 111$ (333 units). We build it with `ResNet` from ResNet v1, changing only:
#
# 1. the stem is the convolution alone (no BN, no ReLU). The first unit projects 16 → 64 channels,
#    so its shortcut reads the pre-activation too: that *is* "the first activation right after
#    conv$_1$ and before splitting into two paths";
# 2. after the last stage, an extra BN → ReLU before pooling, because the last unit ends with an
#    addition. The constructor takes it as its `post` argument and keeps it as `net.post`, so the
#    stages stay stages.

# %%
def conv_stem(c_in: int, c_out: int) -> nn.Sequential:
    # conv$_1$ alone: [B, 3, 32, 32] -> [B, 16, 32, 32]; its activation is the first unit's `preact`.
    return nn.Sequential(OrderedDict(conv=conv3x3(c_in, c_out)))


def preact_cifar_net(block, n: int, num_classes: int = 10) -> ResNet:
    # Three stages of `n` pre-activation units of class `block`, widths 16, 32, 64.
    # `post=bn_relu`: the extra BN → ReLU after the last addition.
    return ResNet(block, (n, n, n), widths=(16, 32, 64), stem=conv_stem,
                  shortcut=preact_shortcut, num_classes=num_classes, post=bn_relu)


def preact_cifar_resnet(depth: int, num_classes: int = 10) -> ResNet:
    # depth = 9n + 2: conv$_1$, 3 stages × n units × 3 layers, the fc layer.
    if depth < 11 or (depth - 2) % 9:
        raise ValueError(f"pre-activation CIFAR ResNets with bottleneck units have "
                         f"depth 9n+2 (n >= 1), e.g. 164 (n=18) or 1001 (n=111); "
                         f"got {depth}")
    return preact_cifar_net(PreActBottleneck, (depth - 2) // 9, num_classes)


# %% [markdown]
# ## ResNet-164 on a CIFAR batch
#
# The map halves in the first unit of `conv3_x` and `conv4_x`, the first unit of every stage
# projects, and the output of the last stage has been through the extra BN → ReLU.

# %%
if __name__ == "__main__":
    torch.manual_seed(0)
    net = preact_cifar_resnet(164).to(DEVICE)
    x = torch.randn(2, 3, 32, 32, device=DEVICE)  # [B, 3, 32, 32]
    h = net.stem(x)
    print("stem            ", tuple(h.shape))
    for name, stage in net.stages.named_children():
        h = stage(h)
        projects = stage[0].shortcut_reads_preact
        print(f"{name:<16}", tuple(h.shape), "first unit projects:", projects)
    h = net.post(h)
    print("post (BN → ReLU)", tuple(h.shape))
    logits = net(x)
    print("logits          ", tuple(logits.shape))
    assert [s[-1].F[-1].out_channels for s in net.stages] == [64, 128, 256]
    assert h.shape == (2, 256, 8, 8) and (h >= 0).all()  # after the post ReLU
    assert all(s[0].shortcut_reads_preact for s in net.stages)
    assert list(net.stem) == [net.stem.conv]  # conv$_1$ only: no BN or ReLU in the stem

# %% [markdown]
# ## Parameters: 1.7M and 10.2M
#
# The paper's Table 4 gives ResNet-164 1.7M parameters and ResNet-1001 10.2M. We count ours, and
# next to them the post-activation ResNet-164 built from the v1 `Bottleneck` with the same
# constructor (option B projections with BN). The cell also prints what the paper measured with
# these networks on CIFAR-10 (Table 3, medians of 5 runs): the pre-activation unit lowers the
# error of ResNet-164 from 5.93 % to 5.46 % and that of ResNet-1001 from 7.61 % to 4.92 %; the
# [activation variants page](activation_variants.md) discusses why.

# %%
def param_breakdown(net: nn.Module) -> dict:
    # Convolution weights (no conv here has a bias), BN scale/shift, and the classifier.
    return {"total": n_params(net), "conv": n_params(net, nn.Conv2d),
            "BN": n_params(net, nn.BatchNorm2d), "fc": n_params(net.fc)}


if __name__ == "__main__":
    rows = {
        "pre-act ResNet-164": param_breakdown(preact_cifar_resnet(164)),
        "original ResNet-164": param_breakdown(ResNet(
            Bottleneck, (18, 18, 18), (16, 32, 64), stem="cifar", num_classes=10)),
        "pre-act ResNet-1001": param_breakdown(preact_cifar_resnet(1001)),
    }
    print(f"{'':<21}{'total':>12}{'conv':>12}{'BN':>10}{'fc':>7}")
    for name, r in rows.items():
        print(f"{name:<21}{r['total']:>12,}{r['conv']:>12,}{r['BN']:>10,}{r['fc']:>7,}")
    p164, p1001 = rows["pre-act ResNet-164"], rows["pre-act ResNet-1001"]
    paper_164 = PREACT_TABLE_4_CIFAR10["ResNet-164 [ours]"].params_m  # 1.7
    paper_1001 = PREACT_TABLE_4_CIFAR10["ResNet-1001 [ours]"].params_m  # 10.2
    assert round(p164["total"] / 1e6, 1) == round(p164["conv"] / 1e6, 1) == paper_164
    assert round(p1001["total"] / 1e6, 1) == 10.3  # our count with BN, not the paper's
    assert round(p1001["conv"] / 1e6, 1) == paper_1001
    print("CIFAR-10 error (%), original -> pre-activation, He et al. 2016, Table 3:")
    for depth in (164, 1001):
        row = PREACT_TABLE_3["CIFAR-10", f"ResNet-{depth}"]
        print(f"  ResNet-{depth:<5} {row.baseline:.2f} -> {row.preact:.2f}")
    assert p164["total"] == p164["conv"] + p164["BN"] + p164["fc"]

# %% [markdown]
# ResNet-164 is 1.70M whichever way we count. For ResNet-1001 our total is 10.33M, which rounds to
# 10.3M, not 10.2M. The 333 units carry 149,216 BN scale and shift parameters; the convolution
# weights alone are 10,175,920, which rounds to the paper's 10.2M. The paper does not say how it
# counted, so this is one count that reproduces its number, not a statement of its convention.
#
# !!! note "Where we differ from the paper"
#     The paper's text does not say which convolution of a downsampling unit has the stride. We
#     follow the authors' released Torch code (`resnet-pre-act.lua` in KaimingHe/resnet-1k-layers):
#     the first 1×1. Keras' ResNet50V2 on the [next page](keras_resnet50v2.md) puts it on the 3×3.
#     Parameter counts do not depend on it. As in that code, the projection $W_s$ is a bare 1×1
#     convolution (no BN) on the shared BN–ReLU output, and no convolution has a bias.
#
# The same counts are [tested](../tests/test_resnet_v2.md#test_preact_cifar_param_counts), and a depth
# that is not $9n+2$ raises a `ValueError` that names the rule
# ([test](../tests/test_resnet_v2.md#test_bad_preact_depth)).
#
# ## Exercises
#
# 1. The name ResNet-1001 counts conv$_1$, the fc layer and three layers per unit. Which weight layers
#    of our network does it leave out, and how many parameters do they hold?
# 2. **A pre-activation ResNet-110 (auto-checked).** Write a `PreActBasicBlock`
#    (BN-ReLU-conv3×3-BN-ReLU-conv3×3, `expansion = 1`) with the same signature as
#    `PreActBottleneck`, and run `check_preact_basic_block(PreActBasicBlock)`: it checks units of your
#    class and builds the pre-activation ResNet-110 ($6n+2$, $n=18$) from it. Compare its parameter
#    count with ResNet-164's. (The paper chose the bottleneck design so that the two are close.)
# 3. Change `forward` so that a projecting shortcut reads the raw `x` instead of `a`. The network
#    still runs; what does the first unit's shortcut now receive, and which sentence of the appendix
#    quote is no longer true?
# 4. Build the network without `post` and look at the output of the last stage: what is its sign, and what
#    would global average pooling and the classifier see?

# %%
def leaf_call_order(module: nn.Module, x: torch.Tensor) -> list:
    # The leaf layers of `module` in the order they run on `x`, identities left out.
    calls = []
    leaves = [m for m in module.modules()
              if not list(m.children()) and not isinstance(m, nn.Identity)]
    hooks = [m.register_forward_hook(lambda m, i, o: calls.append(m)) for m in leaves]
    with torch.no_grad():
        module(x)
    for hook in hooks:
        hook.remove()
    return calls


def check_preact_basic_block(block) -> None:
    # Checks units of class `block` on real tensors, then builds a ResNet-110 of them.
    torch.manual_seed(0)
    if getattr(block, "expansion", None) != 1:
        raise AssertionError("a basic unit returns as many channels as its width: "
                             "expansion = 1")
    unit, x = block(16, 16).eval(), torch.randn(2, 16, 8, 8)
    order = leaf_call_order(unit, x)
    kinds = [type(m).__name__ for m in order]
    if kinds != ["BatchNorm2d", "ReLU", "Conv2d"] * 2 or order[2].kernel_size != (3, 3):
        raise AssertionError(f"a unit of yours runs {kinds}: each 3×3 convolution "
                             "should follow its own BN and ReLU, and nothing follow it")
    nn.init.zeros_(order[-1].weight)  # $F \equiv 0$
    with torch.no_grad():
        if not torch.equal(unit(x), x):
            raise AssertionError("with its last convolution at zero the unit must "
                                 "return its input unchanged: does the identity "
                                 "shortcut read the raw x?")
    if block(16, 32, 2)(x).shape != (2, 32, 4, 4):
        raise AssertionError("block(16, 32, 2) should map [2, 16, 8, 8] to "
                             "[2, 32, 4, 4]")
    with torch.device("meta"):
        mine = n_params(preact_cifar_net(block, 18))
        r164 = n_params(preact_cifar_resnet(164))
    print(f"correct: your pre-activation ResNet-110 has {mine:,d} parameters, "
          f"ResNet-164 {r164:,d}")
