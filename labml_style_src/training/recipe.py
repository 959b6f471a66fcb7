# %% [markdown]
# # The paper's CIFAR-10 recipe
#
# Everything §4.2 of the paper fixes about training the CIFAR ResNets: which images, the optimiser, the
# learning-rate schedule, ResNet-110's warm-up, the input normalisation and the augmentation. The [next
# page](loop.md) is the training loop that runs it; what the recipe gave in the paper, Table 6's test
# errors, is printed on the [CIFAR ResNets page](../resnet_v1/cifar.md#parameters-table-6).
#
# > "We conducted more studies on the CIFAR-10 dataset [20], which consists of 50k training images and 10k
# > testing images in 10 classes. We present experiments trained on the training set and evaluated on the
# > test set." — He et al. 2015, §4.2
#
# > "We use a weight decay of 0.0001 and momentum of 0.9, and adopt the weight initialization in [13] and
# > BN [16] but with no dropout. These models are trained with a mini-batch size of 128 on two GPUs. We
# > start with a learning rate of 0.1, divide it by 10 at 32k and 48k iterations, and terminate training
# > at 64k iterations, which is determined on a 45k/5k train/val split. We follow the simple data
# > augmentation in [24] for training: 4 pixels are padded on each side, and a 32×32 crop is randomly
# > sampled from the padded image or its horizontal flip. For testing, we only evaluate the single view of
# > the original 32×32 image." — He et al. 2015, §4.2
#
# The same section says the inputs are 32×32 images with the per-pixel mean subtracted, and that
# ResNet-110 needs a gentler start:
#
# > "In this case, we find that the initial learning rate of 0.1 is slightly too large to start
# > converging. So we use 0.01 to warm up the training until the training error is below 80% (about 400
# > iterations), and then go back to 0.1 and continue training." — He et al. 2015, §4.2

# %%
import copy
import math
from dataclasses import dataclass, replace
from itertools import islice

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision.transforms import v2

from labml_style_src.training.data import digits_as_cifar, load_cifar10

# %% [markdown]
# ## The recipe as data
#
# One frozen dataclass holds every number, so a run is one value that can be printed, compared and stored
# in its checkpoint. The schedule counts **iterations** (minibatches), as the paper does. The warm-up is a
# constant 0.01 for 400 iterations (the paper's "about 400"; it switched back when the training error fell
# below 80 %). `n_val` picks the images, and `cifar_batches` below builds either
# ([test](../tests/test_training.md#test_paper_pipeline_trains_on_the_training_set_and_tests_on_the_test_set)):
#
# - `n_val=0`, the default: train on all 50,000 training images, evaluate on the 10,000 test images, as
#   for the paper's Table 6.
# - `n_val=5_000`: train on 45,000, evaluate on the 5,000 held out. This is for **choosing** settings (as
#   the paper chose 64k iterations) without looking at the test set; its errors are not comparable to
#   Table 6.

# %%
@dataclass(frozen=True)
class Recipe:
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 128
    milestones: tuple = (32_000, 48_000)  # lr ÷ 10 at each
    gamma: float = 0.1
    max_iters: int = 64_000
    warmup_lr: float = 0.0  # used while iteration < warmup_iters
    warmup_iters: int = 0
    n_val: int = 0  # training images held out to validate on; 0: use the test set

    def __post_init__(self):
        m = list(self.milestones)
        if m != sorted(m) or any(k <= 0 for k in m):
            raise ValueError(f"milestones must be positive and increasing, got {m}")
        if self.warmup_iters and self.warmup_lr <= 0:
            raise ValueError(f"warmup_iters={self.warmup_iters} needs a positive "
                             f"warmup_lr, got {self.warmup_lr}")
        if self.batch_size < 1 or self.max_iters < 1 or self.n_val < 0:
            raise ValueError(f"batch_size, max_iters must be ≥ 1 and n_val ≥ 0, got "
                             f"{self.batch_size}, {self.max_iters}, {self.n_val}")


PAPER = Recipe()
PAPER_RESNET110 = replace(PAPER, warmup_lr=0.01, warmup_iters=400)


def lr_at(iteration: int, recipe: Recipe) -> float:
    # Constant warm-up, then $0.1 \cdot 0.1^{k}$ with $k$ = number of milestones passed.
    if iteration < recipe.warmup_iters:
        return recipe.warmup_lr
    return recipe.lr * recipe.gamma ** sum(iteration >= m for m in recipe.milestones)


# In PyTorch: SGD, and a `LambdaLR` that scales the lr by `lr_at(iteration) / lr`, once per iteration.
def make_optimizer(model: nn.Module, recipe: Recipe):
    optimizer = torch.optim.SGD(model.parameters(), recipe.lr, recipe.momentum,
                                weight_decay=recipe.weight_decay)

    def lr_factor(iteration):  # what `LambdaLR` multiplies the initial lr by
        return lr_at(iteration, recipe) / recipe.lr

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)


# The whole schedule, drawn from `lr_at` itself (log scale: each step is a factor of 10), and its first
# 1,000 iterations, where ResNet-110 differs ([test](../tests/test_training.md#test_lr_schedule_values)).
def plot_schedule(recipes: dict, zoom: int = 1_000):
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    titles = ("all 64k iterations", f"the first {zoom:,} iterations")
    for ax, n, title in zip(axes, (None, zoom), titles):  # n: iterations drawn
        for (name, recipe), style in zip(recipes.items(), ("-", "--", ":")):
            xs = range(recipe.max_iters)[:n]
            ax.step(xs, [lr_at(i, recipe) for i in xs], style, where="post", label=name)
        ax.set(yscale="log", xlabel="iteration", ylabel="learning rate", title=title)
        ax.legend(fontsize=8)
    axes[0].set_xticks(range(0, 64_001, 16_000), ["0", "16k", "32k", "48k", "64k"])
    fig.suptitle("Learning rate per iteration: 0.1, ÷10 at 32k and 48k, stop at 64k; "
                 "ResNet-110 warms up at 0.01", fontsize=10)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    for it in (0, 399, 400, 31_999, 32_000, 48_000, 63_999):
        print(f"iteration {it:>6}: lr {lr_at(it, PAPER):.4g}   "
              f"ResNet-110: {lr_at(it, PAPER_RESNET110):.4g}")
    assert (lr_at(31_999, PAPER), lr_at(399, PAPER_RESNET110)) == (0.1, 0.01)
    assert np.allclose([lr_at(i, PAPER) for i in (32_000, 48_000)], [0.01, 0.001])
    plot_schedule({"ResNet-20 … 56": PAPER, "ResNet-110": PAPER_RESNET110})
    plt.show()

# %%
# 50,000 images in minibatches of 128 make 391 iterations per epoch (the last holds 80 images), so
# 64k iterations are 163 full epochs and 267 iterations of the 164th. On the 45k part of the 45k/5k
# split an epoch is 352 iterations, and 64k are about 182 epochs. The `DataLoader` below gives the
# same counts ([test](../tests/test_training.md#test_iterations_per_epoch_on_50k_and_45k)).
if __name__ == "__main__":
    for n in (50_000, 45_000):  # Table 6; the 45k part of the 45k/5k split
        per_epoch = math.ceil(n / PAPER.batch_size)
        print(f"{n:,} images: {per_epoch} iterations per epoch, "
              f"{PAPER.max_iters / per_epoch:.1f} epochs in 64k iterations")
    assert math.ceil(50_000 / 128) == 391 and divmod(64_000, 391) == (163, 267)
    assert math.ceil(45_000 / 128) == 352 and round(64_000 / 352) == 182

# %% [markdown]
# ## Split, mean, augmentation
#
# The 45k/5k split is a seeded permutation: the same seed holds out the same 5,000 images, and the parts
# never overlap ([test](../tests/test_training.md#test_split_is_disjoint_and_deterministic)). The
# per-pixel mean, a `[3, 32, 32]` image, comes from the images the run **trains** on: nothing of the
# evaluation images leaks into the input.
#
# !!! note "Where we differ from the paper"
#     We scale pixels to $[0, 1]$ before subtracting the mean (the paper does not say), and we subtract
#     the mean *before* padding, so the 4 padded pixels are zeros = "mean colour". With BN after the first
#     convolution the scale makes no difference to what the network can learn.

# %%
def train_val_split(n: int, n_val: int, seed: int = 0):
    if not 0 < n_val < n:
        raise ValueError(f"n_val must be between 1 and n - 1 = {n - 1}, got {n_val}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values  # train, val


def per_pixel_mean(images_hwc: np.ndarray) -> torch.Tensor:
    # uint8 `[N, 32, 32, 3]` -> float `[3, 32, 32]` in [0, 1] (summed in float64 chunks)
    mean = images_hwc.mean(0, dtype=np.float64) / 255
    return torch.from_numpy(mean).float().permute(2, 0, 1)


class SubtractMean(nn.Module):
    def __init__(self, mean: torch.Tensor):
        super().__init__()
        self.mean = mean

    def forward(self, x):  # [3, H, W]
        return x - self.mean


def paper_transform(mean: torch.Tensor, train: bool):
    # PIL image -> float `[3, 32, 32]`; training adds a pad-4 random crop and a flip.
    steps = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), SubtractMean(mean)]
    if train:
        steps += [v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()]
    return v2.Compose(steps)


# %% [markdown]
# ## Batches
#
# The loop asks a *batch source* for `train(epoch)` and `held_out()`; this one wraps `DataLoader` (the
# [fast GPU page](fast_gpu.md) has another). Epoch $e$'s order comes from a generator seeded with
# $(\text{seed}, e)$, a function of the epoch alone: a resumed run replays exactly the order the
# interrupted run would have used.

# %%
class LoaderBatches:
    def __init__(self, train_set, held_out_set, batch_size: int, seed: int = 0,
                 num_workers: int = 0, max_batches: int | None = None):
        self.train_set, self.held_out_set = train_set, held_out_set
        self.batch_size, self.seed = batch_size, seed
        self.num_workers, self.max_batches = num_workers, max_batches

    def loader(self, epoch: int) -> DataLoader:
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return DataLoader(self.train_set, self.batch_size, shuffle=True, generator=g,
                          num_workers=self.num_workers)

    def train(self, epoch: int):
        return islice(self.loader(epoch), self.max_batches)  # None: the whole epoch

    def held_out(self):
        return DataLoader(self.held_out_set, 2 * self.batch_size,
                          num_workers=self.num_workers)


def cifar_batches(root, recipe: Recipe, *, seed=0, download=False, verify_md5=True,
                  num_workers=0, max_batches=None) -> LoaderBatches:
    # The paper's pipeline on a CIFAR-10 folder: which images, their mean, transforms.
    full = load_cifar10(root, train=True, download=download, verify_md5=verify_md5)
    if recipe.n_val:  # model selection: 45k/5k out of the training file
        train_idx, val_idx = train_val_split(len(full), recipe.n_val, seed)
        held_out = Subset(copy.copy(full), val_idx.tolist())  # own transform
        train_set = Subset(full, train_idx.tolist())
        mean = per_pixel_mean(full.data[train_idx.numpy()])
        held_out.dataset.transform = paper_transform(mean, train=False)
    else:  # Table 6: all 50k training images, the 10k test images
        held_out = load_cifar10(root, train=False, verify_md5=verify_md5)
        train_set, mean = full, per_pixel_mean(full.data)
        held_out.transform = paper_transform(mean, train=False)
    full.transform = paper_transform(mean, train=True)
    return LoaderBatches(train_set, held_out, recipe.batch_size, seed, num_workers,
                         max_batches)


# %%
# On the [data page](data.md)'s digits in the CIFAR-10 format, the default trains on all
# 1,497 training images and evaluates on the 300 test images.
if __name__ == "__main__":
    digits_as_cifar("data/digits")
    batches = cifar_batches("data/digits", replace(PAPER, batch_size=64),
                            verify_md5=False)
    x, y = next(iter(batches.train(0)))
    print("a training batch:", tuple(x.shape), x.dtype, tuple(y.shape), y.dtype)
    sizes = len(batches.train_set), len(batches.held_out_set), len(batches.loader(0))
    print("images: train {}, held out {}; iterations per epoch {}".format(*sizes))
    assert (x.shape, x.dtype, y.dtype) == ((64, 3, 32, 32), torch.float32, torch.int64)
    assert sizes == (1497, 300, math.ceil(1497 / 64))

# %% [markdown]
# ## Does the warm-up matter? A measurement
#
# `make warmup` (`scripts/measure_warmup.py`, 355 s of CPU time on one core) trains plain nets (the
# [ablation chapter](../ablation/degradation.md)'s) and ResNets of 20 and 56 layers for 36 iterations,
# with and without a 0.01 warm-up, 3 seeds each, on scikit-learn's digits at 16×16 (1,500 training images,
# no augmentation), minibatches of 128, lr 0.1 and the paper's momentum and weight decay. It writes
# `docs/assets/training/warmup.csv` and:
#
# [![Training loss in the first 36 iterations, with and without warm-up, of plain and residual nets at 20 and 56 layers](../assets/training/warmup.png)](../assets/training/warmup.png)
#
# The minibatch loss starts near $\ln 10 \approx 2.3$. At lr 0.1 from the first step, ResNet-56's loss
# blew up to between 10.7 and 16.9 (at iterations 4, 7 and 14 of the three seeds) and after 36 iterations
# was still 2.1–2.2, with 76–86 % of the last minibatch wrong. With the warm-up it never rose above its
# first value (at most 3.9) and ended at 0.32–0.49. Nothing became infinite or NaN: the loss exploded,
# came back, and the run spent its 36 iterations recovering. Plain-56 had no such jump (at most 2.5) but
# learned little either way; both 20-layer nets learned *faster* without the warm-up
# ([test](../tests/test_training.md#test_committed_warmup_measurement)). So here the deep residual net
# needs the gentle start the paper reports for ResNet-110 on CIFAR-10.

# %% [markdown]
# ## Exercises
#
# 1. **A bigger batch (auto-checked).** With more GPUs you want minibatches of $B = 128 \cdot k$ images
#    ($k$ = 1, 2, 4 or 8). Keep the paper's number of *epochs* and the number of images seen before each
#    lr drop, and scale the lr linearly with the batch (Goyal et al. 2017's rule; no warm-up). Write
#    `my_lr(iteration, batch_size)` and check it with `check_lr(my_lr)`.
# 2. 50,000 images do not divide into minibatches of 128. What would `drop_last=True` change over 164
#    epochs: how many images would the run never see in an epoch, and would it change the schedule in
#    iterations?
# 3. Why did the paper choose 64k iterations on a 45k/5k split and not by watching the test error? Which
#    of this page's two settings would you use to pick a weight decay, and which to report a number next
#    to Table 6?

# %%
def check_lr(my_lr) -> None:
    for batch in (128, 256, 512, 1024):
        k = batch // 128
        for it in (0, 1, 32_000 // k - 1, 32_000 // k, 48_000 // k - 1, 48_000 // k,
                   64_000 // k - 1):
            got = my_lr(it, batch)
            if math.isclose(got, k * lr_at(it * k, PAPER), rel_tol=1e-9):
                continue
            hint = ("the first lr: by how much did the batch grow?" if it <= 1 else
                    "the lr changes at the wrong iteration or by the wrong factor: "
                    "an iteration now sees more images than the paper's did")
            raise AssertionError(f"batch {batch}, iteration {it}: your lr {got:g} is "
                                 f"not the scaled recipe's. Hint: {hint}")
    print("correct: your schedule keeps the paper's epochs with a linearly scaled lr")
