# %% [markdown]
# # A fast GPU path
#
# ResNet-20 is small (0.27 M parameters), so on a GPU each training step is short and the work of a plain
# `DataLoader` (turn each image into a tensor, crop and flip it, one image at a time in Python) can become
# what the [training loop](loop.md) waits for. This page keeps the loop and changes where the data work
# happens:
#
# 1. the whole training set lives **on the device** as `uint8` (50,000 × 3 × 32 × 32 bytes ≈ 154 MB);
# 2. augmentation runs **on whole batches** there: one gather does the random crop and flip;
# 3. **channels_last** memory layout, which GPU convolution kernels prefer;
# 4. **bf16 autocast**: matrix multiplies in bfloat16, weights and the optimizer in float32;
# 5. optionally **`torch.compile`**, which fuses the small element-wise kernels.
#
# The same code runs on CPU, which is how this page and its tests run on this site, and how the speed
# figures below were measured: we have no GPU measurement to show.

# %%
import time
from dataclasses import replace
from itertools import chain, count

import torch
from torch.nn import functional as nnf
from torch.utils.data import Dataset

from labml_style_src.device import DEVICE
from labml_style_src.paper_tables import RESNET_TABLE_6
from labml_style_src.resnet_v1.cifar import cifar_resnet
from labml_style_src.resnet_v1.residual_block import n_params
from labml_style_src.training.loop import fit, rounded, to_device, train_step
from labml_style_src.training.recipe import (
    PAPER,
    LoaderBatches,
    make_optimizer,
    paper_transform,
)

# %% [markdown]
# ## Crop and flip a whole batch with one gather
#
# Pad the batch by 4 pixels (zeros: after mean subtraction, the mean colour), then pick for image $b$ the
# rows $d_y[b] + (0, \dots, 31)$ and the columns $d_x[b] + (0, \dots, 31)$, the columns reversed when $b$
# is flipped. Advanced indexing with index tensors of shapes `[B, 1, 1]`, `[B, 32, 1]` and `[B, 1, 32]`
# reads all crops at once. The indexed dimensions come first in the result, `[B, 32, 32, C]`, so the
# permuted output is already **channels_last** in memory.

# %%
def crop_flip(x, dy, dx, flip, pad: int = 4):
    # x: `[B, C, H, W]`; dy, dx: ints in $[0, 2 \cdot pad]$, `[B]`; flip: bool `[B]`.
    B, C, H, W = x.shape
    padded = nnf.pad(x, (pad, pad, pad, pad))  # [B, C, H + 2p, W + 2p]
    ar_h, ar_w = torch.arange(H, device=x.device), torch.arange(W, device=x.device)
    rows = dy[:, None] + ar_h  # [B, H]
    # [B, W], reversed where flipped
    cols = dx[:, None] + torch.where(flip[:, None], W - 1 - ar_w, ar_w)
    b = torch.arange(B, device=x.device)[:, None, None]
    out = padded[b, :, rows[:, :, None], cols[:, None, :]]  # [B, H, W, C]
    return out.permute(0, 3, 1, 2)  # [B, C, H, W], channels_last in memory


def random_crop_flip(x, generator, pad: int = 4):
    # Random numbers from a CPU generator: the same augmentation on CPU and GPU.
    B = x.shape[0]
    dy = torch.randint(0, 2 * pad + 1, (B,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (B,), generator=generator).to(x.device)
    flip = (torch.rand(B, generator=generator) < 0.5).to(x.device)
    return crop_flip(x, dy, dx, flip, pad)


# %%
# Checked against the obvious per-image loop (slice the padded image, flip with `torch.flip`).
if __name__ == "__main__":
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 32, 32, device=DEVICE)
    dy, dx = torch.randint(0, 9, (2, 6), generator=g)
    flip = torch.tensor([True, False, True, False, False, True])
    fast = crop_flip(x, dy.to(DEVICE), dx.to(DEVICE), flip.to(DEVICE))
    padded = nnf.pad(x, (4, 4, 4, 4))
    for i in range(6):
        crop = padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        assert torch.equal(fast[i], crop.flip(2) if flip[i] else crop)
    assert fast.is_contiguous(memory_format=torch.channels_last)
    print("batched crop+flip == per-image loop; output channels_last:",
          fast.is_contiguous(memory_format=torch.channels_last))

# %% [markdown]
# ## The data set on the device
#
# `DeviceBatches` has the two methods the loop asks for, `train(epoch)` and `held_out()`, like the
# `DataLoader` source of the recipe page. It keeps `uint8` images on the device and turns a batch into
# floats only when it is used. The order of epoch $e$ and its augmentation come from a generator seeded
# with $(\text{seed}, e)$, so checkpoints and resume work as before.

# %%
class DeviceBatches:
    def __init__(self, images, labels, held_out_images, held_out_labels, mean,
                 batch_size: int, seed: int = 0, device=DEVICE, augment: bool = True,
                 max_batches: int | None = None):
        # images: uint8 `[N, 3, H, W]`; mean: float `[3, H, W]` in [0, 1], per pixel.
        self.x, self.y = images.to(device), labels.to(device)
        self.held_x = held_out_images.to(device)
        self.held_y = held_out_labels.to(device)
        self.mean, self.batch_size, self.seed = mean.to(device), batch_size, seed
        self.augment, self.max_batches = augment, max_batches

    def normalize(self, u8):
        return u8.float().div_(255).sub_(self.mean)

    def train(self, epoch: int):
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(len(self.x), generator=g).to(self.x.device)
        for idx in order.split(self.batch_size)[:self.max_batches]:  # None: all
            x = self.normalize(self.x[idx])
            yield (random_crop_flip(x, g) if self.augment else x), self.y[idx]

    def held_out(self):
        step = 2 * self.batch_size
        for x, y in zip(self.held_x.split(step), self.held_y.split(step)):
            yield self.normalize(x), y


# %% [markdown]
# ## Training with all switches on
#
# The loop is the [loop page](loop.md)'s `fit`; `channels_last=True` converts the model and every batch to
# the NHWC layout, `autocast_dtype=torch.bfloat16` runs forward and loss under autocast. bf16 keeps
# float32's exponent range, so unlike float16 it needs no loss scaling. `torch.compile(model)` is one more
# line; checkpoints still hold the plain module's weights.
#
# !!! note "Where we differ from the paper"
#     The paper says nothing about numeric precision (GPU training in 2015 was typically float32). bf16
#     autocast changes the arithmetic slightly; the recipe (lr, schedule, augmentation) is unchanged.

# %%
def fast_options(device=DEVICE) -> dict:
    # bf16 where it is fast (CUDA); float32 on CPU, where bf16 convolutions are slower.
    bf16 = torch.device(device).type == "cuda"
    return dict(autocast_dtype=torch.bfloat16 if bf16 else None, channels_last=True)


if __name__ == "__main__":
    torch.manual_seed(0)
    n, n_held = 512, 128  # random CIFAR-shaped data: the code path, not a result
    images = torch.randint(0, 256, (n + n_held, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (n + n_held,))
    mean = images[:n].float().mean(0) / 255
    batches = DeviceBatches(images[:n], labels[:n], images[n:], labels[n:], mean,
                            batch_size=64, max_batches=2)
    xb, yb = next(batches.train(0))
    print("batch:", tuple(xb.shape), xb.dtype, xb.device)
    assert xb.shape == (64, 3, 32, 32) and xb.dtype == torch.float32
    assert torch.equal(next(batches.train(0))[0], xb)  # same epoch, same batch
    options = fast_options()
    compile_model = False  # True: `torch.compile`, worth it for long GPU runs
    model = cifar_resnet(8)
    tiny = replace(PAPER, batch_size=64, milestones=(3,), max_iters=4)
    history = fit(torch.compile(model) if compile_model else model, batches, tiny,
                  "runs/fast_tiny", progress=False, **options)
    print(rounded(history[-1]))
    assert len(history) == 2
    assert model.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    # bf16 has float32's range (largest value ~3.4e38); float16 overflows above 65504.
    assert torch.finfo(torch.bfloat16).max > 1e38
    assert torch.finfo(torch.float16).max == 65504
    # The model this path is for: ResNet-20, 0.27 M parameters (Table 6).
    assert round(n_params(cifar_resnet(20)) / 1e6, 2) == RESNET_TABLE_6[20].params_m

# %% [markdown]
# ## How much faster?
#
# The baseline is what a plain loop feeds the model: a `Dataset` that transforms one image at a time (the
# recipe page's `paper_transform`), batched by a `DataLoader`. `images_per_second` times training steps
# (forward, backward, SGD) fed by a batch source, after a few untimed steps, synchronising the GPU before
# reading the clock; with `model=None` it times the data alone. `scripts/bench_training.py` runs both
# sources on the same random CIFAR-shaped data, in interleaved rounds, and reports medians.
# `make bench-train` runs it on the CPU. The machine that made the committed figures is a 2-core x86-64
# CPU shared with other jobs (load average about 10), so it counts CPU time of one thread (`--clock cpu`:
# the work done, not the time spent waiting for a core), with no worker processes:
#
# ```bash
# python scripts/bench_training.py --device cpu --clock cpu --threads 1 --workers 0 \
#     --n-images 10000 --steps 4 --warmup 1 --rounds 3 \
#     --json docs/assets/training/bench_cpu.json
# ```
#
# Medians of 3 rounds, in images per second of CPU time
# ([test](../tests/test_training.md#test_fast_gpu_page_states_the_committed_benchmark)):
#
# | | `DataLoader`, per image | on-device batches | ratio |
# |---|---:|---:|---:|
# | the data alone | 3,718 images/s | 27,306 images/s | 7.30× |
# | ResNet-20 training steps fed by it | 141 images/s | 206 images/s | 1.40× |
#
# The batched data path does 7.3 times less work per image. In a CPU training step it saves 0.23 ms of the
# 7.1 ms each image costs; the rest of the 1.40× comes from the only other difference between the two
# loops, the channels_last layout. On a CPU the network's arithmetic dominates; on a GPU the network's
# part shrinks and the data side's share grows, which is what this page is for. We have no GPU measurement
# to say by how much.
#
# With a GPU, `python scripts/bench_training.py --device cuda --compile` answers the question this page is
# about (add `--full-schedule` for 64k iterations). Below, the same function runs on this page's tiny data
# for a handful of steps: it shows the code path, and its timings depend on the machine and its load.

# %%
class PerImageDataset(Dataset):
    # images: uint8 `[N, 3, H, W]`; each item goes through `transform` on its own.
    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def images_per_second(model, batches, steps: int, *, device=DEVICE, warmup: int = 2,
                      autocast_dtype=None, channels_last: bool = False,
                      clock=time.perf_counter) -> float:
    # `model=None`: only draw the batches and move them to `device`. `clock`: wall time,
    # or `time.process_time` (CPU time of this process and its threads, not of workers).
    if model is not None:
        model.to(device).train()
        if channels_last:
            model.to(memory_format=torch.channels_last)
        optimizer, _ = make_optimizer(model, PAPER)  # the recipe's SGD

    it, seen = chain.from_iterable(map(batches.train, count())), 0  # epoch after epoch
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            start = clock()
        x, y = next(it)
        x, y = to_device(x, device, channels_last), y.to(device)
        if model is not None:
            train_step(model, optimizer, x, y, autocast_dtype)
        seen += len(y) if i >= warmup else 0
    _sync(device)
    return seen / (clock() - start)


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


# %%
if __name__ == "__main__":
    transform = paper_transform(mean, train=True)
    plain = LoaderBatches(PerImageDataset(images[:n], labels[:n], transform), None, 64)
    ours = DeviceBatches(images[:n], labels[:n], images[n:], labels[n:], mean, 64)
    for name, source, opts in (("DataLoader", plain, {}), ("on device", ours, options)):
        data = images_per_second(None, source, 3)
        train = images_per_second(cifar_resnet(8), source, 3, **opts)
        print(f"{name:10}: data alone {data:8.0f} images/s, training {train:6.0f} "
              f"images/s (timings depend on the machine and its load)")

# %% [markdown]
# ## Exercises
#
# 1. **Black padding (auto-checked).** Our pipeline subtracts the mean *before* padding, so padded pixels
#    are the mean colour. Many pipelines pad the raw image with black and then subtract a per-channel mean
#    (three numbers, as torchvision's `Normalize` does). Write `crop_black(x, mean, dy, dx, flip)` that
#    takes a batch `x` (`[B, 3, 32, 32]`) from which the per-channel `mean` (`[3, 1, 1]`) was already
#    subtracted, and returns the crops that other pipeline gives. `check_black_padding(crop_black)`
#    compares with a per-image reference.
# 2. On the CPU: run
#    `python scripts/bench_training.py --device cpu --n-images 2048 --steps 4 --rounds 3 --depth 8` with
#    `--workers 0` and with `--workers 2`, then with `--depth 56`. How do the two ratios change with the
#    model's size, and why? With a GPU, compare `--device cuda` with and without `--compile` and
#    `--no-bf16`.
# 3. With the data set on the GPU the data order is drawn on the CPU and copied. Why not draw it on the
#    GPU with a CUDA generator? (Hint: what must be identical after a resume, and on which device?)

# %%
def check_black_padding(crop_black) -> None:
    g = torch.Generator().manual_seed(1)
    raw = torch.rand(8, 3, 32, 32, generator=g)  # images in [0, 1]
    mean = raw.mean((0, 2, 3))[:, None, None]  # [3, 1, 1]
    dy, dx = torch.randint(0, 9, (2, 8), generator=g)
    flip = torch.rand(8, generator=g) < 0.5
    got = crop_black(raw - mean, mean, dy, dx, flip)
    if tuple(got.shape) != (8, 3, 32, 32):
        raise AssertionError(f"expected shape (8, 3, 32, 32), got {tuple(got.shape)}")
    padded = nnf.pad(raw, (4, 4, 4, 4))  # a black border around the raw images
    inside = nnf.pad(torch.ones(32, 32, dtype=torch.bool), (4, 4, 4, 4))  # [40, 40]
    for i in range(8):
        crop = padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        mask = inside[dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        crop, mask = (crop.flip(2), mask.flip(1)) if flip[i] else (crop, mask)
        wrong = ~torch.isclose(got[i], crop - mean, atol=1e-6)  # [3, 32, 32]
        if wrong[:, mask].any():
            raise AssertionError(f"image {i}: pixels from inside the image differ. "
                                 f"Hint: does each pixel land where crop_flip puts it?")
        if wrong.any():
            raise AssertionError(f"image {i}: the padded border differs. Hint: what "
                                 f"value does a black pixel have once the mean is "
                                 f"subtracted?")
    print("correct: your crop matches a pipeline that pads raw images with black")
