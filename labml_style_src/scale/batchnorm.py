# %% [markdown]
# # BatchNorm in train and eval mode
#
# A BatchNorm layer behaves in two ways. In training mode it normalises with the mean and
# variance of the current batch, and keeps running averages of them; in eval mode it normalises
# with those running averages. Many surprises of large-scale training (a model that works in
# training and fails in evaluation, two GPUs that do not match one) come from mixing the two.
# Every statement below is measured on `torch.nn.BatchNorm2d` itself.

# %%
import torch
import torch.distributed as dist
from torch import nn

from labml_style_src.scale.imagenet import (
    TINY_IMAGENET,
    TO_FLOAT,
    imagenet_splits,
    scale_crop_flip,
    small_resnet,
    write_imagenet_folder,
)

BN_TYPES = nn.modules.batchnorm._BatchNorm  # BatchNorm1d/2d/3d and SyncBatchNorm


# %% [markdown]
# ## Training mode: the statistics of the batch
#
# For a batch `x` of shape `[B, C, H, W]`, BN computes one mean $\mu_c$ and one variance
# $\sigma_c^2$ per channel over the $n = B \cdot H \cdot W$ values of that channel, and outputs
# $\gamma_c (x - \mu_c) / \sqrt{\sigma_c^2 + \epsilon} + \beta_c$. It normalises with the
# *biased* variance (divided by $n$) but stores the *unbiased* one (divided by $n - 1$) in its
# running average:
#
# $$r \leftarrow (1 - m)\, r + m \cdot \text{batch statistic}, \qquad m = 0.1 .$$
#
# PyTorch's `momentum` is the weight of the *new* value. Keras and TensorFlow call the weight of
# the *old* value momentum (0.99 by default), and so do Goyal et al. ("running average (with
# momentum 0.9)", §5.1): their 0.9 is PyTorch's 0.1
# ([test](../tests/test_scale.md#test_bn_train_mode_statistics)).

# %%
def batch_stats(x: torch.Tensor):
    # `[B, C, H, W]` -> per-channel mean, biased and unbiased variance, each `[C]`.
    n = x.numel() // x.shape[1]
    mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False)
    return mean, var, var * n / (n - 1)


def per_channel(v: torch.Tensor) -> torch.Tensor:
    return v[None, :, None, None]  # `[C]` -> `[1, C, 1, 1]`, to broadcast


# %%
if __name__ == "__main__":
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2), bn.bias.uniform_(-1, 1)  # any γ, β
    x = 3 + 2 * torch.randn(8, 3, 5, 5)
    mean, biased, unbiased = batch_stats(x)
    by_hand = (x - per_channel(mean)) / torch.sqrt(per_channel(biased) + bn.eps)
    by_hand = per_channel(bn.weight) * by_hand + per_channel(bn.bias)
    assert torch.allclose(bn(x), by_hand, atol=1e-5)
    assert torch.allclose(bn.running_mean, 0.9 * 0 + 0.1 * mean)
    assert torch.allclose(bn.running_var, 0.9 * 1 + 0.1 * unbiased)
    print("batch mean", mean.numpy().round(3),
          "-> running mean", bn.running_mean.numpy().round(3))
    # The same batch k times: the running mean becomes (1 - 0.9^k) × the batch mean.
    for _ in range(49):  # 49 more updates: 50 in all
        bn(x)
    share = (bn.running_mean / mean).mean().item()
    print(f"after 50 updates the running mean holds {share:.4f} of the batch mean "
          f"(1 - 0.9^50 = {1 - 0.9 ** 50:.4f})")
    assert abs(share - (1 - 0.9 ** 50)) < 1e-4

# %% [markdown]
# ## Eval mode: the running averages
#
# In eval mode each image is normalised with fixed numbers, so its output does not depend on the
# other images in the batch. In training mode it does
# ([test](../tests/test_scale.md#test_bn_output_depends_on_the_batch_only_in_train_mode)).
# Three classic mistakes follow from this:
#
# - **Forgetting `model.eval()`** before testing: predictions change with the batch they come
#   in, and the running averages are updated with *test* data.
# - **Thinking `torch.no_grad()` is eval mode.** It only turns off gradients; a BN layer in
#   training mode still normalises with batch statistics and updates its buffers.
# - **A batch of one** in training mode: when each channel has a single value its variance is
#   not defined, and PyTorch refuses it with a `ValueError`.

# %%
if __name__ == "__main__":
    first, mates_a, mates_b = torch.randn(1, 3, 5, 5), *torch.randn(2, 7, 3, 5, 5)
    for mode in ("train", "eval"):
        getattr(bn, mode)()
        with torch.no_grad():
            a = bn(torch.cat([first, mates_a]))[0]
            b = bn(torch.cat([first, mates_b]))[0]
        change = (a - b).abs().max()
        print(f"{mode:5s} mode: same image, other batch mates: max change {change:.3f}")
    bn.train()
    before = bn.running_mean.clone()
    with torch.no_grad():
        bn(torch.randn(8, 3, 5, 5) + 10)  # "evaluation" without model.eval()
    print("no_grad() in train mode moved the running mean by",
          (bn.running_mean - before).numpy().round(3))
    assert not torch.equal(before, bn.running_mean)
    try:
        bn(torch.randn(1, 3, 1, 1))
    except ValueError as e:
        print("ValueError:", e)

# %% [markdown]
# ## Small batches make noisy statistics
#
# The batch mean is an estimate of the mean of all the data, and its error shrinks like
# $1/\sqrt{n}$. Below, the images are the generated ImageNet-format JPEGs of the
# [ImageNet page](imagenet.md), the channels those of a ResNet's first convolution, and the
# numbers the spread (standard deviation over many batches) of the per-channel batch mean, in
# units of the channel's standard deviation, for several batch sizes.
#
# This is why the per-device batch matters under data parallelism: with 8 GPUs and 32 images
# each, every BN layer in training mode normalises with statistics of 32 images, not 256.
# Goyal et al. keep it that way on purpose: they fix the per-worker BN batch at $n = 32$
# (§2.3, §5.1), and
#
# > "We also note that the BN statistics should not be computed across all workers, not only for
# > the sake of reducing communication, but also for maintaining the same underlying loss
# > function being optimized." — Goyal et al. 2017, §2.3

# %%
if __name__ == "__main__":
    train_set, _ = imagenet_splits(write_imagenet_folder("data/patterns-imagenet"))
    augment = scale_crop_flip(TINY_IMAGENET)
    images = torch.stack([TO_FLOAT(augment(train_set[i][0])) for i in range(256)])
    torch.manual_seed(0)
    with torch.no_grad():
        features = small_resnet(4).stem.conv(images)  # [256, 16, 28, 28]
    _, std = features.mean((0, 2, 3)), features.std((0, 2, 3))
    spread = {}
    for n in (2, 8, 32, 128):
        means = torch.stack([features[torch.randperm(256)[:n]].mean((0, 2, 3))
                             for _ in range(200)])  # 200 batches of n images
        spread[n] = (means.std(0) / std).mean().item()
        print(f"batch of {n:3d} images: batch means spread by {spread[n]:.3f} σ")
    assert spread[2] > spread[8] > spread[32] > spread[128]

# %% [markdown]
# ## Re-estimating the statistics ("precise BN")
#
# The running averages mix statistics computed with older weights: after a large learning rate
# or a change of weights they describe a network that no longer exists. The remedy is to
# recompute them with the final weights: reset them, set `momentum=None` (PyTorch then keeps a
# plain cumulative average) and run a number of training batches through the model in training
# mode, without gradients. Goyal et al. observe that their validation curves match the baseline
# earlier when BN statistics are recomputed this way before evaluation instead of using the
# running average (§5.2). Below, the weights change after the statistics were gathered; only
# precise BN makes eval-mode BN output standardised again
# ([test](../tests/test_scale.md#test_precise_bn_averages_the_batch_statistics)).

# %%
@torch.no_grad()
def precise_bn_(model: nn.Module, batches) -> int:
    # Every BN's running mean/var := the average over `batches` of its batch statistics.
    bns = [m for m in model.modules() if isinstance(m, BN_TYPES)]
    momenta, was_training = [bn.momentum for bn in bns], model.training
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average instead of the exponential one
    model.train()
    n = 0
    for x in batches:
        model(x)
        n += 1
    for bn, momentum in zip(bns, momenta):
        bn.momentum = momentum
    model.train(was_training)
    return n


# %%
if __name__ == "__main__":
    torch.manual_seed(0)
    layer = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    batches = images.split(32)
    with torch.no_grad():
        for x in batches:
            layer(x)  # running averages for these weights
        layer[0].weight.mul_(3).add_(0.05)  # the weights move on
    layer.eval()
    with torch.no_grad():
        stale = layer(images)
        precise_bn_(layer, batches)
        precise = layer(images)
    for label, y in (("stale running averages", stale), ("after precise BN", precise)):
        print(f"{label:22s}: eval output mean {y.mean():+.3f}, std {y.std():.3f}")
    assert abs(precise.mean()) < 0.05 and abs(precise.std() - 1) < 0.05

# %% [markdown]
# ## SyncBatchNorm
#
# `nn.SyncBatchNorm` computes the statistics of the *global* batch: each process contributes
# the per-channel sums and counts of its part, all processes exchange them, and every process
# normalises with the same mean and variance. `combine_stats` does that combination for parts
# held in one process; it gives exactly the statistics of the concatenated batch, while BN on
# each part separately (what DDP does with plain BN) normalises differently
# ([test](../tests/test_scale.md#test_combined_stats_equal_the_stats_of_the_whole_batch)).
#
# `nn.SyncBatchNorm.convert_sync_batchnorm(model)` swaps every BN layer of a model. It is for
# GPUs: in PyTorch 2.14, training mode with a process group refuses a CPU tensor with a
# `ValueError`, and without a process group it is plain BN. Where it pays is where per-device
# batches are tiny (detection and segmentation with one or two images per GPU). For 32 images
# per device, Goyal et al. chose per-device statistics on purpose (quoted above)
# ([test](../tests/test_scale.md#test_syncbn_on_cpu_is_plain_bn_without_a_group_and_refused_with_one)).

# %%
def combine_stats(parts):
    # Parts `(count, mean [C], biased var [C])` -> the global mean and biased variance.
    count = sum(n for n, _, _ in parts)
    mean = sum(n * m for n, m, _ in parts) / count
    # E[x²] of the whole = count-weighted E[x²] of the parts; var = E[x²] - mean².
    square = sum(n * (v + m ** 2) for n, m, v in parts) / count
    return mean, square - mean ** 2


# %%
if __name__ == "__main__":
    whole = features[:64]
    parts = [(f.numel() // f.shape[1], *batch_stats(f)[:2])
             for f in whole.split([40, 24])]
    mean, var = combine_stats(parts)
    assert torch.allclose(mean, batch_stats(whole)[0], atol=1e-4)
    assert torch.allclose(var, batch_stats(whole)[1], rtol=1e-4)
    plain = nn.BatchNorm2d(16)
    split_output = torch.cat([plain(part) for part in whole.split(32)])
    print("BN per part vs BN on the whole batch: max difference",
          f"{(split_output - plain(whole)).abs().max().item():.3f}")
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(small_resnet(4))
    print("SyncBatchNorm layers after conversion:",
          sum(isinstance(m, nn.SyncBatchNorm) for m in sync.modules()))
    # Without a process group SyncBatchNorm is plain BN; with one, it wants a GPU.
    assert torch.equal(nn.SyncBatchNorm(16)(whole), nn.BatchNorm2d(16)(whole))
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        nn.SyncBatchNorm(16)(whole)
    except ValueError as e:
        print("on CPU with a process group -> ValueError:", e)
    finally:
        dist.destroy_process_group()

# %% [markdown]
# ## Exercises
#
# 1. **Running statistics (auto-checked).** Write `my_update(running_mean, running_var, x,
#    momentum)` that returns the new running mean and variance after one training-mode forward
#    of a batch `x` `[B, C, H, W]`, as `nn.BatchNorm2d` does, and run
#    `check_running_stats(my_update)`.
# 2. **Momentum (auto-checked).** With PyTorch's default momentum, how many updates with the same
#    batch does the running mean need to reach 99 % of that batch's mean (from 0)? Set
#    `updates_to_99` to your answer and run `check_updates_to_99(updates_to_99)`.
# 3. Evaluate a trained model in training mode with batch size 1 and with batch size 256. Which
#    one fails, and why does the other give worse results than eval mode?
# 4. Under DDP with 8 processes of 32 images, over how many images does SyncBatchNorm compute its
#    statistics? What would that change in the loss that Goyal et al. want to keep fixed?

# %%
def check_running_stats(my_update) -> None:
    torch.manual_seed(1)
    x = 1 + 2 * torch.randn(4, 3, 2, 2)
    bn = nn.BatchNorm2d(3, momentum=0.3)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    got = my_update(bn.running_mean.clone(), bn.running_var.clone(), x, 0.3)
    bn(x)
    wanted = (bn.running_mean, bn.running_var)
    for name, mine, want in zip(("mean", "var"), got, wanted):
        if not torch.allclose(torch.as_tensor(mine), want, atol=1e-5):
            raise AssertionError(
                f"your running {name} differs from nn.BatchNorm2d's; which variance "
                "does BN keep, and which value gets the momentum?")
    print("correct: your update matches nn.BatchNorm2d")


def check_updates_to_99(answer: int) -> None:
    k = next(k for k in range(1, 1000) if 1 - 0.9 ** k >= 0.99)
    if answer != k:
        verdict = "too many" if answer > k else "too few"
        raise AssertionError(f"{answer} updates is {verdict}: after k updates the "
                             "starting value still weighs 0.9^k")
    print(f"correct: {k} updates")
