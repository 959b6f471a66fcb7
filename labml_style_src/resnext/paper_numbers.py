# %% [markdown]
# # Reading the paper's numbers: Table 1 and Table 3
#
# The ResNeXt paper sets ResNeXt-50 (32×4d) beside ResNet-50 twice: Table 1 gives their cost,
# Table 3 their ImageNet error. Three things are worth knowing before you compare these figures with
# any other, including the ResNet paper's: which parameters are counted, which ResNet-50 is meant
# (the ResNet paper gives it 3.8 billion FLOPs, this one 4.1), and how the error was measured (one
# crop or ten). This page checks each against the networks of the [previous page](resnext_nets.md).
# All counting runs on the `meta` device, so it is instant.

# %%
import torch
from torch import nn
from torchvision.transforms.v2 import functional as tvf

from labml_style_src.device import DEVICE
from labml_style_src.paper_tables import RESNEXT_TABLE1, RESNEXT_TABLE3_TOP1
from labml_style_src.resnet_v1.bottleneck import Bottleneck, count_macs
from labml_style_src.resnet_v1.residual_block import n_params
from labml_style_src.resnet_v1.resnet import TABLE_1, ResNet, resnet
from labml_style_src.resnext.resnext_nets import meta_model, resnext, resnext29

# %% [markdown]
# ## What Table 1 counts
#
# Table 1 gives 25.5M parameters and 4.1 billion FLOPs for ResNet-50, 25.0M and 4.2 for ResNeXt-50;
# its "FLOPs" are multiply-adds, as §3.1 defines them. Our count of ResNet-50 is 25.6M. The cell
# counts both networks with and without BN's scale and shift ($\gamma$, $\beta$).

# %%
if __name__ == "__main__":
    for name, paper in RESNEXT_TABLE1.items():
        model = meta_model(resnext, name)
        n, n_bn = n_params(model), n_params(model, nn.BatchNorm2d)
        macs = count_macs(model, (1, 3, 224, 224))
        print(f"{name:16s} all {n / 1e6:6.2f}M | without BN {(n - n_bn) / 1e6:6.2f}M | "
              f"{macs / 1e9:.2f} GMACs | "
              f"paper {paper['params_m']}M, {paper['gflops']} G")
        # Without BN's γ and β, both counts round to the paper's; so do the multiply-adds.
        assert round((n - n_bn) / 1e6, 1) == paper["params_m"]
        assert round(macs / 1e9, 1) == paper["gflops"]
    # With BN, ResNet-50 would read 25.6M: the table leaves BN out.
    assert round(n_params(meta_model(resnext, "resnet50")) / 1e6, 1) == 25.6

# %% [markdown]
# So the table counts convolution and fully connected weights only: 25.50M and 24.96M
# ([test](../tests/test_resnext.md#test_table1_counts_leave_bn_out)). Eq. (4) leaves BN out the same way, and so does
# Table 7 for ResNeXt-29 ([previous page](resnext_nets.md)). The difference is not rounding:
# 25,557,032 parameters, BN included, would round to 25.6M.
#
# ## Where ResNeXt-50 costs more, and where less
#
# Table 2's equal-cost rule holds for a block that keeps its map size. The paper says where the
# two networks part:
#
# > "The marginally smaller number of parameters and marginally higher FLOPs are mainly caused by the
# > blocks where the map sizes change." — Xie et al. 2017, §3.4, footnote 5
#
# We check it block by block: every block gets its real input and we count its multiply-adds and
# convolution weights in both networks, then group the differences (ResNeXt-50 minus ResNet-50).

# %%
def block_costs(model: ResNet, size: int = 224) -> dict:
    # {"conv3_x.0": (MACs, conv weights), ...} with each block fed its real input shape.
    costs, h = {}, torch.empty(1, 3, size, size, device="meta")
    with torch.no_grad():
        h = model.stem(h)
        for name, stage in model.stages.named_children():
            for i, block in enumerate(stage):
                costs[f"{name}.{i}"] = (count_macs(block, tuple(h.shape)),
                                        n_params(block, nn.Conv2d))
                h = block(h)
    return costs


def block_group(key: str) -> str:
    # The first block of conv3_x..conv5_x is where the map halves.
    if key == "conv2_x.0":
        return "conv2_x.0 (64 -> 256 ch)"
    return "map halves" if key.endswith(".0") else "other blocks"


if __name__ == "__main__":
    ours = {n: block_costs(meta_model(resnext, n))
            for n in ("resnet50", "resnext50_32x4d")}
    diff = {}
    for key, (macs, weights) in ours["resnext50_32x4d"].items():
        base_macs, base_weights = ours["resnet50"][key]
        d_macs, d_weights = diff.get(block_group(key), (0, 0))
        diff[block_group(key)] = (d_macs + macs - base_macs,
                                  d_weights + weights - base_weights)
    for group, (d_macs, d_weights) in diff.items():
        print(f"{group:25s} {d_macs / 1e6:+8.1f} M MACs {d_weights:+10,} weights")
    total_macs, total_weights = (sum(v[i] for v in diff.values()) for i in (0, 1))
    print(f"{'total':25s} {total_macs / 1e6:+8.1f} M MACs {total_weights:+10,} weights")
    # The blocks where the map halves account for more than the whole difference, both ways.
    assert diff["map halves"][0] > total_macs > 0
    assert diff["map halves"][1] < total_weights < 0

# %% [markdown]
# The footnote holds ([test](../tests/test_resnext.md#test_footnote5_map_halving_blocks)). In the twelve blocks that
# keep their map, ResNeXt-50 costs a little *more* than ResNet-50 (its
# blocks have 70,144 weights in `conv2` against 69,632, Table 2's rows). The three blocks where the
# map halves explain the rest. Their first 1×1 reads the previous stage's output — half as many
# channels as a later block reads — so widening it adds fewer weights than the grouped 3×3 saves:
# fewer parameters. But it runs *before* the stride, on a map with four times the positions of the
# rest of the block, and ResNeXt-50's is twice as wide (256 channels out in `conv3_x`, against 128):
# more multiply-adds.
#
# ## Two ResNet-50s: 3.8 or 4.1 billion FLOPs
#
# The ResNet paper's Table 1 gives ResNet-50 3.8 billion FLOPs; this paper's gives 4.1. Both are right,
# for different networks. The ResNet paper puts the stride of each downsampling block on its first
# 1×1. The ResNeXt paper, following the `fb.resnet.torch` implementation, puts it on the 3×3 (§4,
# quoted on the [previous page](resnext_nets.md)), so the first 1×1 works at the full input resolution.
# Same weights, more work ([test](../tests/test_resnext.md#test_resnet50_flops_in_both_papers)). torchvision's
# `resnet50` is the second network (see
# [ResNet v1 against torchvision](../resnet_v1/against_torchvision.md)).

# %%
if __name__ == "__main__":
    layouts = {s: meta_model(resnet, 50, stride_on=s) for s in ("1x1", "3x3")}
    gmacs = {s: count_macs(m, (1, 3, 224, 224)) / 1e9 for s, m in layouts.items()}
    print(f"stride on the 1×1: {gmacs['1x1']:.2f} G "
          f"(ResNet paper, Table 1: {TABLE_1[50].gmacs})")
    print(f"stride on the 3×3: {gmacs['3x3']:.2f} G (ResNeXt paper, Table 1: "
          f"{RESNEXT_TABLE1['resnet50']['gflops']})")
    # The ResNet paper rounds loosely (its resnet page checks every depth within 2 %).
    assert abs(gmacs["1x1"] / TABLE_1[50].gmacs - 1) < 0.02
    assert round(gmacs["3x3"], 1) == RESNEXT_TABLE1["resnet50"]["gflops"]
    assert n_params(layouts["1x1"]) == n_params(layouts["3x3"])

# %% [markdown]
# ## Two ways to measure error: one crop or ten
#
# Table 3's errors are single-crop:
#
# > "The error rate is evaluated on the single crop of 224×224 pixels." — Xie et al. 2017, Table 3
#
# (§4 adds that the crop is the centre of the image resized to a shorter side of 256.) The ResNet
# paper's Table 3 is headed "Error rates (%, 10-crop testing) on ImageNet validation": its §3.4 adopts
# "the standard 10-crop testing" of AlexNet:
#
# > "At test time, the network makes a prediction by extracting five 224 × 224 patches (the four
# > corner patches and the center patch) as well as their horizontal reflections (hence ten patches
# > in all), and averaging the predictions made by the network's softmax layer on the ten patches."
# > — Krizhevsky et al. 2012, §4.1
#
# One network run ten times on ten views, against one run on the centre view: two different tests.
# The ResNeXt paper also re-trained its ResNet-50 baseline with its own recipe. So compare errors
# within one table — 23.9 % against 22.2 % here — and never a row of one paper's Table 3 with a row of
# the other's. The cell writes 10-crop testing out with torchvision's `ten_crop` on a CIFAR-sized
# image (40×40, crops of 32) and a small ResNeXt-29; the [test](../tests/test_resnext.md#test_ten_crop) checks it against
# ten crops cut by hand.

# %%
def ten_crop_probs(model: nn.Module, image: torch.Tensor, size: int) -> torch.Tensor:
    # image [3, H, W] -> class probabilities [K], averaged over 4 corners + centre and mirrors.
    crops = torch.stack(tvf.ten_crop(image, [size, size]))  # [10, 3, size, size]
    with torch.no_grad():
        return model(crops).softmax(dim=1).mean(dim=0)


if __name__ == "__main__":
    torch.manual_seed(0)
    image = torch.rand(3, 40, 40, device=DEVICE)
    crops = tvf.ten_crop(image, [32, 32])
    # The first five: corners (top-left, top-right, bottom-left, bottom-right), then the centre.
    corners = [image[:, :32, :32], image[:, :32, 8:],
               image[:, 8:, :32], image[:, 8:, 8:]]
    assert all(torch.equal(c, w) for c, w in zip(crops[:4], corners))
    assert torch.equal(crops[4], tvf.center_crop(image, [32, 32]))
    # The last five: each is the mirror image of one of the first five.
    assert all(any(torch.equal(m.flip(-1), c) for c in crops[:5]) for m in crops[5:])
    # An untrained network: the probabilities mean nothing, the mechanics are the point.
    model = resnext29(C=2, d=8).to(DEVICE).eval()
    probs = ten_crop_probs(model, image, 32)
    print(f"{len(crops)} crops of {tuple(crops[0].shape)} -> one averaged distribution "
          f"over {len(probs)} classes, summing to {probs.sum().item():.3f}")
    assert probs.shape == (10,) and abs(probs.sum().item() - 1) < 1e-5

# %% [markdown]
# What Table 3 shows, read within itself: at nearly the same cost, the error falls with every step up
# in cardinality, at 50 and at 101 layers ([test](../tests/test_resnext.md#test_table3_as_the_text_states) checks the
# values against the paper's own text).

# %%
if __name__ == "__main__":
    for depth, row in RESNEXT_TABLE3_TOP1.items():
        print(f"{depth} layers, C = {list(row)}: top-1 error {list(row.values())} %")
        errors = list(row.values())
        assert all(b < a for a, b in zip(errors, errors[1:]))

# %% [markdown]
# ## Exercises
#
# 1. **Where the extra FLOPs come from (auto-checked).** Write
#    `downsampling_block_macs(c_in, width, C, d, h)`: the multiply-adds of a
#    `Bottleneck(c_in, width, 2, groups=C, base_width=d)` (stride 2 on its 3×3, a projection
#    shortcut) on an $h \times h$ input with `c_in` channels. Run `check_downsampling_block_macs(downsampling_block_macs)`. Then
#    use your formula to split the difference of ResNeXt-50's map-halving blocks into their four
#    convolutions.
# 2. Build ResNet-101 and ResNeXt-101 (32×4d) with `resnet(101, groups=..., base_width=...)`
#    on the `meta` device and count them as in the first cell. Table 3's caption puts both near 7.8
#    billion FLOPs. Does the pattern of this page repeat?
# 3. Would ResNeXt-50 still cost more multiply-adds than ResNet-50 with the stride on the first 1×1?
#    Predict it from the section above, then count both with `stride_on="1x1"`.
# 4. 10-crop testing runs the network ten times per image. What does it cost, in multiply-adds, to
#    evaluate ResNeXt-50 on ImageNet's 50,000 validation images with one crop and with ten? For one
#    trained network, which of its two error rates would you expect to be lower, and why?

# %%
def check_downsampling_block_macs(formula) -> None:
    # Your formula against blocks measured on the meta device (ResNet-50's and ResNeXt-50's shapes).
    cases = ((256, 128, 1, 64, 56), (256, 128, 32, 4, 56), (512, 256, 32, 4, 28),
             (1024, 512, 8, 14, 14), (64, 32, 4, 32, 9))  # (c_in, width, C, d, h)
    for c_in, width, C, d, h in cases:
        block = meta_model(Bottleneck, c_in, width, 2, groups=C, base_width=d)
        truth, got = count_macs(block, (1, c_in, h, h)), formula(c_in, width, C, d, h)
        if got != truth:
            raise AssertionError(
                f"c_in={c_in}, width={width}, C={C}, d={d}, h={h}: your count is "
                f"{'too high' if got > truth else 'too low'}. Which of the four "
                f"convolutions run before the stride and which after? How many "
                f"channels does each group of the 3×3 see? (For odd h the map after "
                f"the stride is (h + 1) // 2.)")
    print("correct: you can cost a downsampling block by hand")
