# %% [markdown]
# # A fast GPU path
#
# ResNet-20 has 0.27 M parameters: a modern GPU runs it far faster than a `DataLoader` can turn
# images into tensors, crop and flip them one at a time in Python.
# The [recipe page](recipe.md)'s loop then waits on its data. This page keeps the loop and changes
# where the work happens:
#
# 1. the whole training set lives **on the GPU** as `uint8` (50,000 × 3 × 32 × 32 bytes ≈ 154 MB);
# 2. augmentation runs **on whole batches** there: one gather does the random crop and the flip;
# 3. **channels_last** memory layout, which GPU convolution kernels prefer;
# 4. **bf16 autocast**: matrix multiplies in bfloat16, weights and the optimizer in float32;
# 5. optionally **`torch.compile`**, which fuses the small element-wise kernels.
#
# The same code runs on CPU (slowly), which is how this page and its tests run on the site.

# %%
import time
from dataclasses import replace

import torch
from torch.nn import functional as nnf
from torch.utils.data import Dataset

from labml_style_src.device import DEVICE
from labml_style_src.resnet_v1.cifar import TABLE_6, cifar_resnet
from labml_style_src.resnet_v1.residual_block import n_params
from labml_style_src.training.recipe import (
    PAPER,
    LoaderBatches,
    fit,
    paper_transform,
    to_device,
    train_step,
)

# %% [markdown]
# ## Crop and flip a whole batch with one gather
#
# Pad the batch by 4 pixels (zeros: after mean subtraction, the mean colour), then pick for image
# $b$ the rows $d_y[b] + (0, \dots, 31)$ and the columns $d_x[b] + (0, \dots, 31)$, the columns
# reversed when $b$ is flipped. Advanced indexing with index tensors of shapes `[B, 1, 1]`,
# `[B, 32, 1]` and `[B, 1, 32]` reads all crops at once. The indexed dimensions come first in the
# result, `[B, 32, 32, C]`, so the permuted output is already **channels_last** in memory.

# %%
def crop_flip(x, dy, dx, flip, pad: int = 4):
    # x: `[B, C, H, W]`; dy, dx: ints in $[0, 2 \cdot pad]$, `[B]`; flip: bool `[B]`.
    B, C, H, W = x.shape
    padded = nnf.pad(x, (pad, pad, pad, pad))  # [B, C, H + 2p, W + 2p]
    ar_h, ar_w = torch.arange(H, device=x.device), torch.arange(W, device=x.device)
    rows = dy[:, None] + ar_h  # [B, H]
    cols = dx[:, None] + torch.where(flip[:, None], W - 1 - ar_w, ar_w)  # [B, W], reversed if flipped
    b = torch.arange(B, device=x.device)[:, None, None]
    out = padded[b, :, rows[:, :, None], cols[:, None, :]]  # [B, H, W, C]
    return out.permute(0, 3, 1, 2)  # [B, C, H, W], channels_last in memory


def random_crop_flip(x, generator, pad: int = 4):
    # Random numbers from a CPU generator: the same augmentation on CPU and GPU, and resumable.
    B = x.shape[0]
    dy = torch.randint(0, 2 * pad + 1, (B,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (B,), generator=generator).to(x.device)
    flip = (torch.rand(B, generator=generator) < 0.5).to(x.device)
    return crop_flip(x, dy, dx, flip, pad)


# %% [markdown]
# Checked against the obvious per-image loop (slice the padded image, flip it with `torch.flip`):

# %%
if __name__ == "__main__":
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 32, 32, device=DEVICE)
    dy, dx = torch.randint(0, 9, (6,), generator=g), torch.randint(0, 9, (6,), generator=g)
    flip = torch.tensor([True, False, True, False, False, True])
    fast = crop_flip(x, dy.to(DEVICE), dx.to(DEVICE), flip.to(DEVICE))
    padded = nnf.pad(x, (4, 4, 4, 4))
    for i in range(6):
        crop = padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        assert torch.equal(fast[i], crop.flip(2) if flip[i] else crop)
    assert fast.is_contiguous(memory_format=torch.channels_last)
    print("batched crop+flip == per-image loop; output channels_last:", fast.is_contiguous(memory_format=torch.channels_last))

# %% [markdown]
# ## The data set on the device
#
# `DeviceBatches` has the two methods the loop asks for, `train(epoch)` and `val()`, like the
# `DataLoader` source of the recipe page. It keeps `uint8` images on the device and turns a batch into
# floats only when it is used. The order of epoch $e$ and its augmentation come from a generator seeded
# with $(\text{seed}, e)$, so checkpoints and resume work exactly as before.

# %%
class DeviceBatches:
    def __init__(self, images, labels, val_images, val_labels, mean, batch_size: int, seed: int = 0,
                 device=DEVICE, augment: bool = True, max_batches: int | None = None):
        # images: uint8 `[N, 3, H, W]`; mean: float `[3, H, W]` in [0, 1] (the per-pixel mean).
        self.x, self.y = images.to(device), labels.to(device)
        self.val_x, self.val_y = val_images.to(device), val_labels.to(device)
        self.mean, self.batch_size, self.seed = mean.to(device), batch_size, seed
        self.augment, self.max_batches = augment, max_batches

    def normalize(self, u8):
        return u8.float().div_(255).sub_(self.mean)

    def train(self, epoch: int):
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(len(self.x), generator=g).to(self.x.device)
        for i, start in enumerate(range(0, len(order), self.batch_size)):
            if self.max_batches is not None and i >= self.max_batches:
                return
            idx = order[start:start + self.batch_size]
            x = self.normalize(self.x[idx])
            yield (random_crop_flip(x, g) if self.augment else x), self.y[idx]

    def val(self):
        for start in range(0, len(self.val_x), 2 * self.batch_size):
            yield self.normalize(self.val_x[start:start + 2 * self.batch_size]), self.val_y[start:start + 2 * self.batch_size]


# %% [markdown]
# ## Training with all switches on
#
# The loop is the recipe page's `fit`; `channels_last=True` converts the model and every batch to the
# NHWC layout, `autocast_dtype=torch.bfloat16` runs forward and loss under autocast. bf16 keeps
# float32's exponent range, so unlike float16 it needs no loss scaling. `torch.compile(model)` is
# one more line; checkpoints still hold the plain module's weights.
#
# !!! note "Where we differ from the paper"
#     The paper says nothing about numeric precision (2015 GPU training was float32). bf16 autocast
#     changes the arithmetic slightly; the recipe (lr, schedule, augmentation) is unchanged.

# %%
def fast_options(device=DEVICE) -> dict:
    # bf16 where it is fast (CUDA); float32 on CPU, where bf16 convolutions are often slower.
    return dict(autocast_dtype=torch.bfloat16 if torch.device(device).type == "cuda" else None, channels_last=True)


# %%
if __name__ == "__main__":
    torch.manual_seed(0)
    n, n_val = 512, 128  # synthetic CIFAR-shaped data: the code path, not a result
    images = torch.randint(0, 256, (n + n_val, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (n + n_val,))
    mean = images[:n].float().mean(0) / 255
    batches = DeviceBatches(images[:n], labels[:n], images[n:], labels[n:], mean, batch_size=64, max_batches=2)
    xb, yb = next(batches.train(0))
    print("batch:", tuple(xb.shape), xb.dtype, xb.device)
    assert xb.shape == (64, 3, 32, 32) and xb.dtype == torch.float32
    assert torch.equal(next(batches.train(0))[0], xb)  # same epoch, same batch
    options = fast_options()
    compile_model = False  # True: `torch.compile`, worth it for long GPU runs (compiling takes a minute)
    model = cifar_resnet(8)
    tiny = replace(PAPER, batch_size=64, milestones=(3,), max_iters=4, n_val=n_val)
    history = fit(torch.compile(model) if compile_model else model, batches, tiny, "runs/fast_tiny",
                  progress=False, **options)
    print(history[-1])
    assert len(history) == 2 and model.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    # bf16 has float32's range (largest value ~3.4e38); float16 overflows above 65504.
    assert torch.finfo(torch.bfloat16).max > 1e38 > 65504 == torch.finfo(torch.float16).max
    # The model this path is for: ResNet-20, 0.27 M parameters (Table 6).
    assert round(n_params(cifar_resnet(20)) / 1e6, 2) == TABLE_6[20][0]

# %% [markdown]
# ## How much faster?
#
# The baseline is what a plain loop feeds the model: a `Dataset` that transforms one image at a time
# (the recipe page's `paper_transform`), batched by a `DataLoader`.
#
# `images_per_second` times training steps (forward, backward, SGD) fed by any batch source, after a
# few warm-up steps, synchronising the GPU before reading the clock. `scripts/bench_training.py`
# compares our loop with a plain `DataLoader` loop (per-image torchvision transforms, worker
# processes) on the same model and synthetic CIFAR-shaped data:
#
# ```bash
# python scripts/bench_training.py --device cpu --n-images 1024 --steps 8        # a few seconds
# python scripts/bench_training.py --device cuda --compile                       # on a GPU
# python scripts/bench_training.py --device cuda --compile --full-schedule       # 64k iterations of ResNet-20
# ```
#
# Below, the same function on this page's tiny data, a handful of steps: a smoke run, not a benchmark.

# %%
class PerImageDataset(Dataset):
    # images: uint8 `[N, 3, H, W]`; each item goes through `transform` on its own.
    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def images_per_second(model, batches, steps: int, *, device=DEVICE, warmup: int = 2, lr: float = 0.1,
                      autocast_dtype=None, channels_last: bool = False) -> float:
    model.to(device).train()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)

    def stream():  # batches forever, epoch after epoch
        epoch = 0
        while True:
            yield from batches.train(epoch)
            epoch += 1

    it, seen = stream(), 0
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            start = time.perf_counter()
        x, y = next(it)
        train_step(model, optimizer, to_device(x, device, channels_last), y.to(device), autocast_dtype)
        seen += len(y) if i >= warmup else 0
    _sync(device)
    return seen / (time.perf_counter() - start)


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


# %%
if __name__ == "__main__":
    plain = LoaderBatches(PerImageDataset(images[:n], labels[:n], paper_transform(mean, train=True)), None, 64)
    ours = DeviceBatches(images[:n], labels[:n], images[n:], labels[n:], mean, 64)
    print("DataLoader loop:", round(images_per_second(cifar_resnet(8), plain, 3)), "images/s")
    print("device loop:    ", round(images_per_second(cifar_resnet(8), ours, 3, **options)), "images/s")

# %% [markdown]
# ## Exercises
#
# 1. **Crop one image (auto-checked).** Write `crop_one(padded, dy, dx, flip)` that returns the
#    `[C, 32, 32]` crop of one padded `[C, 40, 40]` image starting at row `dy`, column `dx`, mirrored
#    left-right if `flip`. `check_crop_one(crop_one)` compares it with `crop_flip` on random batches.
# 2. Run `scripts/bench_training.py --device cuda` with and without `--compile` and with
#    `--no-bf16`. Which switch buys the most for ResNet-20? For ResNet-110?
# 3. With the data set on the GPU the data order is drawn on the CPU and copied. Why not draw it on
#    the GPU with a CUDA generator? (Hint: what must be identical after a resume, and on which device?)

# %%
def check_crop_one(crop_one) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, 32, 32)
    dy, dx = torch.randint(0, 9, (8,), generator=g), torch.randint(0, 9, (8,), generator=g)
    flip = torch.rand(8, generator=g) < 0.5
    want = crop_flip(x, dy, dx, flip)
    padded = nnf.pad(x, (4, 4, 4, 4))
    for i in range(8):
        got = crop_one(padded[i], int(dy[i]), int(dx[i]), bool(flip[i]))
        if tuple(got.shape) != (3, 32, 32) or not torch.equal(got, want[i]):
            raise AssertionError(f"image {i} (dy={int(dy[i])}, dx={int(dx[i])}, flip={bool(flip[i])}) differs "
                                 f"from crop_flip; got shape {tuple(got.shape)}")
    print("correct: your crop matches the batched gather")
