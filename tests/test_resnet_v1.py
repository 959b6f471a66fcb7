"""Fidelity tests for the ResNet v1 chapter: each test proves one claim of the paper (He et al. 2015) or of torchvision.

The pages link to these tests by name. Figures from the paper are written here once, as the paper states them,
and compared with what our code computes; torchvision's figures are computed from torchvision itself.
"""

import dataclasses
import re

import pytest
import torch
import torchvision
from torch import nn

from conftest import PAGES, assert_hint_keeps_answer
from labml_style_src.paper_tables import (
    PREACT_TABLE_1,
    PREACT_TABLE_2,
    PREACT_TABLE_3,
    PREACT_TABLE_4_CIFAR10,
    RESNET_34_EXTRA_PROJECTIONS_C,
    RESNET_TABLE_1,
    RESNET_TABLE_2,
    RESNET_TABLE_3,
    RESNET_TABLE_6,
)
from labml_style_src.resnet_v1.against_torchvision import (
    check_resnet50_C_minus_B,
    from_torchvision,
)
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
    check_sides_320,
    resnet,
    stage_shapes,
)
from labml_style_src.resnet_v1.shortcuts import (
    SHORTCUTS,
    ZeroPadShortcut,
    check_extra_params_C,
    shortcut_A,
)
from solutions.resnet_v1.against_torchvision import resnet50_C_minus_B
from solutions.resnet_v1.bottleneck import bottleneck_macs
from solutions.resnet_v1.cifar import cifar_params
from solutions.resnet_v1.residual_block import basic_block_params
from solutions.resnet_v1.resnet import sides_320
from solutions.resnet_v1.shortcuts import extra_params_C

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
@pytest.mark.parametrize("depth,exact", list(zip(DEPTHS, (1.81, 3.66, 3.86, 7.57, 11.28))))
def test_macs_match_table_1(depth, exact):
    paper = RESNET_TABLE_1[depth].gflops
    assert TABLE_1[depth].gmacs == paper
    assert TABLE_1[depth].blocks_per_stage == RESNET_TABLE_1[depth].blocks_per_stage
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
@pytest.mark.parametrize("depth", CIFAR_DEPTHS)
def test_cifar_param_counts_match_table_6(depth):
    paper_m = RESNET_TABLE_6[depth].params_m
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


# The He et al. 2015 tables in `paper_tables` agree with each other and with the sentences of the paper that repeat
# their numbers, so a typo in any of them fails here. Table 2 and Table 3 are both 10-crop top-1 errors on ImageNet
# validation, and Table 2's ResNets use option A (§4.1), so two rows appear in both.
def test_resnet_paper_tables_are_consistent():
    t1, t2, t3, t6 = RESNET_TABLE_1, RESNET_TABLE_2, RESNET_TABLE_3, RESNET_TABLE_6
    assert t3["plain-34"].top1 == t2["plain", 34] and t3["ResNet-34 A"].top1 == t2["ResNet", 34]
    # Table 3: every option beats plain-34, C < B < A, and deeper bottleneck nets err less, in top-1 and top-5.
    for k in (0, 1):
        rows = [t3[name][k] for name in ("plain-34", "ResNet-34 A", "ResNet-34 B", "ResNet-34 C")]
        assert rows == sorted(rows, reverse=True)
        assert t3["ResNet-50"][k] > t3["ResNet-101"][k] > t3["ResNet-152"][k]
    # §4.1: the 34-layer ResNet is better than the 18-layer one "by 2.8%" and than plain-34 "by 3.5%";
    # the plain nets degrade with depth.
    assert abs(t2["ResNet", 18] - t2["ResNet", 34] - 2.8) < 0.06
    assert round(t2["plain", 34] - t2["ResNet", 34], 1) == 3.5 and t2["plain", 34] > t2["plain", 18]
    # §3.3 and §4.1 repeat Table 1's FLOPs: 3.6 (34 layers), 3.8 (50) and 11.3 billion (152).
    assert (t1[34].gflops, t1[50].gflops, t1[152].gflops) == (3.6, 3.8, 11.3)
    # §4.1: option C adds "many (thirteen)" projections to ResNet-34: its 16 blocks minus B's 3.
    assert RESNET_34_EXTRA_PROJECTIONS_C == sum(t1[34].blocks_per_stage) - 3
    # Table 6: deeper is better up to 110 layers; ResNet-1202 is worse than 110 (overfitting, §4.2); the text
    # quotes 6.43 % and 7.93 %; ResNet-110's best run is within its mean ± 2 std.
    errors = [t6[d].error for d in (20, 32, 44, 56, 110)]
    assert errors == sorted(errors, reverse=True) and t6[1202].error > t6[110].error
    assert (t6[110].error, t6[1202].error) == (6.43, 7.93)
    assert t6[110].mean - 2 * t6[110].std <= t6[110].error < t6[110].mean
    assert all(row.mean is None for depth, row in t6.items() if depth != 110)


def prose_percentages(path) -> list:
    """Every 'x.yz %' written in the markdown cells of a page."""
    cells = re.split(r"^# %%", path.read_text(encoding="utf-8"), flags=re.M)
    markdown = "\n".join(cell for cell in cells if cell.startswith(" [markdown]"))
    return [float(x) for x in re.findall(r"(\d+\.\d+) ?%", markdown)]


def table_values(*tables) -> set:
    """All numbers in the given paper tables (dicts or sequences of rows, rows may be tuples or dataclasses)."""
    values = set()
    for table in tables:
        for row in table.values() if isinstance(table, dict) else table:
            items = dataclasses.astuple(row) if dataclasses.is_dataclass(row) else row
            values.update(v for v in (items if isinstance(items, tuple) else (items,)) if isinstance(v, float))
    return values


HE_2015 = table_values(RESNET_TABLE_2, RESNET_TABLE_3, RESNET_TABLE_6)
HE_2016 = table_values(PREACT_TABLE_1, PREACT_TABLE_2, PREACT_TABLE_3, PREACT_TABLE_4_CIFAR10)
CHAPTER_PAGES = [page for page in PAGES if page.chapter in ("resnet_v1", "resnet_v2")]


# Every error rate the prose of the two ResNet chapters writes as 'x.yz %' is a number of the papers' tables: the
# prose cannot drift from `paper_tables` without failing here.
@pytest.mark.parametrize("page", CHAPTER_PAGES, ids=[f"{p.chapter}.{p.name}" for p in CHAPTER_PAGES])
def test_prose_error_rates_are_table_values(page):
    quoted = prose_percentages(page.path)
    assert set(quoted) <= HE_2015 | HE_2016, sorted(set(quoted) - HE_2015 - HE_2016)


# Auto-checked exercises: each checker accepts the reference solution (solutions/resnet_v1/, not on the pages)
# and rejects a wrong answer with a hint that does not give the right answer away.
def test_check_basic_block_params():
    check_basic_block_params(basic_block_params)
    with pytest.raises(AssertionError, match="too few") as info:
        check_basic_block_params(lambda c: 2 * 9 * c * c)
    assert_hint_keeps_answer(info, "22")  # the count for c = 1


def test_check_bottleneck_macs():
    check_bottleneck_macs(bottleneck_macs)
    with pytest.raises(AssertionError, match="too many") as info:
        check_bottleneck_macs(lambda p, h, w: 2 * 9 * 16 * p * p * h * w)
    assert_hint_keeps_answer(info, str(17 * 25))  # the count for width 1 on 5×5


def test_check_extra_params_C():
    check_extra_params_C(extra_params_C)
    with pytest.raises(AssertionError, match="too many") as info:
        check_extra_params_C(lambda n, ci, co: n * projection(co, co))
    assert_hint_keeps_answer(info, str(projection(4, 8)))


def test_check_resnet50_C_minus_B():
    right = resnet50_C_minus_B
    check_resnet50_C_minus_B(right)
    for wrong in (right + projection(256, 256), right - projection(64, 64)):
        with pytest.raises(AssertionError, match="too (many|few)") as info:
            check_resnet50_C_minus_B(wrong)
        assert_hint_keeps_answer(info, str(right), f"{right:,d}")


def test_check_sides_320():
    check_sides_320(sides_320)
    for wrong in ({**sides_320, "stem": 160}, {**sides_320, "conv5_x": 5}, {"stem": 80}):
        with pytest.raises(AssertionError, match=r"not .*divides the side by 4") as info:
            check_sides_320(wrong)
        assert_hint_keeps_answer(info, "10²", "40")


def test_check_cifar_params():
    check_cifar_params(cifar_params)
    with pytest.raises(AssertionError, match="too many") as info:
        check_cifar_params(lambda n: cifar_params(n) + 2 * (16 * 32 + 32 * 64))
    assert_hint_keeps_answer(info, f"{cifar_params(1):,d}", str(cifar_params(1)))


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
