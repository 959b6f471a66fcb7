"""Fidelity tests for the pre-activation ResNet chapter (He et al. 2016, "Identity Mappings in Deep
Residual Networks", arXiv:1603.05027).

Each test names the paper claim or page statement it proves. The Keras totals are facts reported by
`keras.applications` (Keras is not installed here); our PyTorch port has to reproduce them.
"""

import math

import pytest
import torch
from torch import nn

from labml_style_src.resnet_v1.resnet import stage_shapes
from labml_style_src.resnet_v2.activation_variants import (
    ACTIVATION_VARIANTS,
    ActivationVariantUnit,
    check_never_decreasing,
    measure,
)
from labml_style_src.resnet_v2.keras_resnet50v2 import (
    Block2,
    check_where_map_halves,
    keras_counts,
    resnet_v2_keras,
)
from labml_style_src.resnet_v2.preact_resnet import (
    PreActBottleneck,
    check_units_per_stage,
    param_breakdown,
    preact_cifar_resnet,
)
from labml_style_src.resnet_v2.propagation import (
    check_shortcut_factor,
    forward_all,
    grad_decomposition,
    make_stack,
    sample_input,
    shortcut_only_factor,
)
from labml_style_src.resnet_v2.shortcut_variants import (
    SHORTCUT_VARIANTS,
    ShortcutVariantUnit,
    check_gate_gain,
    shortcut_path_gain,
    shortcut_variant,
)

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


# Eq. (8): with h(x) = λx the direct term is λ^(L-l) dE/dx_L (F switched off), and the full gradient
# decomposes into that plus the VJP of sum F̂_i, F̂_i = λ^(L-1-i) F(x_i).
@pytest.mark.parametrize("lam", [0.5, 0.9, 1.1, 2.0])
def test_eq8_scaled_shortcut(lam):
    assert shortcut_only_factor(lam, 54) == pytest.approx(lam ** 54, rel=1e-12)
    assert shortcut_only_factor(lam, 10) == pytest.approx(lam ** 10, rel=1e-12)
    units = make_stack(54, lam)
    readout = torch.randn_like(forward_all(units, sample_input())[-1])
    dE_dxL, dE_dx0, via_F = grad_decomposition(units, sample_input(), 0, readout)
    err = (dE_dx0 - lam ** 54 * dE_dxL - via_F).norm() / (dE_dx0.norm() + via_F.norm())
    assert err < 1e-12


# The exercise checker accepts lam ** n and rejects a wrong formula.
def test_check_shortcut_factor():
    check_shortcut_factor(lambda lam, n: lam ** n)
    with pytest.raises(AssertionError, match="lambda"):
        check_shortcut_factor(lambda lam, n: lam * n)


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


def test_check_gate_gain():
    check_gate_gain(lambda b_g, n: (1 - 1 / (1 + math.exp(-b_g))) ** n)
    with pytest.raises(AssertionError, match="b_g"):
        check_gate_gain(lambda b_g, n: 0.5 ** n)


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


def test_check_never_decreasing():
    check_never_decreasing("relu_before_addition")
    for wrong in ("full_preact", "original"):
        with pytest.raises(AssertionError, match="decreases"):
            check_never_decreasing(wrong)


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
    assert round(r164["total"] / 1e6, 1) == 1.7
    assert round(r1001["conv"] / 1e6, 1) == 10.2
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


def test_check_units_per_stage():
    check_units_per_stage(lambda depth: (depth - 2) // 9)
    with pytest.raises(AssertionError, match="units per stage"):
        check_units_per_stage(lambda depth: (depth - 2) // 6)


# ---------------------------------------------------------------------------------------------
# Keras ResNet50V2 (page: keras_resnet50v2)


# keras.applications totals (trainable + BN moving mean/variance): ResNet50V2 25,613,800
# (25,568,360 trainable, 45,440 non-trainable), ResNet101V2 44,675,560, ResNet152V2 60,380,648.
# Built on the meta device: only shapes are needed to count.
@pytest.mark.parametrize("depth,total", [(50, 25_613_800), (101, 44_675_560), (152, 60_380_648)])
def test_keras_resnet_v2_counts(depth, total):
    with torch.device("meta"):
        counts = keras_counts(resnet_v2_keras(depth))
    assert counts["total"] == total
    if depth == 50:
        assert counts["trainable"] == 25_568_360 and counts["non-trainable"] == 45_440


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


def test_bad_keras_depth():
    with pytest.raises(ValueError, match=r"\[50, 101, 152\]"):
        resnet_v2_keras(34)


def test_check_where_map_halves():
    check_where_map_halves({"conv2": 3, "conv3": 4, "conv4": 6, "conv5": None})
    with pytest.raises(AssertionError, match="halves"):
        check_where_map_halves({"conv2": 1, "conv3": 1, "conv4": 1, "conv5": None})
