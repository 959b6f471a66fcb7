"""Fidelity tests for the ResNet v1 chapter: each test proves one claim of the paper (He et al. 2015) or of torchvision.

The pages link to these tests by name. Figures from the paper are written here once, as the paper states them,
and compared with what our code computes; torchvision's figures are computed from torchvision itself.
"""

import pytest
import torch
import torchvision
from torch import nn

from labml_style_src.resnet_v1.bottleneck import (
    Bottleneck,
    check_bottleneck_macs,
    count_macs,
)
from labml_style_src.resnet_v1.cifar import check_cifar_params, cifar_resnet
from labml_style_src.resnet_v1.residual_block import (
    BasicBlock,
    check_basic_block_params,
    n_params,
)
from labml_style_src.resnet_v1.resnet import (
    TABLE_1,
    Arch,
    ResNet,
    check_resnet34_C_minus_B,
    from_torchvision,
    resnet,
    stage_shapes,
)
from labml_style_src.resnet_v1.shortcuts import (
    SHORTCUTS,
    ZeroPadShortcut,
    check_extra_params_C,
    shortcut_A,
)

DEPTHS = (18, 34, 50, 101, 152)
CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)


def on_meta(build):
    # Shapes only: building ResNet-152 or ResNet-1202 on the meta device costs no memory and little time.
    with torch.device("meta"):
        return build()


# Parameter counts equal torchvision's to the unit, for all five depths (torchvision's count is computed, and
# also compared with the figure the chapter quotes).
TORCHVISION_PARAMS = (11_689_512, 21_797_672, 25_557_032, 44_549_160, 60_192_808)


@pytest.mark.parametrize("depth,quoted", list(zip(DEPTHS, TORCHVISION_PARAMS)))
def test_param_counts_match_torchvision(depth, quoted):
    theirs = n_params(on_meta(lambda: getattr(torchvision.models, f"resnet{depth}")()))
    assert theirs == quoted
    assert n_params(on_meta(lambda: resnet(depth))) == theirs
    # The stride position changes no parameter.
    assert n_params(on_meta(lambda: resnet(depth, stride_on="1x1"))) == theirs


def randomize_bn(model: nn.Module, generator: torch.Generator) -> None:
    # Random running statistics and affine parameters, so that eval-mode BN is really exercised.
    # The last BN of each residual branch gets a small γ so that the logits of deep nets stay O(1–100).
    last_bn = "bn3" if hasattr(model.layer1[0], "bn3") else "bn2"  # torchvision's names
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=generator) * 0.2)
            m.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
            scale = 0.2 if name.endswith(last_bn) else 1.0
            m.weight.data.copy_((torch.rand(c, generator=generator) * 0.5 + 0.5) * scale)
            m.bias.data.copy_(torch.randn(c, generator=generator) * 0.1)


# Same network, proven: torchvision's state dict loads strictly into ours through `from_torchvision`, and in eval
# mode on the same input the logits agree to 1e-5 (fp32), for all five depths in the torchvision ("V1.5") layout.
@pytest.mark.parametrize("depth", DEPTHS)
def test_torchvision_weights_give_same_logits(depth):
    g = torch.Generator().manual_seed(depth)
    torch.manual_seed(depth)
    theirs = getattr(torchvision.models, f"resnet{depth}")(weights=None).eval()
    randomize_bn(theirs, g)
    ours = resnet(depth).eval()
    ours.load_state_dict(from_torchvision(theirs.state_dict()), strict=True)
    x = torch.randn(1, 3, 64, 64, generator=g)
    with torch.no_grad():
        a, b = ours(x), theirs(x)
    assert b.abs().max() > 1e-2  # a meaningful comparison, not zeros against zeros
    assert (a - b).abs().max().item() <= 1e-5


# The comparison above can fail: the same weights in the paper's layout (stride on the first 1×1) give other logits.
def test_v1_layout_is_a_different_network():
    torch.manual_seed(0)
    theirs = torchvision.models.resnet50(weights=None).eval()
    ours = resnet(50, stride_on="1x1").eval()
    ours.load_state_dict(from_torchvision(theirs.state_dict()), strict=True)  # same shapes, so it loads
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (ours(x) - theirs(x)).abs().max().item() > 1e-3


def test_key_mapping_follows_the_paper_names():
    renamed = from_torchvision({k: None for k in ("conv1.weight", "bn1.running_var", "layer1.0.conv3.weight",
                                                  "layer4.2.bn2.bias", "layer2.0.downsample.1.weight", "fc.bias")})
    assert list(renamed) == ["stem.conv.weight", "stem.bn.running_var", "stages.conv2_x.0.F.6.weight",
                             "stages.conv5_x.2.F.4.bias", "stages.conv3_x.0.shortcut.1.weight", "fc.bias"]


# Table 1's "FLOPs" (multiply-adds) at 224×224 for the paper's layout, stride on the first 1×1 ("V1"): our exact
# count is within 2 % of the table, and it is 1.81 / 3.66 / 3.86 / 7.57 / 11.28 G (the paper rounds loosely).
TABLE_1_GMACS, EXACT_GMACS = (1.8, 3.6, 3.8, 7.6, 11.3), (1.81, 3.66, 3.86, 7.57, 11.28)


@pytest.mark.parametrize("depth,paper,exact", list(zip(DEPTHS, TABLE_1_GMACS, EXACT_GMACS)))
def test_macs_match_table_1(depth, paper, exact):
    assert TABLE_1[depth].gmacs == paper
    gmacs = on_meta(lambda: count_macs(resnet(depth, stride_on="1x1"), (1, 3, 224, 224))) / 1e9
    assert abs(gmacs / paper - 1) < 0.02
    assert round(gmacs, 2) == exact


# Torchvision's layout (stride on the 3×3, "V1.5") costs 4.09 G multiply-adds for ResNet-50, 6 % more than V1;
# the basic-block nets do not change.
def test_v15_macs():
    v15 = on_meta(lambda: count_macs(resnet(50), (1, 3, 224, 224))) / 1e9
    theirs = on_meta(lambda: count_macs(torchvision.models.resnet50(), (1, 3, 224, 224))) / 1e9
    assert round(v15, 2) == 4.09 and v15 == theirs
    for depth in (18, 34):
        with torch.device("meta"):
            v1 = count_macs(resnet(depth, stride_on="1x1"), (1, 3, 224, 224))
            v15 = count_macs(resnet(depth, stride_on="3x3"), (1, 3, 224, 224))
        assert v1 == v15


# Table 6: option-A CIFAR ResNets have 0.27 / 0.46 / 0.66 / 0.85 / 1.7 / 19.4 M parameters.
@pytest.mark.parametrize("depth,paper_m", list(zip(CIFAR_DEPTHS, (0.27, 0.46, 0.66, 0.85, 1.7, 19.4))))
def test_cifar_param_counts_match_table_6(depth, paper_m):
    n = n_params(on_meta(lambda: cifar_resnet(depth)))
    assert round(n / 1e6, 2 if paper_m < 1 else 1) == paper_m


def projection(c_in, c_out):
    return c_in * c_out + 2 * c_out  # 1×1 conv weights + BN γ, β


# Option A adds zero parameters over the identity; B adds exactly one projection per shape change; C one per block.
# Checked on CIFAR ResNet-20/56 and ImageNet ResNet-34/50 by arithmetic from the layer tables.
@pytest.mark.parametrize("name", ["cifar20", "cifar56", "resnet34", "resnet50"])
def test_shortcut_options_add_exactly_the_projections(name):
    if name.startswith("cifar"):
        depth = int(name[5:])
        n = (depth - 2) // 6
        build = lambda o: cifar_resnet(depth, shortcut=o)  # noqa: E731
        c_stem, widths, layers, expansion = 16, (16, 32, 64), (n, n, n), 1
    else:
        depth = int(name[6:])
        build = lambda o: resnet(depth, shortcut=o)  # noqa: E731
        arch = TABLE_1[depth]
        c_stem, widths, layers, expansion = 64, (64, 128, 256, 512), arch.blocks_per_stage, arch.block.expansion
    with torch.device("meta"):
        models = {o: build(o) for o in "ABC"}
    # A: no shortcut has a parameter.
    for block_list in models["A"].stages:
        for block in block_list:
            assert n_params(block.shortcut) == 0
    # Every block as (c_in, c_out, stride) from the layer table.
    blocks, c = [], c_stem
    for i, (count, w) in enumerate(zip(layers, widths)):
        for j in range(count):
            blocks.append((c, w * expansion, 2 if (i > 0 and j == 0) else 1))
            c = w * expansion
    changes = sum(projection(ci, co) for ci, co, s in blocks if ci != co or s != 1)
    everywhere = sum(projection(ci, co) for ci, co, s in blocks)
    assert n_params(models["B"]) - n_params(models["A"]) == changes
    assert n_params(models["C"]) - n_params(models["A"]) == everywhere


def shapes_and_logits(model: nn.Module, x: torch.Tensor):
    # The page's `stage_shapes` (stem left out), and the logits of the whole forward pass.
    shapes = list(stage_shapes(model, x).values())[1:]
    with torch.no_grad():
        return shapes, model(x)


# At 224×224 the stages conv2_x … conv5_x produce 56, 28, 14, 7: the test that catches a net where only the very
# first block downsamples. All depths and both stride placements, on the meta device; ResNet-18 also for real.
@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("stride_on", ["1x1", "3x3"])
def test_stage_shapes_imagenet(depth, stride_on):
    expansion = TABLE_1[depth].block.expansion
    shapes, logits = on_meta(lambda: shapes_and_logits(resnet(depth, stride_on=stride_on), torch.empty(2, 3, 224, 224)))
    assert shapes == [(2, w * expansion, s, s) for w, s in zip((64, 128, 256, 512), (56, 28, 14, 7))]
    assert logits.shape == (2, 1000)


def test_stage_shapes_imagenet_real_tensor():
    shapes, logits = shapes_and_logits(resnet(18).eval(), torch.randn(1, 3, 224, 224))
    assert [s[-1] for s in shapes] == [56, 28, 14, 7] and torch.isfinite(logits).all()


# CIFAR: 16, 32, 64 channels on 32, 16, 8 maps (a real ResNet-20 and, on meta, ResNet-110).
@pytest.mark.parametrize("depth", [20, 110])
def test_stage_shapes_cifar(depth):
    if depth == 20:
        shapes, logits = shapes_and_logits(cifar_resnet(20).eval(), torch.randn(2, 3, 32, 32))
    else:
        shapes, logits = on_meta(lambda: shapes_and_logits(cifar_resnet(depth), torch.empty(2, 3, 32, 32)))
    assert shapes == [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]
    assert logits.shape == (2, 10)


def conv_strides(module: nn.Module):
    return [m.stride[0] for m in module.modules() if isinstance(m, nn.Conv2d)]


STRIDE_CASES = {f"resnet{d}-{s}": ("resnet", d, s) for d in DEPTHS for s in ("1x1", "3x3")}
STRIDE_CASES |= {f"cifar{d}": ("cifar", d, "1x1") for d in (20, 56)}  # basic blocks: 1st conv


# The first block of EVERY stage after conv2_x has stride 2 (in F and, if it has one, in the
# projection); every other block has stride 1. Each id builds its own network: the test checks
# that the network has the depth and the stride placement its id names.
@pytest.mark.parametrize("kind,depth,stride_on", list(STRIDE_CASES.values()), ids=list(STRIDE_CASES))
def test_every_later_stage_starts_with_stride_2(kind, depth, stride_on):
    with torch.device("meta"):
        model = resnet(depth, stride_on=stride_on) if kind == "resnet" else cifar_resnet(depth)
    # Weight layers: every conv of every F, plus the stem conv and the fc layer.
    assert sum(len(conv_strides(block.F)) for stage in model.stages for block in stage) + 2 == depth
    for i, stage in enumerate(model.stages):
        for j, block in enumerate(stage):
            strides = conv_strides(block.F)
            if i > 0 and j == 0:
                assert strides.count(2) == 1 and max(strides) == 2, f"stage {i}: first block strides {strides}"
                # The stride sits on the first conv (every basic block, and "1x1") or on the 3×3.
                on_3x3 = isinstance(block, Bottleneck) and stride_on == "3x3"
                assert strides.index(2) == (1 if on_3x3 else 0)
                assert all(s == 2 for s in conv_strides(block.shortcut))
                assert not isinstance(block.shortcut, nn.Identity)
            else:
                assert set(strides) == {1} and set(conv_strides(block.shortcut)) <= {1}


def leaf_call_order(model: nn.Module, x: torch.Tensor):
    calls = []
    hooks = [m.register_forward_hook(lambda mod, i, o: calls.append(mod))
             for m in model.modules() if not list(m.children())]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return calls


# No convolution that feeds a BN has a bias: in the order modules actually run, every conv is followed by a BN of
# its width, and no conv anywhere has a bias.
@pytest.mark.parametrize("build,size", [(lambda: resnet(18), 64), (lambda: resnet(50, shortcut="C"), 64),
                                        (lambda: cifar_resnet(20, shortcut="B"), 32)], ids=["r18", "r50C", "c20B"])
def test_no_conv_feeding_bn_has_a_bias(build, size):
    model = build().eval()
    calls = leaf_call_order(model, torch.randn(1, 3, size, size))
    convs = [k for k, m in enumerate(calls) if isinstance(m, nn.Conv2d)]
    assert len(convs) == sum(isinstance(m, nn.Conv2d) for m in model.modules())
    for k in convs:
        nxt = calls[k + 1]
        assert isinstance(nxt, nn.BatchNorm2d) and nxt.num_features == calls[k].out_channels
        assert calls[k].bias is None


# The stem is conv → BN → ReLU (→ max-pool for ImageNet): its output is non-negative and has zeros.
@pytest.mark.parametrize("build,size,kinds", [
    (lambda: resnet(34), 64, [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d]),
    (lambda: cifar_resnet(20), 32, [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]),
], ids=["imagenet", "cifar"])
def test_stem_has_its_relu(build, size, kinds):
    model = build().eval()
    calls = leaf_call_order(model, torch.randn(2, 3, size, size))
    assert [type(m) for m in calls[:len(kinds)]] == kinds
    with torch.no_grad():
        h = model.stem(torch.randn(2, 3, size, size))
    assert (h >= 0).all() and (h == 0).any()


# The bottleneck: 1×1 reduce → 3×3 → 1×1 expand, expansion 4; inner width int(width·base_width/64)·groups.
def test_bottleneck_widths_and_groups():
    block = Bottleneck(256, 64)
    assert [m.out_channels for m in block.F if isinstance(m, nn.Conv2d)] == [64, 64, 256]
    assert [m.kernel_size for m in block.F if isinstance(m, nn.Conv2d)] == [(1, 1), (3, 3), (1, 1)]
    grouped = Bottleneck(256, 64, groups=32, base_width=4)
    convs = [m for m in grouped.F if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128, 128, 256] and convs[1].groups == 32
    x = torch.randn(1, 256, 8, 8)
    assert grouped(x).shape == block(x).shape == (1, 256, 8, 8)


# Option A subsamples with ::2 and zero-pads channels; it agrees with F on odd maps (7 → 4).
def test_option_A_subsamples_and_pads():
    x = torch.randn(2, 16, 7, 7)
    s = shortcut_A(16, 32, 2)
    assert isinstance(s, ZeroPadShortcut) and n_params(s) == 0
    y = s(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2]) and (y[:, 16:] == 0).all()
    assert isinstance(shortcut_A(16, 16, 1), nn.Identity)
    for option in SHORTCUTS.values():
        assert BasicBlock(16, 32, 2, option)(x).shape == (2, 32, 4, 4)
        assert Bottleneck(16, 8, 2, option, stride_on="1x1")(x).shape == (2, 32, 4, 4)


# Bad input fails early with a ValueError that names the valid choices or the expected shape.
def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"unknown shortcut option 'D'.*\['A', 'B', 'C'\]"):
        resnet(34, shortcut="D")
    with pytest.raises(ValueError, match=r"unknown shortcut option.*\['A', 'B', 'C'\]"):
        cifar_resnet(20, shortcut="a")
    with pytest.raises(ValueError, match=r"6n\+2.*20, 32, 44, 56, 110, 1202.*got 21"):
        cifar_resnet(21)
    with pytest.raises(ValueError, match=r"6n\+2"):
        cifar_resnet(2)
    with pytest.raises(ValueError, match=r"unknown depth 42.*\[18, 34, 50, 101, 152\]"):
        resnet(42)
    with pytest.raises(ValueError, match=r"layer table \(3, 4, 6, 3\) with BasicBlock gives 34 .* not 50"):
        Arch(50, BasicBlock, (3, 4, 6, 3), 3.8)
    with pytest.raises(ValueError, match=r"Bottleneck gives 50 weight layers, not 34"):
        Arch(34, Bottleneck, (3, 4, 6, 3), 3.6)
    with pytest.raises(ValueError, match=r"stride_on must be one of \('1x1', '3x3'\)"):
        resnet(50, stride_on="3x1")
    with pytest.raises(ValueError, match=r"stride_on must be one of"):
        Bottleneck(64, 64, stride_on="first")
    with pytest.raises(ValueError, match=r"width per group int\(16·2/64\) = 0 is empty"):
        Bottleneck(64, 16, groups=8, base_width=2)
    with pytest.raises(ValueError, match=r"basic blocks.*use depth 50, 101 or 152"):
        resnet(18, groups=32)
    with pytest.raises(ValueError, match=r"one positive block count per stage"):
        ResNet(BasicBlock, (2, 2, 2), (64, 128, 256, 512))
    model = resnet(18).eval()
    with pytest.raises(ValueError, match=r"expects images \[B, 3, H, W\], got shape \(3, 64, 64\)"):
        model(torch.zeros(3, 64, 64))
    with pytest.raises(ValueError, match=r"expects images \[B, 3, H, W\], got shape \(1, 1, 64, 64\)"):
        model(torch.zeros(1, 1, 64, 64))


# The paper's tables, stated on the pages as facts, are at least consistent with the paper's own conclusions:
# all shortcut options beat plain-34 and C < B < A (Table 3); deeper CIFAR nets up to 110 layers err less (Table 6).
def test_paper_facts_are_consistent():
    table_2 = {"plain-18": 27.94, "plain-34": 28.54, "ResNet-18": 27.88, "ResNet-34": 25.03}
    table_3 = {"A": 25.03, "B": 24.52, "C": 24.19}
    assert table_2["plain-34"] > table_2["plain-18"] and table_2["ResNet-34"] < table_2["ResNet-18"]
    assert table_3["A"] == table_2["ResNet-34"]  # Table 2's ResNets use option A
    assert table_2["plain-34"] > table_3["A"] > table_3["B"] > table_3["C"]
    from labml_style_src.resnet_v1.cifar import TABLE_6
    errors = [TABLE_6[d][1] for d in (20, 32, 44, 56, 110)]
    assert errors == [8.75, 7.51, 7.17, 6.97, 6.43] and errors == sorted(errors, reverse=True)


# Auto-checked exercises: each checker accepts the right answer and rejects a wrong one.
def test_exercise_checkers(capsys):
    check_basic_block_params(lambda c: 2 * 9 * c * c + 4 * c)
    with pytest.raises(AssertionError):
        check_basic_block_params(lambda c: 2 * 9 * c * c)
    check_bottleneck_macs(lambda p, h, w: (4 * p * p + 9 * p * p + 4 * p * p) * h * w)
    with pytest.raises(AssertionError):
        check_bottleneck_macs(lambda p, h, w: 2 * 9 * 16 * p * p * h * w)
    check_extra_params_C(lambda n, ci, co: projection(ci, co) + (n - 1) * projection(co, co))
    with pytest.raises(AssertionError):
        check_extra_params_C(lambda n, ci, co: n * projection(co, co))
    # ResNet-34, B → C: identity blocks get a c×c projection: 3 in conv2_x, 3 in conv3_x, 5 in conv4_x, 2 in conv5_x.
    check_resnet34_C_minus_B(3 * projection(64, 64) + 3 * projection(128, 128) + 5 * projection(256, 256)
                             + 2 * projection(512, 512))
    with pytest.raises(AssertionError):
        check_resnet34_C_minus_B(4 * projection(64, 64) + 4 * projection(128, 128) + 6 * projection(256, 256)
                                 + 3 * projection(512, 512))

    def cifar_params(n):
        conv_bn = lambda ci, co: 9 * ci * co + 2 * co  # noqa: E731
        stem = conv_bn(3, 16)
        stages = sum(conv_bn(ci, co) + conv_bn(co, co) + (n - 1) * 2 * conv_bn(co, co)
                     for ci, co in ((16, 16), (16, 32), (32, 64)))
        return stem + stages + 64 * 10 + 10

    check_cifar_params(cifar_params)
    with pytest.raises(AssertionError):
        check_cifar_params(lambda n: cifar_params(n) + 2 * (16 * 32 + 32 * 64))
    assert capsys.readouterr().out.count("correct") == 5


# On a GPU the same weights give the same logits too (cuDNN may pick TF32 kernels, hence the looser bound).
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("depth", [18, 50])
def test_torchvision_weights_give_same_logits_cuda(depth):
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, f"resnet{depth}")(weights=None).cuda().eval()
    ours = resnet(depth).cuda().eval()
    ours.load_state_dict(from_torchvision(theirs.state_dict()), strict=True)
    x = torch.randn(4, 3, 64, 64, device="cuda")
    with torch.no_grad():
        a, b = ours(x), theirs(x)
    assert (a - b).abs().max().item() <= 1e-4 * max(1.0, b.abs().max().item())
    shapes, _ = shapes_and_logits(ours, torch.randn(1, 3, 224, 224, device="cuda"))
    assert [s[-1] for s in shapes] == [56, 28, 14, 7]
