"""Fidelity tests for the pre-activation ResNet chapter (He et al. 2016, "Identity Mappings in Deep
Residual Networks", arXiv:1603.05027).

Each test names the paper claim or page statement it proves. The Keras totals are facts reported by
`keras.applications` (Keras is not installed here); our PyTorch port has to reproduce them.
"""

import pytest
import torch
from torch import nn

from conftest import assert_hint_keeps_answer
from labml_style_src.paper_tables import (
    KERAS_RESNET50V2_TRAINABLE,
    KERAS_RESNET_V2_TOTAL,
    PREACT_FAIL_ABOVE,
    PREACT_TABLE_1,
    PREACT_TABLE_2,
    PREACT_TABLE_3,
    PREACT_TABLE_4_CIFAR10,
    RESNET_TABLE_6,
)
from labml_style_src.resnet_v1.residual_block import n_params
from labml_style_src.resnet_v1.resnet import TABLE_1, resnet, stage_shapes
from labml_style_src.resnet_v2.activation_variants import (
    ACTIVATION_VARIANTS,
    ActivationVariantUnit,
    check_never_negative,
    measure,
)
from labml_style_src.resnet_v2.keras_resnet50v2 import (
    Block2,
    check_final_map_size,
    keras_layers,
    resnet_v2_keras,
)
from labml_style_src.resnet_v2.preact_resnet import (
    PreActBottleneck,
    check_preact_basic_block,
    param_breakdown,
    preact_cifar_resnet,
)
from labml_style_src.resnet_v2.propagation import (
    check_unrolled,
    forward_all,
    grad_decomposition,
    make_stack,
    sample_input,
)
from labml_style_src.resnet_v2.scaled_shortcut import (
    check_gradient_cancels,
    gradient_at_each_depth,
)
from labml_style_src.resnet_v2.shortcut_variants import (
    SHORTCUT_VARIANTS,
    TABLE_1_SETTINGS,
    ShortcutVariantUnit,
    check_conv_shortcut_identity,
    shortcut_path_gain,
    shortcut_variant,
)
from solutions.resnet_v2.activation_variants import never_negative
from solutions.resnet_v2.keras_resnet50v2 import final_map_size, final_side
from solutions.resnet_v2.preact_resnet import PreActBasicBlock
from solutions.resnet_v2.propagation import unrolled_x_L
from solutions.resnet_v2.scaled_shortcut import cancelling_F
from solutions.resnet_v2.shortcut_variants import set_identity

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


# ---------------------------------------------------------------------------------------------
# Propagation (page: propagation)


# Eq. (4): with identity h and f, x_L = x_l + sum_{i=l}^{L-1} F(x_i) for any l < L, on 54 real units.
def test_eq4_forward_sum():
    L = 54
    units = make_stack(L)
    xs = forward_all(units, sample_input())
    for l in (0, 20, 53):
        sum_F = sum(units[i].F(xs[i]) for i in range(l, L))
        assert (xs[L] - xs[l] - sum_F).abs().max() < 1e-9 * xs[L].abs().max()
    # The sum is not negligible: x_L really differs from x_0.
    assert (xs[L] - xs[0]).norm() > xs[0].norm()


# Eq. (5): dE/dx_l = dE/dx_L + dE/dx_L · d(sum F)/dx_l, both terms computed independently with autograd.
def test_eq5_gradient_decomposition():
    units = make_stack(54)
    readout = torch.randn_like(forward_all(units, sample_input())[-1])
    for l in (0, 27):
        dE_dxL, dE_dxl, via_F = grad_decomposition(units, sample_input(), l, readout)
        assert torch.equal(dE_dxL, readout)
        assert (dE_dxl - dE_dxL - via_F).abs().max() < 1e-9 * dE_dxl.abs().max()
        assert via_F.norm() > 0.1 * dE_dxL.norm()  # both terms matter at initialisation


# §2: "the gradient of a layer does not vanish even when the weights are arbitrarily small".
def test_eq5_gradient_survives_small_weights():
    units = make_stack(54)
    with torch.no_grad():
        for unit in units:
            unit.F[-1].weight.mul_(1e-6)
    readout = torch.randn_like(forward_all(units, sample_input())[-1])
    dE_dxL, dE_dx0, via_F = grad_decomposition(units, sample_input(), 0, readout)
    assert abs(dE_dx0.norm() / dE_dxL.norm() - 1) < 1e-4
    assert via_F.norm() < 1e-4 * dE_dxL.norm()


# Exercise: eq. (4) rebuilds x_L from the stored inputs; starting the sum one unit late does not.
def test_check_unrolled():
    check_unrolled(unrolled_x_L)
    with pytest.raises(AssertionError, match="off by") as info:
        check_unrolled(lambda units, xs, l: xs[l] + sum(units[i].F(xs[i]) for i in range(l + 1, len(units))))
    assert_hint_keeps_answer(info, "range(l", "xs[l] +")


# ---------------------------------------------------------------------------------------------
# Scaling the shortcut (page: scaled_shortcut)


# Eq. (8): with h(x) = λx the direct term is λ^(L-l) dE/dx_L at every depth l (F switched off), and the full
# gradient decomposes into that plus the VJP of sum F̂_i, F̂_i = λ^(L-1-i) F(x_i).
@pytest.mark.parametrize("lam", [0.5, 0.9, 1.1, 2.0])
def test_eq8_scaled_shortcut(lam):
    units = make_stack(54, lam)
    readout = torch.randn_like(forward_all(units, sample_input())[-1])
    direct = gradient_at_each_depth(make_stack(54, lam, F_off=True), sample_input(), readout)
    assert direct == pytest.approx([lam ** (54 - l) for l in range(55)], rel=1e-12)
    dE_dxL, dE_dx0, via_F = grad_decomposition(units, sample_input(), 0, readout)
    err = (dE_dx0 - lam ** 54 * dE_dxL - via_F).norm() / (dE_dx0.norm() + via_F.norm())
    assert err < 1e-12


def one_by_one_conv(weight: float) -> nn.Conv2d:
    conv = nn.Conv2d(1, 1, kernel_size=1, bias=False)
    nn.init.constant_(conv.weight, weight)
    return conv


# Exercise: F(x) = -λx cancels the gradient of x_1 = λx + F(x) exactly; any other weight does not.
def test_check_gradient_cancels():
    check_gradient_cancels(cancelling_F(1.0))
    check_gradient_cancels(cancelling_F(0.5), lam=0.5)
    with pytest.raises(AssertionError, match="not 0") as info:
        check_gradient_cancels(one_by_one_conv(1.0))
    assert_hint_keeps_answer(info, "-1", "−1")
    with pytest.raises(AssertionError):
        check_gradient_cancels(one_by_one_conv(-1.0), lam=0.5)


# ---------------------------------------------------------------------------------------------
# Shortcut variants (page: shortcut_variants)


# Fig. 2 / §3.1: with F switched off, the identity passes the gradient untouched, constant scaling by 0.5
# multiplies it by 0.5^54 (eq. 8), a zero shortcut is a plain net, gates at b_g = 0 nearly block it,
# gates at b_g = -6 nearly pass it, and 54 dropouts block it completely.
def test_shortcut_gain_matches_eq8():
    assert shortcut_path_gain("original", n_units=20) == 1.0
    assert shortcut_path_gain("constant_scaling", n_units=20, on_shortcut=0.0) == 0.0
    assert shortcut_path_gain("constant_scaling", on_shortcut=0.5) == pytest.approx(0.5 ** 54, rel=1e-9)
    assert shortcut_path_gain("shortcut_only_gating", n_units=20, b_g=0.0) < 1e-4
    assert 0.8 < shortcut_path_gain("shortcut_only_gating", n_units=20, b_g=-6.0) < 1.0
    assert 0.8 < shortcut_path_gain("exclusive_gating", n_units=20, b_g=-6.0) < 1.0
    assert shortcut_path_gain("dropout", p=0.5) == 0.0
    # 54 projections, each followed by BN: a gain between 10^4 and 10^6, as the page states, for eight seeds.
    assert all(1e4 < shortcut_path_gain("conv1x1", seed=seed) < 1e6 for seed in range(8))


def same_F_units(variant: str, c: int = 8, **kwargs):
    """An original unit and a `variant` unit with the same F, in float64."""
    torch.manual_seed(0)
    original = ShortcutVariantUnit(c, "original").double()
    unit = ShortcutVariantUnit(c, variant, **kwargs).double()
    unit.F.load_state_dict(original.F.state_dict())
    return original, unit


# §3.2: "the shortcut-only gating and 1×1 convolution cover the solution space of identity shortcuts". A setting
# of their shortcut makes the unit equal to the original unit (the gate with W_g = 0 and b_g = -40 to the last bit;
# the 1×1 conv in eval mode). Exclusive gating, constant scaling and dropout have no such setting: checked for
# exclusive gating over closed and open gates, for the other two by what they do with F switched off.
def test_identity_is_in_the_solution_space():
    x = torch.randn(4, 8, 6, 6, dtype=torch.float64)
    original, gated = same_F_units("shortcut_only_gating")
    with torch.no_grad():
        nn.init.zeros_(gated.merge.W_g.weight)
        nn.init.constant_(gated.merge.W_g.bias, -40.0)
        assert torch.equal(gated(x), original(x))
    original, conv = same_F_units("conv1x1")
    original.eval(), conv.eval()
    with torch.no_grad():
        conv.merge.W_s[1].running_mean.normal_()
        set_identity(conv.merge)
        assert torch.allclose(conv(x), original(x), rtol=0, atol=1e-12)
        for b_g in (-40.0, -6.0, 0.0, 6.0, 40.0):
            original, exclusive = same_F_units("exclusive_gating", b_g=b_g)
            nn.init.zeros_(exclusive.merge.W_g.weight)
            assert (exclusive(x) - original(x)).abs().max() > 0.1
        # With F ≡ 0 an original unit passes a non-negative x unchanged; 0.5-scaling halves it and dropout
        # (training mode) zeroes about half of it.
        x_pos = x.abs()
        for variant, kwargs in (("original", {}), ("constant_scaling", {}), ("dropout", {})):
            unit = ShortcutVariantUnit(8, variant, **kwargs).double().train()
            nn.init.zeros_(unit.F[-1].weight)
            changed = (unit(x_pos) != x_pos).float().mean().item()
            assert changed == 0 if variant == "original" else changed > 0.3


def test_check_conv_shortcut_identity():
    check_conv_shortcut_identity(set_identity)

    def eye_only(merge):  # the 1×1 convolution alone, BN left as it is
        c = merge.W_s[0].out_channels
        merge.W_s[0].weight.copy_(torch.eye(c, dtype=torch.float64).view(c, c, 1, 1))

    with pytest.raises(AssertionError, match="differ") as info:
        check_conv_shortcut_identity(eye_only)
    assert_hint_keeps_answer(info, "eye(", "γ = sqrt", "β = running_mean")


# Each row of Table 1 gets exactly one setting of ours, in the paper's order.
def test_table_1_settings_follow_the_paper():
    assert [case for case, _, _ in TABLE_1_SETTINGS] == [row.case for row in PREACT_TABLE_1]
    assert all(variant in SHORTCUT_VARIANTS for _, variant, _ in TABLE_1_SETTINGS)


# ---------------------------------------------------------------------------------------------
# Activation variants (page: activation_variants)


# Fig. 4 / §4: the three units with f = identity satisfy eq. (4) and leave the shortcut path exactly
# clean; BN after addition and the original unit do not; ReLU before addition only ever adds.
def test_activation_variants_clean_path():
    clean = ("relu_before_addition", "relu_only_preact", "full_preact")
    for name in ACTIVATION_VARIANTS:
        on, off = measure(name, n_units=12, c=4), measure(name, n_units=12, c=4, F_off=True)
        if name in clean:
            assert on["eq.(4) gap"] < 1e-5
            assert off["|x_L-x_0|/|x_0|"] == 0 and off["grad x_0/x_L"] == pytest.approx(1, abs=1e-6)
        else:
            assert on["eq.(4) gap"] > 0.1 and off["|x_L-x_0|/|x_0|"] > 0.1
    assert measure("relu_before_addition", n_units=12, c=4)["min(x_L-x_0)"] >= 0
    assert measure("full_preact", n_units=12, c=4)["min(x_L-x_0)"] < 0


# "All these units consist of the same components — only the orders are different."
def test_activation_variants_same_components():
    def parts(unit):
        return sorted(type(m).__name__ for m in [*unit.F, *unit.f])
    reference = parts(ActivationVariantUnit(4, "original"))
    for name in ACTIVATION_VARIANTS:
        assert parts(ActivationVariantUnit(4, name)) == reference


# Fig. 5 / eq. (9): moving the after-addition activation of (a) in front of the next unit's F gives (d); moving the
# BN-ReLU of (b) gives (e). In our order strings that is a concatenation.
def test_fig5_moves_the_activation_into_the_next_unit():
    for post, pre in (("original", "relu_only_preact"), ("bn_after_addition", "full_preact")):
        F_order, f_order = ACTIVATION_VARIANTS[post]
        assert ACTIVATION_VARIANTS[pre] == (f"{f_order} {F_order}", "")


def test_check_never_negative():
    check_never_negative(never_negative)
    for wrong in ({"original"}, {"original", "bn_after_addition", "full_preact"}, set()):
        with pytest.raises(AssertionError, match="look at") as info:
            check_never_negative(wrong)
        assert_hint_keeps_answer(info, "original", "bn_after_addition")


# ---------------------------------------------------------------------------------------------
# Every block keeps shapes and trains forward/backward, on CPU and on CUDA when present.

BLOCKS = {
    **{f"shortcut:{name}": (lambda name=name: ShortcutVariantUnit(8, name), (2, 8, 8, 8), (2, 8, 8, 8))
       for name in SHORTCUT_VARIANTS},
    **{f"activation:{name}": (lambda name=name: ActivationVariantUnit(8, name), (2, 8, 8, 8), (2, 8, 8, 8))
       for name in ACTIVATION_VARIANTS},
    "preact_bottleneck": (lambda: PreActBottleneck(16, 4), (2, 16, 8, 8), (2, 16, 8, 8)),
    "preact_bottleneck_down": (lambda: PreActBottleneck(16, 8, stride=2), (2, 16, 8, 8), (2, 32, 4, 4)),
    "keras_block2_project": (lambda: Block2(16, 8, conv_shortcut=True), (2, 16, 8, 8), (2, 32, 8, 8)),
    "keras_block2_identity": (lambda: Block2(32, 8), (2, 32, 8, 8), (2, 32, 8, 8)),
    "keras_block2_maxpool": (lambda: Block2(32, 8, stride=2), (2, 32, 8, 8), (2, 32, 4, 4)),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(BLOCKS))
def test_every_variant_block_runs(name, device):
    make, in_shape, out_shape = BLOCKS[name]
    torch.manual_seed(0)
    block = make().to(device)
    x = torch.randn(in_shape, device=device, requires_grad=True)
    y = block(x)
    assert y.shape == out_shape and torch.isfinite(y).all()
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in block.parameters())


# Unknown variant names are ValueErrors that list the valid names.
def test_bad_variant_names():
    with pytest.raises(ValueError, match="exclusive_gating"):
        shortcut_variant("highway", 8)
    with pytest.raises(ValueError, match="full_preact"):
        ActivationVariantUnit(8, "preact")
    with pytest.raises(ValueError, match="shortcut_only_gating"):
        ShortcutVariantUnit(8, "gating")


# ---------------------------------------------------------------------------------------------
# Pre-activation CIFAR networks (page: preact_resnet)


# Table 4: ResNet-164 has 1.7M parameters, ResNet-1001 10.2M; depth = 9n + 2 (n = 18 and 111).
# Our ResNet-1001 totals 10.3M with BN's γ/β; its convolution weights alone give the paper's 10.2M.
def test_preact_cifar_param_counts():
    r164, r1001 = param_breakdown(preact_cifar_resnet(164)), param_breakdown(preact_cifar_resnet(1001))
    assert round(r164["total"] / 1e6, 1) == PREACT_TABLE_4_CIFAR10["ResNet-164 [ours]"].params_m
    assert round(r1001["conv"] / 1e6, 1) == PREACT_TABLE_4_CIFAR10["ResNet-1001 [ours]"].params_m
    assert round(r1001["total"] / 1e6, 1) == 10.3
    for depth, n in ((164, 18), (1001, 111)):
        net = preact_cifar_resnet(depth)
        assert [len(stage) for stage in net.stages] == [n, n, n]
        # depth counts conv1, the three convs of every unit and the fc layer, not the 3 projections.
        convs = sum(isinstance(m, nn.Conv2d) for m in net.modules())
        projections = sum(isinstance(u.shortcut, nn.Conv2d) for u in net.modules() if isinstance(u, PreActBottleneck))
        assert (convs, projections) == (9 * n + 1 + 3, 3)
        assert convs - projections + 1 == depth


# Appendix: the first activation sits right after conv1 (the stem is the conv alone and the first unit's
# projection reads the pre-activated input), and an extra BN-ReLU follows the last addition.
def test_preact_first_and_last_activation():
    torch.manual_seed(0)
    net = preact_cifar_resnet(29).eval()
    assert list(net.stem) == [net.stem.conv]
    first = net.stages.conv2_x[0]
    x = net.stem(torch.randn(2, 3, 32, 32))
    with torch.no_grad():
        a = first.preact(x)
        assert torch.allclose(first(x), first.F(a) + first.shortcut(a))
        inner = net.stages.conv2_x[1]
        assert isinstance(inner.shortcut, nn.Identity)
        h = first(x)
        assert torch.allclose(inner(h), inner.F(inner.preact(h)) + h)  # identity reads the raw input
        out = net.post(net.stages(x))
    # `stage_shapes` reports the three real stages; the BN-ReLU after them is `net.post`.
    images = torch.randn(2, 3, 32, 32)
    assert list(stage_shapes(net, images)) == ["stem", "conv2_x", "conv3_x", "conv4_x"]
    assert isinstance(net.post[0], nn.BatchNorm2d) and isinstance(net.post[1], nn.ReLU)
    assert (out >= 0).all()


# Impossible depths are ValueErrors that state the 9n+2 rule.
def test_bad_preact_depth():
    for depth in (100, 2, 165, 1000):
        with pytest.raises(ValueError, match=r"9n\+2"):
            preact_cifar_resnet(depth)


class PostActBasicBlock(PreActBasicBlock):
    """A wrong answer: the ReLU after the addition stays (f = ReLU)."""

    def forward(self, x):
        return torch.relu(super().forward(x))


def test_check_preact_basic_block(capsys):
    check_preact_basic_block(PreActBasicBlock)
    assert "ResNet-110 has 1,7" in capsys.readouterr().out  # about 1.7M, like ResNet-164
    with pytest.raises(AssertionError, match="unchanged") as info:
        check_preact_basic_block(PostActBasicBlock)
    assert_hint_keeps_answer(info, "relu(", "ReLU after")


# ---------------------------------------------------------------------------------------------
# Keras ResNet50V2 (page: keras_resnet50v2)


# keras.applications totals (trainable + BN moving mean/variance): ResNet50V2 25,613,800 (25,568,360 trainable),
# ResNet101V2 44,675,560, ResNet152V2 60,380,648. Built on the meta device: only shapes are needed to count.
@pytest.mark.parametrize("depth", sorted(KERAS_RESNET_V2_TOTAL))
def test_keras_resnet_v2_counts(depth):
    with torch.device("meta"):
        model = resnet_v2_keras(depth)
        layers = keras_layers(model)
    assert sum(p for _, p in layers.values()) == KERAS_RESNET_V2_TOTAL[depth]
    if depth == 50:
        assert n_params(model) == KERAS_RESNET50V2_TRAINABLE


def keras_resnet_v2_layout(blocks=(3, 4, 6, 3), size=224, classes=1000) -> dict:
    """Layer name -> (output shape, parameters) of keras.applications' ResNet50V2/101V2/152V2, derived from the Keras
    source (keras/src/applications/resnet.py: `ResNet(..., preact=True, use_bias=True)`, `stack2`, `block2`) with
    Keras' own rules: 'valid' convolutions and pools after explicit ZeroPadding2D, a side s becoming
    (s - kernel) // stride + 1; Conv2D k·k·c_in·c_out weights (+ c_out with bias); BatchNormalization 4 weights per
    channel (γ, β, moving mean, moving variance); Dense in·out + out. Independent of our PyTorch modules."""
    rows, pools = {}, 0

    def layer(name, side, channels, params=0):
        rows[name] = ((side, side, channels), params)

    def conv(name, side, c_in, c_out, kernel, stride, bias):
        out = (side - kernel) // stride + 1
        layer(name, out, c_out, kernel * kernel * c_in * c_out + (c_out if bias else 0))
        return out

    side = size + 6
    layer("conv1_pad", side, 3)
    side = conv("conv1_conv", side, 3, 64, 7, 2, bias=True)
    layer("pool1_pad", side + 2, 64)
    side = (side + 2 - 3) // 2 + 1
    layer("pool1_pool", side, 64)
    c = 64
    stages = zip((64, 128, 256, 512), blocks, (2, 2, 2, 1))
    for stage, (filters, n, last_stride) in enumerate(stages, start=2):
        for i in range(1, n + 1):
            name, stride = f"conv{stage}_block{i}", (last_stride if i == n else 1)
            layer(f"{name}_preact_bn", side, c, 4 * c)
            layer(f"{name}_preact_relu", side, c)
            if i == 1:  # conv_shortcut=True: a 1×1 conv with bias on the pre-activated input, stride 1
                conv(f"{name}_0_conv", side, c, 4 * filters, 1, 1, bias=True)
            elif stride > 1:  # MaxPooling2D(1, strides=stride), unnamed: Keras numbers it
                layer("max_pooling2d" + (f"_{pools}" if pools else ""), (side - 1) // stride + 1, c)
                pools += 1
            conv(f"{name}_1_conv", side, c, filters, 1, 1, bias=False)
            layer(f"{name}_1_bn", side, filters, 4 * filters)
            layer(f"{name}_1_relu", side, filters)
            layer(f"{name}_2_pad", side + 2, filters)
            out = conv(f"{name}_2_conv", side + 2, filters, filters, 3, stride, bias=False)
            layer(f"{name}_2_bn", out, filters, 4 * filters)
            layer(f"{name}_2_relu", out, filters)
            conv(f"{name}_3_conv", out, filters, 4 * filters, 1, 1, bias=True)
            layer(f"{name}_out", out, 4 * filters)
            side, c = out, 4 * filters
    layer("post_bn", side, c, 4 * c)
    layer("post_relu", side, c)
    rows["avg_pool"] = ((c,), 0)
    rows["predictions"] = ((classes,), c * classes + classes)
    return rows


# Layer by layer: every Keras layer of ResNet50V2 (and 101V2/152V2, and an odd input size) has a module in our port
# with the same output shape and the same parameter count, and there is nothing else; the totals follow.
@pytest.mark.parametrize("depth,size", [(50, 224), (50, 225), (101, 224), (152, 224)])
def test_keras_layers_match_the_keras_layout(depth, size):
    with torch.device("meta"):
        ours = keras_layers(resnet_v2_keras(depth), size)
    expected = keras_resnet_v2_layout(TABLE_1[depth].blocks_per_stage, size)
    assert sorted(ours) == sorted(expected)
    assert {name: row for name, row in ours.items() if row != expected[name]} == {}
    if (depth, size) == (50, 224):
        assert sum(p for _, p in expected.values()) == KERAS_RESNET_V2_TOTAL[50]
        assert expected["conv1_conv"] == ((112, 112, 64), 9_472) and expected["predictions"][1] == 2_049_000


# Per-stage output shapes at 224×224: the stride sits in the last block of conv2–conv4, conv5 keeps 7×7.
def test_keras_stage_shapes_224():
    with torch.device("meta"):
        model = resnet_v2_keras(50)
        h = model.stem(torch.empty(1, 3, 224, 224))
        assert h.shape == (1, 64, 56, 56)
        shapes = {}
        for stage_name, stage in model.stages.named_children():
            for block_name, block in stage.named_children():
                h = block(h)
                shapes[stage_name, block_name] = tuple(h.shape[1:])
        logits = model(torch.empty(2, 3, 224, 224))
    assert shapes["conv2", "block1"] == (256, 56, 56) and shapes["conv2", "block2"] == (256, 56, 56)
    assert shapes["conv2", "block3"] == (256, 28, 28)
    assert shapes["conv3", "block1"] == (512, 28, 28) and shapes["conv3", "block3"] == (512, 28, 28)
    assert shapes["conv3", "block4"] == (512, 14, 14)
    assert shapes["conv4", "block5"] == (1024, 14, 14) and shapes["conv4", "block6"] == (1024, 7, 7)
    assert all(shapes["conv5", f"block{i}"] == (2048, 7, 7) for i in (1, 2, 3))
    assert logits.shape == (2, 1000)


# Keras details: bias only on the stem conv, `_0_conv` and `_3_conv`; BN epsilon 1.001e-5; the shortcut
# conv reads the pre-activated input, the stride-2 identity is a 1×1 max-pool of the raw input.
def test_keras_block_details():
    torch.manual_seed(0)
    model = resnet_v2_keras(50)
    assert model.stem.conv1_conv.bias is not None
    for stage in model.stages:
        for i, block in enumerate(stage):
            assert block.F[0].bias is None and block.F[4].bias is None and block.F[7].bias is not None
            assert isinstance(block.shortcut, nn.Conv2d) == (i == 0)
            if i == 0:
                assert block.shortcut.bias is not None
    assert {m.eps for m in model.modules() if isinstance(m, nn.BatchNorm2d)} == {1.001e-5}
    project, down = Block2(16, 8, conv_shortcut=True).eval(), Block2(32, 8, stride=2).eval()
    x, z = torch.randn(2, 16, 8, 8), torch.randn(2, 32, 8, 8)
    with torch.no_grad():
        a = project.preact(x)
        assert torch.allclose(project(x), project.F(a) + project.shortcut(a))
        assert torch.allclose(down(z), down.F(down.preact(z)) + z[..., ::2, ::2])


# The stem has no ReLU, so its pooled map has negative values: Keras' explicit zero padding before the
# max-pool differs from `nn.MaxPool2d(3, 2, padding=1)` (which pads with -inf), and only on the border.
def test_keras_stem_pads_with_zeros():
    torch.manual_seed(0)
    stem = resnet_v2_keras(50).stem.eval()
    with torch.no_grad():
        conv1 = stem.conv1_conv(stem.conv1_pad(torch.randn(1, 3, 224, 224)))
        keras_pool = stem.pool1_pool(stem.pool1_pad(conv1))
        torch_pool = nn.MaxPool2d(3, 2, padding=1)(conv1)
    assert (conv1 < 0).any() and keras_pool.shape == torch_pool.shape == (1, 64, 56, 56)
    differ = keras_pool != torch_pool
    assert differ.any() and not differ[..., 1:-1, 1:-1].any()


def conv_shapes(module: nn.Module) -> list:
    # The kernel shapes [C_out, C_in, k, k] of a module's convolutions, sorted.
    return sorted(tuple(m.weight.shape) for m in module.modules() if isinstance(m, nn.Conv2d))


# The Keras port and the v1 ResNet-50 have convolution weights of the same shapes, stem and block by
# block, so their parameter counts differ by conv biases and BN only.
def test_keras_conv_weights_have_resnet50_shapes():
    with torch.device("meta"):
        v1, v2 = resnet(50), resnet_v2_keras(50)
    parts_v1 = [v1.stem] + [block for stage in v1.stages for block in stage]
    parts_v2 = [v2.stem] + [block for stage in v2.stages for block in stage]
    assert [conv_shapes(p) for p in parts_v1] == [conv_shapes(p) for p in parts_v2]
    biases = sum(m.bias.numel() for m in v2.modules() if isinstance(m, nn.Conv2d) and m.bias is not None)
    b1, b2 = param_breakdown(v1), param_breakdown(v2)
    assert b2["conv"] - b1["conv"] == biases and b1["fc"] == b2["fc"]


def test_bad_keras_depth():
    with pytest.raises(ValueError, match=r"\[50, 101, 152\]"):
        resnet_v2_keras(34)


def test_check_final_map_size():
    assert final_side(224) == 7  # the reference's rule gives what the page prints
    right = final_map_size
    check_final_map_size(right)
    with pytest.raises(AssertionError, match="you give") as info:
        check_final_map_size({299: right[299], 225: right[225] + 1})
    assert_hint_keeps_answer(info, f" {right[225]}")
    with pytest.raises(AssertionError, match="299 and 225") as info:  # a size left out
        check_final_map_size({299: right[299]})
    assert_hint_keeps_answer(info, f" {right[225]}")


# ---------------------------------------------------------------------------------------------
# The He et al. 2016 tables in `paper_tables`


# The tables repeat numbers across each other and across the two papers; a typo in any copy fails here. All are
# CIFAR-10 test errors (%), medians of 5 runs, except the He et al. 2015 figures that Table 4 quotes.
def test_preact_paper_tables_are_consistent():
    t1 = {(row.case, row.remark): row for row in PREACT_TABLE_1}
    t2, t3, t4 = PREACT_TABLE_2, PREACT_TABLE_3, PREACT_TABLE_4_CIFAR10
    # The ResNet-110 baseline: Table 1 (original), Table 2 (a), Table 3, and Table 4's quote of He et al. 2015.
    baseline_110 = {t1["original", ""].error, t2["original"].resnet110, t3["CIFAR-10", "ResNet-110"].baseline,
                    t4["ResNet-110 [1]"].error}
    assert baseline_110 == {6.61}
    # Full pre-activation (Table 2 (e)) is Table 3's pre-activation column; ResNet-164 also in Table 4.
    assert t2["full_preact"].resnet110 == t3["CIFAR-10", "ResNet-110"].preact
    assert t2["original"].resnet164 == t3["CIFAR-10", "ResNet-164"].baseline
    assert t2["full_preact"].resnet164 == t3["CIFAR-10", "ResNet-164"].preact == t4["ResNet-164 [ours]"].error
    assert t3["CIFAR-10", "ResNet-1001"].preact == t4["ResNet-1001 [ours]"].error
    # Table 2: full pre-activation is the best of the five in both columns.
    for column in ("resnet110", "resnet164"):
        assert min(t2, key=lambda name: getattr(t2[name], column)) == "full_preact"
    # Table 3: "our 'pre-activation' models are consistently better than the baseline counterparts".
    assert all(row.preact < row.baseline for row in t3.values())
    # Table 4: parameters; ResNet-164 is as large as ResNet-110; medians lie within 2 std of their means; the
    # abstract's 4.62 % is the mini-batch-64 run.
    assert t4["ResNet-164 [ours]"].params_m == t4["ResNet-110 [1]"].params_m == 1.7
    assert t4["ResNet-1001 [ours]"].params_m == t4["ResNet-1001 [ours] †"].params_m == 10.2
    assert all(abs(row.error - row.mean) < 2 * row.std for row in t4.values() if row.mean is not None)
    assert t4["ResNet-1001 [ours] †"].error == 4.62
    # Table 4 quotes He et al. 2015's Table 6 for ResNet-110 (parameters) and ResNet-1202 (parameters and error).
    assert t4["ResNet-110 [1]"].params_m == RESNET_TABLE_6[110].params_m
    assert t4["ResNet-1202 [1]"] == (RESNET_TABLE_6[1202].params_m, RESNET_TABLE_6[1202].error, None, None)
    # Table 1: "fail" means above 20 %; every number given is below; the gate biases of §3.1.
    assert all(row.error is None or row.error < PREACT_FAIL_ABOVE for row in PREACT_TABLE_1)
    assert [row.error for row in PREACT_TABLE_1].count(None) == 4
    assert t1["shortcut-only gating", "init b_g = -6"].error < t1["exclusive gating", "init b_g = -6"].error
