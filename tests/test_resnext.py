"""Fidelity tests for the ResNeXt chapter (Xie et al. 2017, arXiv:1611.05431).

Each test names the paper claim or page statement it proves. Numbers that come from torchvision are
computed from torchvision's own models here, not only written down.
"""

import pytest
import torch
import torchvision
from torch import nn
from torch.nn import functional as nnf

from labml_style_src.resnet_v1.bottleneck import Bottleneck, count_macs
from labml_style_src.resnet_v1.residual_block import n_params, residual_add
from labml_style_src.resnet_v1.resnet import from_torchvision
from labml_style_src.resnext.add_pitfall import (
    PAIRS, TORCH_MESSAGE, SeedBlock, buggy_model, check_add_shapes, seed_stack, tiny_task, trace_adds)
from labml_style_src.resnext.aggregated import (
    TABLE_2, AggregatedBlock, SplitTransformMerge, block_cost, check_bottleneck_width)
from labml_style_src.resnext.resnext_nets import (
    CIFAR_WIDTHS, IMAGENET_WIDTHS, Template, check_resnext29_widths, meta_model,
    randomize_bn_stats, resnext, resnext29)
from labml_style_src.resnext.three_forms import (
    EarlyConcat, GroupedConv, check_group_slice, to_early_concat, to_grouped)

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


# ---------------------------------------------------------------------------------------------
# Aggregated transformations (page: aggregated)


# Table 2: all five (C, d) rows cost about 70k weights and 0.22 G multiply-adds at 56×56, and
# eq. (4) is exactly what the module has and does.
def test_table2_costs():
    x = torch.randn(1, 256, 14, 14)  # measured on 14×14 to stay fast; MACs scale with h·w
    for C, d in TABLE_2.items():
        block = AggregatedBlock(256, C, d).eval()
        params, macs = block_cost(256, C, d)
        assert n_params(block, nn.Conv2d) == params == C * (256 * d + 9 * d * d + d * 256)
        assert count_macs(block, x.shape) == block_cost(256, C, d, hw=14)[1] == macs // 16
        assert 68_000 < params < 72_000 and round(macs / 1e9, 2) == 0.22
    # C = 1, d = 64 is exactly ResNet-50's conv2 bottleneck.
    assert block_cost(256, 1, 64)[0] == n_params(Bottleneck(256, 64), nn.Conv2d)


# Template rule: halving the map and doubling the widths keeps a block's MACs constant.
def test_template_rule_keeps_cost():
    macs = {block_cost(256 * 2 ** s, 32, 4 * 2 ** s, 56 // 2 ** s)[1] for s in range(4)}
    assert len(macs) == 1


def test_check_bottleneck_width():
    # Reference: round the positive root of C·(2cd + 9d²) = 2c·(c/4) + 9(c/4)².
    def reference(c, C):
        target = 2 * c * (c // 4) + 9 * (c // 4) ** 2
        return round((-2 * c + (4 * c * c + 36 * target / C) ** 0.5) / 18)

    check_bottleneck_width(reference)
    with pytest.raises(AssertionError, match="the paper uses"):
        check_bottleneck_width(lambda c, C: c // (4 * C))


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
# float32 tolerance of the issue (1e-5; gradients relative to their largest entry), at stride 1 and 2.
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


def test_check_group_slice():
    check_group_slice(lambda C, d, i: slice(i * d, (i + 1) * d))
    with pytest.raises(AssertionError, match="does not select"):
        check_group_slice(lambda C, d, i: slice(i, i + d))


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
    m_ours = count_macs(meta_model(resnext, name), (1, 3, 224, 224))
    m_theirs = count_macs(meta_model(getattr(torchvision.models, name)), (1, 3, 224, 224))
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


# ResNeXt Table 1: ResNet-50 4.1 vs ResNeXt-50 4.2 billion multiply-adds at 224².
def test_table1_macs():
    assert round(count_macs(meta_model(resnext, "resnet50"), (1, 3, 224, 224)) / 1e9, 1) == 4.1
    assert round(count_macs(meta_model(torchvision.models.resnet50), (1, 3, 224, 224)) / 1e9, 1) == 4.1


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
# counted (68.16M with them); a CIFAR-sized forward pass gives [B, 10] logits.
def test_resnext29():
    m8, m16 = meta_model(resnext29, 8, 64), meta_model(resnext29, 16, 64)
    assert round(n_params(m8) / 1e6, 1) == round((n_params(m8) - n_params(m8, nn.BatchNorm2d)) / 1e6, 1) == 34.4
    assert round((n_params(m16) - n_params(m16, nn.BatchNorm2d)) / 1e6, 1) == 68.1
    assert round(n_params(m16) / 1e6, 2) == 68.16
    assert [s[0].F[3].groups for s in m8.stages] == [8, 8, 8]
    small = resnext29(C=2, d=8).eval()
    with torch.no_grad():
        assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_check_resnext29_widths():
    check_resnext29_widths({"conv2_x": (512, 256), "conv3_x": (1024, 512), "conv4_x": (2048, 1024)})
    with pytest.raises(AssertionError, match="conv3_x"):
        check_resnext29_widths({"conv2_x": (512, 256), "conv3_x": (512, 512), "conv4_x": (2048, 1024)})


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


# The seed's stack: after the first (projecting) block every block's input already has 2*filters
# channels, so every add sees equal shapes; the stack builds blocks + 1 blocks.
def test_seed_stack_never_mismatches():
    stack = seed_stack(64, filters=128, blocks=2, stride=2, add=torch.add).eval()
    shapes = trace_adds(stack, torch.randn(1, 64, 8, 8))
    assert len(shapes) == 3 and all(f == s == (1, 256, 4, 4) for f, s in shapes)
    wrong = SeedBlock(128, filters=32, groups=8, conv_shortcut=False, add=torch.add)
    with pytest.raises(RuntimeError, match=r"tensor a \(64\) must match the size of tensor b \(128\)"):
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
    reference = [None, (2, 64, 8, 8), (2, 64, 8, 8), None, (2, 64, 8, 8), (2, 64, 8, 8), None, (2, 8, 8, 8)]
    assert len(reference) == len(PAIRS)
    check_add_shapes(reference)
    with pytest.raises(AssertionError, match="pair 7"):
        check_add_shapes(reference[:7] + [None])


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
