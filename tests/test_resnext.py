"""Fidelity tests for the ResNeXt chapter (Xie et al. 2017, arXiv:1611.05431).

Each test names the paper claim or page statement it proves. Numbers that come from torchvision are
computed from torchvision's own models here, not only written down.
"""

import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional as nnf

from labml_style_src.paper_tables import (
    RESNEXT_TABLE1,
    RESNEXT_TABLE2_BLOCK_GFLOPS,
    RESNEXT_TABLE2_BLOCK_PARAMS,
    RESNEXT_TABLE2_WIDTH,
    RESNEXT_TABLE3_TOP1,
    RESNEXT_TABLE7_CIFAR,
)
from labml_style_src.resnet_v1.against_torchvision import from_torchvision
from labml_style_src.resnet_v1.bottleneck import Bottleneck, count_macs
from labml_style_src.resnet_v1.residual_block import n_params, residual_add
from labml_style_src.resnet_v1.resnet import TABLE_1, resnet
from labml_style_src.resnext.add_pitfall import (
    PAIRS,
    TORCH_MESSAGE,
    TutorialBlock,
    buggy_model,
    check_add_shapes,
    tiny_task,
    trace_adds,
    tutorial_stack,
)
from labml_style_src.resnext.aggregated import (
    AggregatedBlock,
    SplitTransformMerge,
    block_cost,
    check_bottleneck_width,
)
from labml_style_src.resnext.paper_numbers import (
    block_costs,
    block_group,
    check_downsampling_block_macs,
    ten_crop_probs,
)
from labml_style_src.resnext.resnext_nets import (
    CIFAR_WIDTHS,
    IMAGENET_WIDTHS,
    Template,
    check_stage_weights,
    meta_model,
    randomize_bn_stats,
    resnext,
    resnext29,
)
from labml_style_src.resnext.three_forms import (
    EarlyConcat,
    GroupedConv,
    check_from_grouped,
    to_early_concat,
    to_grouped,
)
from solutions.resnext.add_pitfall import answers
from solutions.resnext.aggregated import bottleneck_width
from solutions.resnext.paper_numbers import downsampling_block_macs
from solutions.resnext.resnext_nets import stage_weights
from solutions.resnext.three_forms import from_grouped

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
AT_224 = (1, 3, 224, 224)  # one ImageNet-sized image, for counting multiply-adds


# ---------------------------------------------------------------------------------------------
# Aggregated transformations (page: aggregated)


# Table 2: all five (C, d) rows cost about 70k weights and 0.22 G multiply-adds at 56×56 (its
# caption), eq. (4) is exactly what the module has and does, and each d is the whole width whose
# cost comes nearest to ResNet-50's bottleneck (the page's "why these d").
def test_table2_costs():
    x = torch.randn(1, 256, 14, 14)  # measured on 14×14 to stay fast; MACs scale with h·w
    target = block_cost(256, 1, 64)[0]
    for C, d in RESNEXT_TABLE2_WIDTH.items():
        block = AggregatedBlock(256, C, d).eval()
        params, macs = block_cost(256, C, d)
        assert n_params(block, nn.Conv2d) == params == C * (256 * d + 9 * d * d + d * 256)
        assert count_macs(block, tuple(x.shape)) == block_cost(256, C, d, hw=14)[1] == macs // 16
        assert abs(params / RESNEXT_TABLE2_BLOCK_PARAMS - 1) < 0.03
        assert round(macs / 1e9, 2) == RESNEXT_TABLE2_BLOCK_GFLOPS
        nearest = min(range(1, 257), key=lambda w: abs(block_cost(256, C, w)[0] - target))
        assert d == nearest
    # C = 1, d = 64 is exactly ResNet-50's conv2 bottleneck.
    assert target == n_params(Bottleneck(256, 64), nn.Conv2d)


# Template rule: halving the map and doubling the widths keeps a block's MACs constant.
def test_template_rule_keeps_cost():
    macs = {block_cost(256 * 2 ** s, 32, 4 * 2 ** s, 56 // 2 ** s)[1] for s in range(4)}
    assert len(macs) == 1


def test_check_bottleneck_width():
    # Wrong: width c/4 split evenly over C paths; a float.
    check_bottleneck_width(bottleneck_width)
    with pytest.raises(AssertionError, match="a neighbouring width comes closer"):
        check_bottleneck_width(lambda c, C: max(1, c // (4 * C)))
    with pytest.raises(AssertionError, match="must return a whole number"):
        check_bottleneck_width(lambda c, C: bottleneck_width(c, C) + 0.0)


# The reference solves eq. (4)'s quadratic; it agrees with a search over every whole width.
def test_bottleneck_width_is_the_nearest_whole_width():
    for c in (64, 128, 256, 1024, 4096):
        target = block_cost(c, 1, c // 4)[0]
        for C in (1, 2, 3, 4, 8, 12, 32, 64, 100):
            nearest = min(range(1, c + 1), key=lambda d: abs(block_cost(c, C, d)[0] - target))
            assert bottleneck_width(c, C) == nearest, (c, C)


# ---------------------------------------------------------------------------------------------
# Three equivalent forms (page: three_forms)


def _three_forms(c, C, d, stride, device, dtype):
    torch.manual_seed(0)
    a = SplitTransformMerge(c, C, d, 2 * c, stride)
    for m in a.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5), nn.init.uniform_(m.bias, -0.5, 0.5)
            m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 1.5)
    b, g = EarlyConcat(c, C, d, 2 * c, stride), GroupedConv(c, C, d, 2 * c, stride)
    b.load_state_dict(to_early_concat(a.state_dict(), C))
    g.load_state_dict(to_grouped(a.state_dict(), C))
    return [m.to(device, dtype) for m in (a, b, g)]


def _grads(model):
    return {n: p.grad for n, p in model.named_parameters()}


def _close(got, want, tol):
    # |got - want| <= tol · max(1, |want|_max): absolute for small tensors, relative for large gradients.
    scale = max(1.0, want.abs().max().item())
    assert (got - want).abs().max().item() <= tol * scale


def _assert_forms_equal(c, C, d, stride, device, dtype, atol):
    a, b, g = _three_forms(c, C, d, stride, device, dtype)
    x = torch.randn(4, c, 8, 8, device=device, dtype=dtype, requires_grad=True)
    w = torch.randn(4, 2 * c, 8 // stride, 8 // stride, device=device, dtype=dtype)
    outs, in_grads = [], []
    for m in (a, b, g):  # training mode: BN with batch statistics
        x.grad = None
        y = m(x)
        (y * w).sum().backward()
        outs.append(y.detach())
        in_grads.append(x.grad.clone())
    for y, gx in zip(outs[1:], in_grads[1:]):
        torch.testing.assert_close(y, outs[0], atol=atol, rtol=0)
        _close(gx, in_grads[0], atol)
    # Weight gradients of (a), mapped like the weights, equal those of (b) and (c).
    for mapped, other in ((to_early_concat(_grads(a), C), _grads(b)), (to_grouped(_grads(a), C), _grads(g))):
        assert mapped.keys() == other.keys()
        for k in mapped:
            _close(other[k], mapped[k], atol)
    with torch.no_grad():  # eval mode: BN with (mapped) running statistics
        ys = [m.eval()(x) for m in (a, b, g)]
    torch.testing.assert_close(ys[1], ys[0], atol=atol, rtol=0)
    torch.testing.assert_close(ys[2], ys[0], atol=atol, rtol=0)


# Fig. 3: forms (a), (b) and (c) are the same function, forward and backward, in float64 and at the
# float32 tolerance of 1e-5 (gradients relative to their largest entry), at stride 1 and 2.
@pytest.mark.parametrize("C,d,stride", [(32, 4, 1), (4, 6, 2)])
def test_three_forms_equal(C, d, stride):
    _assert_forms_equal(64, C, d, stride, "cpu", torch.float64, atol=1e-10)
    _assert_forms_equal(64, C, d, stride, "cpu", torch.float32, atol=1e-5)


@CUDA
def test_three_forms_equal_cuda():
    _assert_forms_equal(64, 32, 4, 2, "cuda", torch.float64, atol=1e-10)


# The grouped weight has shape [C_out, C_in / groups, k, k].
def test_groups_weight_shape():
    g = GroupedConv(256, 32, 4, 256)
    assert g.F[3].weight.shape == (128, 4, 3, 3) and g.F[3].groups == 32


def test_check_from_grouped():
    check_from_grouped(from_grouped)
    # The last 1×1 split along the output axis: the shapes do not load.
    with pytest.raises(AssertionError, match="does not load your state dict"):
        check_from_grouped(lambda sd, C: from_grouped(sd, C) | {
            f"paths.{i}.6.weight": w for i, w in enumerate(sd["F.6.weight"].chunk(C, 0))})
    # The paths' last 1×1s in reverse order: everything loads, the function is another one.
    with pytest.raises(AssertionError, match="computes something else in training mode"):
        check_from_grouped(lambda sd, C: from_grouped(sd, C) | {
            f"paths.{i}.6.weight": from_grouped(sd, C)[f"paths.{C - 1 - i}.6.weight"] for i in range(C)})


# ---------------------------------------------------------------------------------------------
# ResNeXt-50, Wide ResNet-50-2, ResNeXt-101, ResNeXt-29 (page: resnext_nets)


# torchvision's resnext50_32x4d / wide_resnet50_2 load into our constructor (through the ResNet
# page's key mapping) and give the same eval-mode logits; parameter counts 25,028,904 / 68,883,240;
# ResNeXt-50 costs ≈ 4.2 GMACs at 224² (ResNeXt Table 1), the same count as torchvision's model.
@pytest.mark.parametrize("name,params,gmacs", [("resnext50_32x4d", 25_028_904, 4.2),
                                               ("wide_resnet50_2", 68_883_240, 11.4)])
def test_resnext50_matches_torchvision(name, params, gmacs):
    torch.manual_seed(0)
    theirs = randomize_bn_stats(getattr(torchvision.models, name)(weights=None)).eval()
    ours = resnext(name).eval()
    assert n_params(ours) == n_params(theirs) == params
    ours.load_state_dict(from_torchvision(theirs.state_dict()))  # strict
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=0)
    m_ours = count_macs(meta_model(resnext, name), AT_224)
    m_theirs = count_macs(meta_model(getattr(torchvision.models, name)), AT_224)
    assert m_ours == m_theirs and round(m_ours / 1e9, 1) == gmacs


@CUDA
def test_resnext50_matches_torchvision_cuda():
    torch.manual_seed(0)
    theirs = randomize_bn_stats(torchvision.models.resnext50_32x4d(weights=None)).eval().cuda().double()
    ours = resnext("resnext50_32x4d")
    ours.load_state_dict(from_torchvision(theirs.state_dict()))
    ours = ours.eval().cuda().double()
    x = torch.randn(2, 3, 64, 64, device="cuda", dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-8, rtol=0)


def test_resnext101_params_match_torchvision():
    assert n_params(meta_model(resnext, "resnext101_32x8d")) == n_params(
        meta_model(torchvision.models.resnext101_32x8d)) == 88_791_336


# ResNeXt Table 1 (page: paper_numbers): its parameter counts leave BN's γ and β out (25.50M and
# 24.96M round to 25.5 and 25.0; with BN ResNet-50 would be 25.6M), and its "FLOPs" are our
# multiply-adds at 224², for our models and torchvision's alike.
def test_table1_counts_leave_bn_out():
    for name, paper in RESNEXT_TABLE1.items():
        model = meta_model(resnext, name)
        n, n_bn = n_params(model), n_params(model, nn.BatchNorm2d)
        assert round((n - n_bn) / 1e6, 1) == paper["params_m"]
        assert round(count_macs(model, AT_224) / 1e9, 1) == paper["gflops"]
        theirs = meta_model(getattr(torchvision.models, name))
        assert round(count_macs(theirs, AT_224) / 1e9, 1) == paper["gflops"]
    assert round(n_params(meta_model(resnext, "resnet50")) / 1e6, 1) == 25.6


# Footnote 5: the blocks where the map halves (first block of conv3_x..conv5_x) account for more
# than the whole of ResNeXt-50's extra multiply-adds and of its smaller parameter count.
def test_footnote5_map_halving_blocks():
    a, b = (block_costs(meta_model(resnext, n)) for n in ("resnet50", "resnext50_32x4d"))
    assert a.keys() == b.keys() and len(a) == 16
    groups = {}
    for key in a:
        g = groups.setdefault(block_group(key), [0, 0])
        g[0] += b[key][0] - a[key][0]
        g[1] += b[key][1] - a[key][1]
    total = [sum(g[i] for g in groups.values()) for i in (0, 1)]
    whole = [count_macs(meta_model(resnext, n), AT_224) for n in ("resnet50", "resnext50_32x4d")]
    assert total[0] == whole[1] - whole[0]  # the stem and the fc layer are the same in both
    assert groups["map halves"][0] > total[0] > 0 and groups["map halves"][1] < total[1] < 0
    assert groups["other blocks"][0] > 0  # the twelve other blocks cost a little more


# ResNet-50 is 3.8 G multiply-adds in ResNet's Table 1 (stride on the first 1×1) and 4.1 G in
# ResNeXt's (stride on the 3×3, the layout torchvision uses); both layouts have the same weights.
def test_resnet50_flops_in_both_papers():
    v1, v15 = (meta_model(resnet, 50, stride_on=s) for s in ("1x1", "3x3"))
    assert abs(count_macs(v1, AT_224) / 1e9 / TABLE_1[50].gmacs - 1) < 0.02
    assert round(count_macs(v15, AT_224) / 1e9, 1) == RESNEXT_TABLE1["resnet50"]["gflops"]
    assert count_macs(v15, AT_224) == count_macs(meta_model(torchvision.models.resnet50), AT_224)
    assert n_params(v1) == n_params(v15)


# 10-crop testing: four corner crops and the centre crop, then the mirror image of each; the
# network's softmax outputs on the ten are averaged into one distribution.
def test_ten_crop():
    torch.manual_seed(0)
    image = torch.rand(3, 40, 40)
    model = resnext29(C=2, d=4).eval()
    probs = ten_crop_probs(model, image, 32)
    crops = [image[:, :32, :32], image[:, :32, 8:], image[:, 8:, :32], image[:, 8:, 8:],
             image[:, 4:36, 4:36]]
    crops += [c.flip(-1) for c in crops]
    with torch.no_grad():
        want = torch.stack([model(c[None]).softmax(dim=1)[0] for c in crops]).mean(dim=0)
    torch.testing.assert_close(probs, want, atol=1e-6, rtol=0)
    assert abs(probs.sum().item() - 1) < 1e-6


# Table 3 as the paper's text reads it: "a validation error of 22.2%, which is 1.7% lower than the
# ResNet baseline's 23.9%"; ResNeXt-101 "outperforms the ResNet-101 counterpart by 0.8%"; "with
# cardinality C increasing from 1 to 32 while keeping complexity, the error rate keeps reducing";
# the rows are Table 2's templates.
def test_table3_as_the_text_states():
    t50, t101 = RESNEXT_TABLE3_TOP1[50], RESNEXT_TABLE3_TOP1[101]
    assert (t50[32], t50[1]) == (22.2, 23.9) and round(t50[1] - t50[32], 1) == 1.7
    assert round(t101[1] - t101[32], 1) == 0.8
    for row in (t50, t101):
        assert list(row) == list(RESNEXT_TABLE2_WIDTH)
        errors = list(row.values())
        assert all(b < a for a, b in zip(errors, errors[1:]))


# The ResNeXt-50 bottleneck's F is the sum of 32 paths (form (a)) after `to_grouped`.
def test_bottleneck_is_aggregated_transformation():
    torch.manual_seed(0)
    block = Bottleneck(256, 64, groups=32, base_width=4).eval()
    paths = SplitTransformMerge(256, 32, 4, 256).eval()
    sd = {k.replace("bn.", "F.7.")[2:]: v for k, v in to_grouped(paths.state_dict(), 32).items()}
    block.F.load_state_dict(sd)
    x = torch.randn(2, 256, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(block.F(x), paths(x), atol=1e-5, rtol=0)


# Table 7: ResNeXt-29 8×64d rounds to 34.4M parameters, 16×64d to 68.1M when BN's γ, β are not
# counted (68.16M with them); the larger net has the lower CIFAR-10 error ("Our larger method
# achieves 3.58% test error"); a CIFAR-sized forward pass gives [B, 10] logits.
def test_resnext29():
    for (C, d), paper in RESNEXT_TABLE7_CIFAR.items():
        m = meta_model(resnext29, C, d)
        assert round((n_params(m) - n_params(m, nn.BatchNorm2d)) / 1e6, 1) == paper["params_m"]
        assert [s[0].F[3].groups for s in m.stages] == [C, C, C]
    m8, m16 = meta_model(resnext29, 8, 64), meta_model(resnext29, 16, 64)
    assert round(n_params(m8) / 1e6, 1) == 34.4 and round(n_params(m16) / 1e6, 2) == 68.16
    assert RESNEXT_TABLE7_CIFAR[16, 64]["cifar10"] == 3.58 < RESNEXT_TABLE7_CIFAR[8, 64]["cifar10"]
    small = resnext29(C=2, d=8).eval()
    with torch.no_grad():
        assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)


# ResNeXt-29's layout as the paper states it: a 3×3 stem with 64 filters (Appendix A); stride 2 on
# the 3×3 of the first block of each later stage; projection shortcuts only where the width grows,
# identity elsewhere (§4, type B).
def test_resnext29_layout():
    m = meta_model(resnext29, 8, 64)
    stem_convs = [c for c in m.stem.modules() if isinstance(c, nn.Conv2d)]
    assert [(c.kernel_size, c.out_channels) for c in stem_convs] == [((3, 3), 64)]
    assert [s[0].F[3].stride for s in m.stages] == [(1, 1), (2, 2), (2, 2)]
    assert all(b.F[0].stride == (1, 1) for s in m.stages for b in s)
    for stage in m.stages:
        assert not isinstance(stage[0].shortcut, nn.Identity)
        assert all(isinstance(b.shortcut, nn.Identity) for b in stage[1:])


def test_check_stage_weights():
    check_stage_weights(stage_weights)
    with pytest.raises(AssertionError, match="conv2_x: your count is too low"):  # no projection
        check_stage_weights(lambda C, d: {k: v - 64 * 256 if k == "conv2_x" else v
                                          for k, v in stage_weights(C, d).items()})
    with pytest.raises(AssertionError, match="is missing"):
        check_stage_weights(lambda C, d: {"conv2_x": stage_weights(C, d)["conv2_x"]})


def test_check_downsampling_block_macs():
    reference = downsampling_block_macs
    check_downsampling_block_macs(reference)
    # The 1×1 costed after the stride (ResNet's original layout): too low.
    with pytest.raises(AssertionError, match="too low"):
        check_downsampling_block_macs(lambda c_in, p, C, d, h: reference(c_in, p, C, d, h)
                                      - c_in * C * (d * p // 64) * (h * h - ((h + 1) // 2) ** 2))


# ---------------------------------------------------------------------------------------------
# The Add-broadcast pitfall (page: add_pitfall)


# PyTorch's exact error for 64 vs 128 channels; the two silent broadcast shapes; the guard's message.
def test_pitfall_facts():
    with pytest.raises(RuntimeError) as e:
        torch.zeros(2, 64, 8, 8) + torch.zeros(2, 128, 8, 8)
    assert str(e.value) == TORCH_MESSAGE == (
        "The size of tensor a (64) must match the size of tensor b (128) at non-singleton dimension 1")
    fx = torch.zeros(2, 64, 8, 8)
    assert (fx + torch.zeros(2, 1, 8, 8)).shape == (2, 64, 8, 8)
    assert (fx + torch.zeros(2, 64, 1, 1)).shape == (2, 64, 8, 8)
    for b in ((2, 128, 8, 8), (2, 1, 8, 8), (2, 64, 1, 1)):
        with pytest.raises(ValueError) as e:
            residual_add(fx, torch.zeros(b))
        assert str(e.value) == (f"residual add needs equal shapes, got F(x) (2, 64, 8, 8) and shortcut {b}; "
                                "project the shortcut (option B/C) or pad it (option A)")


# The Keras tutorial's stack: after the first (projecting) block every block's input already has
# 2*filters channels, so every add sees equal shapes; the stack builds blocks + 1 blocks. A block
# whose identity shortcut does get another width fails with torch.add and with residual_add.
def test_tutorial_stack_never_mismatches():
    stack = tutorial_stack(64, filters=128, blocks=2, stride=2, add=torch.add).eval()
    shapes = trace_adds(stack, torch.randn(1, 64, 8, 8))
    assert len(shapes) == 3 and all(f == s == (1, 256, 4, 4) for f, s in shapes)
    wrong = TutorialBlock(128, filters=32, groups=8, conv_shortcut=False, add=torch.add)
    with pytest.raises(RuntimeError, match=r"tensor a \(64\) must match the size of tensor b \(128\)"):
        wrong(torch.randn(2, 128, 4, 4))
    wrong.add = residual_add  # ours names both shapes
    with pytest.raises(ValueError, match=r"F\(x\) \(2, 64, 4, 4\) and shortcut \(2, 128, 4, 4\)"):
        wrong(torch.randn(2, 128, 4, 4))


# A [N, C, 1, 1] shortcut trains without error (loss goes down) with a plain add; the guard refuses it.
def test_silent_broadcast_trains_and_guard_refuses():
    torch.manual_seed(0)
    x, y = tiny_task()
    model = buggy_model(add=torch.add)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(20):
        idx = torch.randint(0, len(x), (32,))
        loss = nnf.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(), loss.backward(), opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) < sum(losses[:5])
    with pytest.raises(ValueError, match=r"\(64, 32, 8, 8\) and shortcut \(64, 32, 1, 1\)"):
        buggy_model(add=residual_add)(x[:64])


def test_check_add_shapes():
    reference = answers
    assert len(reference) == len(PAIRS)
    check_add_shapes(reference)
    with pytest.raises(AssertionError, match=r"pair 7: .* Hint: line the two shapes up"):
        check_add_shapes(reference[:7] + [None])
    with pytest.raises(AssertionError, match="one answer per pair"):
        check_add_shapes(reference[:7])


# ---------------------------------------------------------------------------------------------
# Bad input: a clear error naming the numbers involved.


def test_bad_input():
    with pytest.raises(ValueError, match=r"width 100 cannot be split into C=32 equal groups \(100 = 32·3 \+ 4\)"):
        Template.from_width(100, 32)
    with pytest.raises(ValueError, match=r"8x2d does not fit a stage of width 16: .* 2·16/64 = 0.5"):
        Template(8, 2).group_widths((16, 32, 64))
    with pytest.raises(ValueError, match="cardinality C must be a positive integer, got 0"):
        Template(0, 4)
    with pytest.raises(ValueError, match="width per group d must be a positive integer, got 2.5"):
        Template(8, 2.5)
    with pytest.raises(ValueError, match="C=0, d=4"):
        SplitTransformMerge(64, 0, 4, 64)
    with pytest.raises(ValueError, match="unknown variant 'resnext50'; choose one of"):
        resnext("resnext50")
    with pytest.raises(ValueError, match=r"\(1, 64, 4, 4\) and shortcut \(1, 128, 4, 4\)"):
        residual_add(torch.zeros(1, 64, 4, 4), torch.zeros(1, 128, 4, 4))
    # Templates used on the pages fit their stages.
    assert Template(32, 4).group_widths(IMAGENET_WIDTHS) == [4, 8, 16, 32]
    assert Template(8, 64).group_widths(CIFAR_WIDTHS) == [64, 128, 256]
