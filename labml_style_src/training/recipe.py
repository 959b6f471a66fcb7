# %% [markdown]
# # The paper's CIFAR-10 recipe, in plain PyTorch
#
# Everything needed to train the CIFAR ResNets the way §4.2 of the paper does: the schedule, the
# data split and augmentation, and a training loop with a progress bar, metrics files, plots and
# checkpoints that survive being killed. No training framework: about a hundred lines of loop that
# you can read in one sitting.
#
# > "We use a weight decay of 0.0001 and momentum of 0.9, and adopt the weight initialization in [13]
# > and BN [16] but with no dropout. These models are trained with a minibatch size of 128 on two
# > GPUs. We start with a learning rate of 0.1, divide it by 10 at 32k and 48k iterations, and
# > terminate training at 64k iterations, which is determined on a 45k/5k train/val split. We follow
# > the simple data augmentation in [24] for training: 4 pixels are padded on each side, and a 32×32
# > crop is randomly sampled from the padded image or its horizontal flip. For testing, we only
# > evaluate the single view of the original 32×32 image." — He et al. 2015, §4.2
#
# The same section says the inputs are 32×32 images with the per-pixel mean subtracted, and that
# ResNet-110 needs a gentler start:
#
# > "In this case, we find that the initial learning rate of 0.1 is slightly too large to start
# > converging. So we use 0.01 to warm up the training until the training error is below 80% (about
# > 400 iterations), and then go back to 0.1 and continue training." — He et al. 2015, §4.2

# %%
import argparse
import copy
import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
from torch.nn import functional as nnf
from torch.utils.data import DataLoader, Subset
from torchvision.transforms import v2 as T
from tqdm.auto import tqdm

from labml_style_src.device import DEVICE
from labml_style_src.resnet_v1.cifar import cifar_resnet
from labml_style_src.training.data import digits_as_cifar, load_cifar10

# %% [markdown]
# ## The recipe as data
#
# One frozen dataclass holds every number of the recipe, so a run is described by one value that
# can be printed, compared and stored in its checkpoint. The schedule counts **iterations**
# (minibatches), not epochs, as the paper does. The warm-up is a constant 0.01 for 400 iterations
# (the paper's "about 400"; it actually switches back when the training error drops below 80 %).

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
    n_val: int = 5_000  # held out of the 50k training images

    def __post_init__(self):
        if list(self.milestones) != sorted(self.milestones) or any(m <= 0 for m in self.milestones):
            raise ValueError(f"milestones must be positive and increasing, got {self.milestones}")
        if self.warmup_iters and self.warmup_lr <= 0:
            raise ValueError(f"warmup_iters={self.warmup_iters} needs a positive warmup_lr, got {self.warmup_lr}")
        if self.batch_size < 1 or self.max_iters < 1:
            raise ValueError(f"batch_size and max_iters must be ≥ 1, got {self.batch_size}, {self.max_iters}")


PAPER = Recipe()
PAPER_RESNET110 = replace(PAPER, warmup_lr=0.01, warmup_iters=400)


def lr_at(iteration: int, recipe: Recipe) -> float:
    # Constant warm-up, then $0.1 \cdot 0.1^{k}$ with $k$ = number of milestones passed.
    if iteration < recipe.warmup_iters:
        return recipe.warmup_lr
    return recipe.lr * recipe.gamma ** sum(iteration >= m for m in recipe.milestones)


# %%
if __name__ == "__main__":
    for it in (0, 399, 400, 31_999, 32_000, 48_000, 63_999):
        print(f"iteration {it:>6}: lr {lr_at(it, PAPER):.4g}   ResNet-110: {lr_at(it, PAPER_RESNET110):.4g}")
    assert lr_at(31_999, PAPER) == 0.1 and math.isclose(lr_at(32_000, PAPER), 0.01)
    assert math.isclose(lr_at(48_000, PAPER), 0.001) and lr_at(399, PAPER_RESNET110) == 0.01
    # 45k images in minibatches of 128: 352 iterations per epoch, so 64k iterations ≈ 182 epochs.
    per_epoch = math.ceil((50_000 - PAPER.n_val) / PAPER.batch_size)
    print("iterations per epoch:", per_epoch, " epochs in 64k iterations:", round(PAPER.max_iters / per_epoch, 1))
    assert per_epoch == 352 and round(PAPER.max_iters / per_epoch) == 182

# %% [markdown]
# ## Split, mean, augmentation
#
# The 45k/5k split is a seeded permutation: the same seed always holds out the same 5,000 images,
# and the two parts never overlap ([test](../tests/test_training.md#test_split_is_disjoint_and_deterministic)).
# The per-pixel mean is a `[3, 32, 32]` image computed on the **training part only**, so nothing of
# the validation images leaks into the input.
#
# !!! note "Where we differ from the paper"
#     We scale pixels to $[0, 1]$ before subtracting the mean (the paper does not say), and we
#     subtract the mean *before* padding, so the 4 padded pixels are zeros = "mean colour". With BN
#     after the first convolution the scale makes no difference to what the network can learn.

# %%
def train_val_split(n: int, n_val: int, seed: int = 0):
    if not 0 < n_val < n:
        raise ValueError(f"n_val must be between 1 and n - 1 = {n - 1}, got {n_val}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:].sort().values, perm[:n_val].sort().values  # train, val


def per_pixel_mean(images_hwc: np.ndarray) -> torch.Tensor:
    # uint8 `[N, 32, 32, 3]` -> float `[3, 32, 32]` in [0, 1]
    return torch.from_numpy(images_hwc).float().mean(0).permute(2, 0, 1) / 255


class SubtractMean(nn.Module):
    def __init__(self, mean: torch.Tensor):
        super().__init__()
        self.mean = mean

    def forward(self, x):  # [3, H, W]
        return x - self.mean


def paper_transform(mean: torch.Tensor, train: bool):
    # PIL image -> float `[3, 32, 32]`; training adds pad-4 random crop and a random flip.
    steps = [T.ToImage(), T.ToDtype(torch.float32, scale=True), SubtractMean(mean)]
    if train:
        steps += [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()]
    return T.Compose(steps)


# %% [markdown]
# ## Batches
#
# The loop asks a *batch source* for `train(epoch)` and `val()`. This one wraps PyTorch's
# `DataLoader`. The data order of epoch $e$ comes from a generator seeded with $(\text{seed}, e)$,
# so it is a function of the epoch alone: a resumed run replays exactly the order the interrupted
# run would have used. (The [fast GPU page](fast_gpu.md) has a second source with the same two methods.)

# %%
class LoaderBatches:
    def __init__(self, train_set, val_set, batch_size: int, seed: int = 0, num_workers: int = 0,
                 max_batches: int | None = None):
        self.train_set, self.val_set, self.batch_size = train_set, val_set, batch_size
        self.seed, self.num_workers, self.max_batches = seed, num_workers, max_batches

    def train(self, epoch: int):
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        loader = DataLoader(self.train_set, self.batch_size, shuffle=True, generator=g, num_workers=self.num_workers)
        for i, batch in enumerate(loader):
            if self.max_batches is not None and i >= self.max_batches:
                return
            yield batch

    def val(self):
        return DataLoader(self.val_set, 2 * self.batch_size, num_workers=self.num_workers)


def cifar_batches(root, recipe: Recipe, *, seed=0, download=False, verify_md5=True, num_workers=0, max_batches=None):
    # The paper's data pipeline on a CIFAR-10 folder: split, mean of the training part, transforms.
    full = load_cifar10(root, train=True, download=download, verify_md5=verify_md5)
    train_idx, val_idx = train_val_split(len(full), recipe.n_val, seed)
    mean = per_pixel_mean(full.data[train_idx.numpy()])
    train_set, val_set = full, copy.copy(full)  # two views of the same arrays, two transforms
    train_set.transform, val_set.transform = paper_transform(mean, True), paper_transform(mean, False)
    return LoaderBatches(Subset(train_set, train_idx.tolist()), Subset(val_set, val_idx.tolist()),
                         recipe.batch_size, seed, num_workers, max_batches)


# %% [markdown]
# ## One training step
#
# Cross-entropy, backward, SGD step. It returns tensors, not Python numbers: calling `.item()` every
# step would make a GPU wait for each step to finish. `autocast_dtype=torch.bfloat16` is the mixed
# precision switch the fast path uses.

# %%
def train_step(model, optimizer, x, y, autocast_dtype=None):
    with torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        logits = model(x)  # [B, classes]
        loss = nnf.cross_entropy(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), (logits.argmax(1) != y).sum()


@torch.no_grad()
def evaluate(model, batches, device, autocast_dtype=None, channels_last=False):
    model.eval()
    loss, wrong, n = 0.0, 0, 0
    for x, y in batches:
        x, y = to_device(x, device, channels_last), y.to(device)
        with torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits = model(x)
        loss += nnf.cross_entropy(logits.float(), y, reduction="sum").item()
        wrong += (logits.argmax(1) != y).sum().item()
        n += len(y)
    return loss / n, 100 * wrong / n


def to_device(x, device, channels_last):
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


# %% [markdown]
# ## Checkpoints that cannot hurt good results
#
# A checkpoint holds everything the next iteration depends on: model, optimizer (momentum buffers),
# scheduler, iteration, metrics so far, and the random number generator states (augmentation draws
# from them). It is written to a temporary file and then renamed with `os.replace`, which is atomic:
# a run killed while saving leaves the previous checkpoint intact, never half a file.
#
# Loading refuses anything that is not ours, unreadable, or made for a different model, recipe or
# seed, with a message saying what differs — a bad checkpoint must never turn into a silent fresh
# start that then overwrites the run's good results.

# %%
CHECKPOINT_FORMAT = "labml_style_src.training.recipe/checkpoint-v1"


class CheckpointError(ValueError):
    pass


def atomic_write(path: Path, write) -> None:
    # `write(tmp)` fills a temporary file next to `path`; `os.replace` then swaps it in atomically.
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model: nn.Module, recipe: Recipe, seed: int) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {path} ({type(e).__name__}: {e}). It was left as it is; "
                              f"move it away to start afresh, or use another run directory.") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a checkpoint of this training loop (expected format "
                              f"{CHECKPOINT_FORMAT!r}); refusing to resume or overwrite it")
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in state["model"].items()}
    if ours != theirs:
        diff = sorted(set(ours.items()) ^ set(theirs.items()))[:3]
        raise CheckpointError(f"{path} holds a different model (first differences: {diff})")
    saved = Recipe(**{**state["recipe"], "milestones": tuple(state["recipe"]["milestones"])})
    if replace(saved, max_iters=recipe.max_iters) != recipe or state["seed"] != seed:
        raise CheckpointError(f"{path} was made with {saved}, seed {state['seed']}; this run uses {recipe}, "
                              f"seed {seed}. Only max_iters may change on resume.")
    return state


# %% [markdown]
# ## Metrics files and plots
#
# After every epoch the whole history is written as CSV (for spreadsheets) and JSON (for code), both
# atomically. `plot_metrics` draws loss and error against iterations, training dashed and validation
# solid, the way the paper's Fig. 6 draws training and test error.

# %%
FIELDS = ("epoch", "iteration", "lr", "train_loss", "train_err", "val_loss", "val_err", "seconds")


def write_metrics(run_dir: Path, history: list) -> None:
    def write_csv(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, FIELDS)
            w.writeheader()
            w.writerows(history)

    atomic_write(run_dir / "metrics.csv", write_csv)
    atomic_write(run_dir / "metrics.json", lambda tmp: tmp.write_text(json.dumps(history, indent=1)))


def read_metrics(run_dir) -> list:
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return [{k: (int(v) if k in ("epoch", "iteration") else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]


def plot_metrics(history: list, path, title: str = ""):
    it = [r["iteration"] for r in history]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, key, label in ((axes[0], "loss", "cross-entropy"), (axes[1], "err", "error (%)")):
        ax.plot(it, [r[f"train_{key}"] for r in history], "--", label="train")
        ax.plot(it, [r[f"val_{key}"] for r in history], "-", linewidth=2, label="val")
        ax.set_xlabel("iteration")
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return fig


# %% [markdown]
# ## The loop
#
# Epochs run until the iteration budget is spent (64k iterations end in the middle of epoch 182).
# The scheduler steps once per iteration. The training error of an epoch is the running error of its
# minibatches (in training mode, on augmented images), as in the paper's curves; validation uses the
# held-out split in eval mode. A checkpoint is written at the end of every epoch; a run killed in
# the middle of an epoch resumes from the start of that epoch and — with the same seed — ends with
# exactly the same weights and metrics as a run that was never interrupted
# ([test](../tests/test_training.md#test_kill_and_resume_gives_the_same_run)).

# %%
def fit(model, batches, recipe: Recipe, run_dir, *, seed: int = 0, device=DEVICE, resume: bool = True,
        progress: bool = True, autocast_dtype=None, channels_last: bool = False, on_step=None) -> list:
    run_dir, core = Path(run_dir), getattr(model, "_orig_mod", model)  # `core`: unwrapped from torch.compile
    run_dir.mkdir(parents=True, exist_ok=True)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)  # NHWC weights and activations
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_at(it, recipe) / recipe.lr)
    path = run_dir / "checkpoint.pt"
    if path.exists():
        if not resume:
            raise FileExistsError(f"{path} exists; pass resume=True to continue it, or use a new run directory")
        state = load_checkpoint(path, core, recipe, seed)
        core.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_cpu"])
        if torch.cuda.is_available() and len(state["rng_cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        history, iteration, epoch = state["history"], state["iteration"], state["epoch"]
    else:
        torch.manual_seed(seed)
        history, iteration, epoch = [], 0, 0
    write_metrics(run_dir, history)  # the files always agree with the checkpoint
    bar = tqdm(total=recipe.max_iters, initial=iteration, disable=not progress, desc=run_dir.name, unit="it")
    while iteration < recipe.max_iters:
        start, seen = time.perf_counter(), 0
        loss_sum, wrong = torch.zeros((), device=device), torch.zeros((), device=device, dtype=torch.long)
        model.train()
        for x, y in batches.train(epoch):
            x, y = to_device(x, device, channels_last), y.to(device, non_blocking=True)
            loss, n_wrong = train_step(model, optimizer, x, y, autocast_dtype)
            scheduler.step()
            iteration, seen = iteration + 1, seen + len(y)
            loss_sum, wrong = loss_sum + loss.float() * len(y), wrong + n_wrong
            bar.update(1)
            if on_step is not None:
                on_step(iteration)
            if iteration >= recipe.max_iters:
                break
        if seen == 0:
            raise ValueError(f"the batch source gave no training batches in epoch {epoch}")
        val_loss, val_err = evaluate(model, batches.val(), device, autocast_dtype, channels_last)
        epoch += 1
        history.append(dict(epoch=epoch, iteration=iteration, lr=lr_at(iteration - 1, recipe),
                            train_loss=loss_sum.item() / seen, train_err=100 * wrong.item() / seen,
                            val_loss=val_loss, val_err=val_err, seconds=time.perf_counter() - start))
        bar.set_postfix(train_err=f"{history[-1]['train_err']:.1f}%", val_err=f"{val_err:.1f}%")
        write_metrics(run_dir, history)
        state = dict(format=CHECKPOINT_FORMAT, recipe=asdict(recipe), seed=seed, iteration=iteration, epoch=epoch,
                     history=history, model=core.state_dict(), optimizer=optimizer.state_dict(),
                     scheduler=scheduler.state_dict(), rng_cpu=torch.get_rng_state(),
                     rng_cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])
        atomic_write(path, partial(torch.save, state))  # torch.save(state, tmp)
    bar.close()
    return history


# %% [markdown]
# ## A tiny run, in seconds
#
# The default run of this page is the whole pipeline at toy scale: the digits written as a CIFAR-10
# folder by the [data page](data.md), a 297/1,200 split instead of 5k/45k, ResNet-8, minibatches
# of 64, "epochs" of 12 minibatches, 48 iterations with the lr divided at 36 and 42. It writes `runs/recipe_tiny/` with `metrics.csv`,
# `metrics.json`, `checkpoint.pt` and a plot.

# %%
if __name__ == "__main__":
    tiny = replace(PAPER, batch_size=64, milestones=(36, 42), max_iters=48, n_val=297)
    digits_as_cifar("data/digits")
    batches = cifar_batches("data/digits", tiny, verify_md5=False, max_batches=12)  # "epochs" of 12 minibatches
    x, y = next(iter(batches.train(0)))
    print("a training batch:", tuple(x.shape), x.dtype, tuple(y.shape), y.dtype)
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    torch.manual_seed(0)
    model = cifar_resnet(8)
    history = fit(model, batches, tiny, "runs/recipe_tiny", device=DEVICE)
    for row in history:
        print({k: round(v, 3) for k, v in row.items()})
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    fig = plot_metrics(read_metrics("runs/recipe_tiny"), "runs/recipe_tiny/metrics.png", "ResNet-8, digits, 48 iterations")
    plt.show()

# %% [markdown]
# Running `fit` again on the same directory resumes from the checkpoint; here the run is finished, so
# it returns at once with the same history. A damaged checkpoint stops with a clear error instead
# ([test](../tests/test_training.md#test_bad_checkpoint_is_an_error_not_a_restart)).

# %%
if __name__ == "__main__":
    again = fit(cifar_resnet(8), batches, tiny, "runs/recipe_tiny", device=DEVICE)
    assert again == history
    Path("runs/broken").mkdir(exist_ok=True)
    Path("runs/broken/checkpoint.pt").write_bytes(b"not a checkpoint")
    try:
        fit(cifar_resnet(8), batches, tiny, "runs/broken", device=DEVICE)
    except CheckpointError as e:
        print("CheckpointError:", str(e)[:100], "...")
    else:
        raise AssertionError("a corrupt checkpoint must raise")

# %% [markdown]
# ## The full-scale run
#
# With CIFAR-10 on disk (or network for `--download`) and a GPU, the paper's run is one command. It
# trains on the 45k split, validates on the 5k, resumes when run again, and uses `PAPER_RESNET110`
# (the warm-up) for depth 110 and above:
#
# ```bash
# python labml_style_src/training/recipe.py --cifar ~/data --download --depth 20 --run-dir runs/resnet20
# ```
#
# The loop reports the error on the 5k validation split; the paper's Table 6 reports error on the
# 10k *test* set (`load_cifar10(root, train=False)`), a related but different number.

# %%
def train_cifar10(root, depth: int = 20, run_dir="runs/cifar", *, download=False, seed=0, num_workers=4, **fit_kwargs):
    recipe = PAPER_RESNET110 if depth >= 110 else PAPER
    batches = cifar_batches(root, recipe, seed=seed, download=download, num_workers=num_workers)
    torch.manual_seed(seed)
    return fit(cifar_resnet(depth), batches, recipe, run_dir, seed=seed, **fit_kwargs)


# %%
if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Train a CIFAR ResNet with the paper's recipe")
    parser.add_argument("--cifar", help="folder that holds (or will hold) cifar-10-batches-py")
    parser.add_argument("--download", action="store_true")
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--run-dir", default=None)
    args, _ = parser.parse_known_args()  # "known": a notebook kernel passes its own arguments
    if args.cifar:
        rows = train_cifar10(args.cifar, args.depth, args.run_dir or f"runs/resnet{args.depth}", download=args.download)
        plot_metrics(rows, Path(args.run_dir or f"runs/resnet{args.depth}") / "metrics.png", f"ResNet-{args.depth}")

# %% [markdown]
# ## Exercises
#
# 1. **The ResNet-110 schedule (auto-checked).** Write `my_lr(iteration)` for ResNet-110: warm-up,
#    then the paper's steps. Check it with `check_lr(my_lr)`; it compares your function with
#    the recipe at the iterations where something happens (and the ones just before).
# 2. The paper's 45k images do not divide into minibatches of 128. How many images does the last
#    minibatch of an epoch hold? What would `drop_last=True` change over 182 epochs?
# 3. Kill the tiny run with Ctrl-C in the middle and run the cell again. Which epoch does it resume
#    from, and why is the result still identical to an uninterrupted run? What would break if the
#    data order came from one generator created once at the start of training?

# %%
def check_lr(my_lr) -> None:
    for it in (0, 1, 399, 400, 401, 31_999, 32_000, 32_001, 47_999, 48_000, 63_999):
        want, got = lr_at(it, PAPER_RESNET110), my_lr(it)
        if not math.isclose(got, want, rel_tol=1e-9):
            raise AssertionError(f"at iteration {it} the ResNet-110 recipe uses lr {want:g}, your function gives {got}")
    print("correct: your schedule matches the paper's ResNet-110 recipe")
