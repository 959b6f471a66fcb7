# %% [markdown]
# # The training loop: metrics, checkpoints, resume
#
# The [recipe page](recipe.md) fixed *what* to train; this page is the loop that trains it, in plain
# PyTorch: a training step, an evaluation pass, a progress bar, metrics as CSV and JSON, and checkpoints
# that survive the process being killed. No training framework: about a hundred lines you can read in one
# sitting.

# %%
import copy
import csv
import json
import os
import time
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from torch import nn
from torch.nn import functional as nnf
from tqdm.auto import tqdm

from labml_style_src.device import DEVICE
from labml_style_src.resnet_v1.cifar import cifar_resnet
from labml_style_src.training.data import digits_as_cifar
from labml_style_src.training.recipe import Recipe, cifar_batches, lr_at, make_optimizer

# %% [markdown]
# ## One training step, one evaluation pass

# %%
# A step returns tensors, not Python numbers: `.item()` every step would make a GPU wait for each step.
# `autocast_dtype=torch.bfloat16` is the mixed-precision switch of the [fast path](fast_gpu.md).
def train_step(model, optimizer, x, y, autocast_dtype=None):
    with torch.autocast(x.device.type, autocast_dtype, autocast_dtype is not None):
        logits = model(x)  # [B, classes]
        loss = nnf.cross_entropy(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), (logits.argmax(1) != y).sum()


@torch.no_grad()
def evaluate(model, batches, device, autocast_dtype=None, channels_last=False):
    # Mean loss and error (%) over a data set, in eval mode (BN's running statistics).
    model.eval()
    loss, wrong, n = 0.0, 0, 0
    for x, y in batches:
        x, y = to_device(x, device, channels_last), y.to(device)
        with torch.autocast(x.device.type, autocast_dtype, autocast_dtype is not None):
            logits = model(x).float()
        loss += nnf.cross_entropy(logits, y, reduction="sum").item()
        wrong += (logits.argmax(1) != y).sum().item()
        n += len(y)
    return loss / n, 100 * wrong / n


def to_device(x, device, channels_last):
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


# %% [markdown]
# ## Checkpoints and metrics that cannot hurt good results
#
# A checkpoint holds all the next iteration depends on: model, optimizer (momentum buffers), scheduler,
# iteration, metrics so far and the random number generator states. It is written to a temporary file and
# renamed with `os.replace`, which is atomic: a run killed while saving leaves the previous checkpoint
# intact. Loading refuses a file that is unreadable, not ours, or made for another model, recipe or seed,
# and says why: a bad checkpoint must never become a silent fresh start that overwrites good results.
#
# After every epoch the history is written as CSV and JSON, atomically too; `held_out_*` is measured on
# the recipe's evaluation images (the test set, or the 5k validation images with `n_val=5_000`).
# `plot_metrics` draws training dashed and held-out solid, as the paper's Fig. 6 draws training and test
# error.

# %%
CHECKPOINT_FORMAT = "labml_style_src.training.loop/checkpoint-v1"


class CheckpointError(ValueError):
    pass


def atomic_write(path: Path, write) -> None:
    # `write(tmp)` fills a temporary file next to `path`; `os.replace` swaps it in.
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def cuda_rng_states() -> list:
    return torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []


def load_checkpoint(path: Path, model: nn.Module, recipe: Recipe, seed: int) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {path} ({type(e).__name__}: "
                              f"{e}). It was left as it is; move it away to start "
                              f"afresh, or use another run directory.") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a checkpoint of this training loop "
                              f"(format {CHECKPOINT_FORMAT!r}); refusing to resume or "
                              f"overwrite it")
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in state["model"].items()}
    if ours != theirs:
        diff = sorted(set(ours.items()) ^ set(theirs.items()))[:3]
        raise CheckpointError(f"{path} holds a different model (differences: {diff})")
    saved = state["recipe"]
    saved = Recipe(**{**saved, "milestones": tuple(saved["milestones"])})
    if replace(saved, max_iters=recipe.max_iters) != recipe or state["seed"] != seed:
        raise CheckpointError(f"{path} was made with {saved}, seed {state['seed']}; "
                              f"this run uses {recipe}, seed {seed}. Only max_iters "
                              f"may change on resume.")
    return state


FIELDS = ("epoch", "iteration", "lr", "train_loss", "train_err", "held_out_loss",
          "held_out_err", "seconds")


def write_metrics(run_dir: Path, history: list) -> None:
    def write_csv(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, FIELDS)
            w.writeheader()
            w.writerows(history)

    atomic_write(run_dir / "metrics.csv", write_csv)
    atomic_write(run_dir / "metrics.json",
                 lambda tmp: tmp.write_text(json.dumps(history, indent=1)))


def rounded(row: dict) -> dict:  # 4 significant digits; no seconds (machine-dependent)
    return {k: float(f"{v:.4g}") if isinstance(v, float) else v
            for k, v in row.items() if k != "seconds"}


def plot_metrics(history: list, title: str, held_out: str = "test"):
    it = [r["iteration"] for r in history]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, key, label in zip(axes, ("loss", "err"), ("cross-entropy", "error (%)")):
        ax.plot(it, [r[f"train_{key}"] for r in history], "--", label="train")
        ax.plot(it, [r[f"held_out_{key}"] for r in history], lw=2, label=held_out)
        ax.set(xlabel="iteration", ylabel=label)
        ax.legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# %% [markdown]
# ## The loop
#
# Epochs run until the iteration budget is spent (with 50k images, 64k iterations end in epoch 164). An
# epoch's training error is the running error of its minibatches (training mode, augmented), as in the
# paper's curves. A run killed mid-epoch resumes from the checkpoint of the last whole epoch and, with the
# same seed, ends on CPU with bit for bit the weights and metrics of an uninterrupted run
# ([test](../tests/test_training.md#test_kill_and_resume_gives_the_same_run)).
#
# !!! note "On a GPU, identical only up to rounding"
#     Some CUDA and cuDNN backward kernels add up with atomic operations in an order that varies from run
#     to run, so on a GPU a resumed run matches an uninterrupted one only up to rounding, and
#     `torch.use_deterministic_algorithms(True)` raises an error here: global average pooling has no
#     deterministic CUDA backward (`adaptive_avg_pool2d_backward_cuda`). We have not run this on a GPU.

# %%
def fit(model, batches, recipe: Recipe, run_dir, *, seed: int = 0, device=DEVICE,
        resume: bool = True, progress: bool = True, autocast_dtype=None,
        channels_last: bool = False, on_step=None) -> list:
    run_dir, path = Path(run_dir), Path(run_dir) / "checkpoint.pt"
    run_dir.mkdir(parents=True, exist_ok=True)
    core = getattr(model, "_orig_mod", model)  # the module inside `torch.compile`
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)  # NHWC weights and activations
    optimizer, schedule = make_optimizer(model, recipe)
    history, iteration, epoch = [], 0, 0
    torch.manual_seed(seed)
    if path.exists() and not resume:
        raise FileExistsError(f"{path} exists; pass resume=True to continue it")
    if path.exists():
        state = load_checkpoint(path, core, recipe, seed)
        core.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng_cpu"])
        if len(state["rng_cuda"]) == len(cuda_rng_states()) > 0:
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        history, iteration, epoch = state["history"], state["iteration"], state["epoch"]
    write_metrics(run_dir, history)  # the files always agree with the checkpoint
    bar = tqdm(total=recipe.max_iters, initial=iteration, disable=not progress,
               desc=run_dir.name, unit="it")
    while iteration < recipe.max_iters:
        start, seen = time.perf_counter(), 0
        loss_sum, wrong = torch.zeros((), device=device), torch.zeros((), device=device)
        model.train()
        for x, y in batches.train(epoch):
            x, y = to_device(x, device, channels_last), y.to(device, non_blocking=True)
            loss, n_wrong = train_step(model, optimizer, x, y, autocast_dtype)
            schedule.step()
            iteration, seen = iteration + 1, seen + len(y)
            loss_sum, wrong = loss_sum + loss.float() * len(y), wrong + n_wrong
            bar.update(1)
            if on_step is not None:
                on_step(iteration)
            if iteration >= recipe.max_iters:
                break
        if seen == 0:
            raise ValueError(f"the batch source gave no batches in epoch {epoch}")
        held_loss, held_err = evaluate(model, batches.held_out(), device,
                                       autocast_dtype, channels_last)
        epoch += 1
        history.append(dict(
            epoch=epoch, iteration=iteration, lr=lr_at(iteration - 1, recipe),
            train_loss=loss_sum.item() / seen, train_err=100 * wrong.item() / seen,
            held_out_loss=held_loss, held_out_err=held_err,
            seconds=time.perf_counter() - start))
        bar.set_postfix(train_err=f"{history[-1]['train_err']:.1f}%",
                        held_out_err=f"{held_err:.1f}%")
        write_metrics(run_dir, history)
        state = dict(
            format=CHECKPOINT_FORMAT, recipe=asdict(recipe), seed=seed,
            iteration=iteration, epoch=epoch, history=history, model=core.state_dict(),
            optimizer=optimizer.state_dict(), scheduler=schedule.state_dict(),
            rng_cpu=torch.get_rng_state(), rng_cuda=cuda_rng_states())
        atomic_write(path, partial(torch.save, state))  # torch.save(state, tmp)
    bar.close()
    return history


# %% [markdown]
# ## A tiny run, in seconds

# %%
# The [data page](data.md)'s digits in the CIFAR-10 format (1,497 training and 300 test images), ResNet-8,
# minibatches of 64, "epochs" of 12 minibatches, 48 iterations with the lr divided at 36 and 42; it writes
# `runs/recipe_tiny/`. Running `fit` again on the same folder resumes: the run is finished, so it returns
# the same history at once. A damaged checkpoint stops with a clear error instead
# ([test](../tests/test_training.md#test_bad_checkpoint_is_an_error_not_a_restart)).
if __name__ == "__main__":
    tiny = Recipe(batch_size=64, milestones=(36, 42), max_iters=48)  # else the paper's
    digits_as_cifar("data/digits")
    batches = cifar_batches("data/digits", tiny, verify_md5=False, max_batches=12)
    torch.manual_seed(0)  # the initial weights
    history = fit(cifar_resnet(8), batches, tiny, "runs/recipe_tiny", device=DEVICE)
    print(*map(rounded, history), sep="\n")
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    again = fit(cifar_resnet(8), batches, tiny, "runs/recipe_tiny", device=DEVICE)
    assert again == history  # resumed from the checkpoint of a finished run
    plot_metrics(history, "Loss and error of ResNet-8 on 1,497 handwritten digits, "
                 "48 iterations: training (dashed) and the 300 test images (solid)")
    plt.show()

# %% [markdown]
# With CIFAR-10 on disk (or a network for `--download`) and a GPU, the paper's run is one command,
# `python scripts/train_cifar.py --cifar ~/data --download --depth 20` (these functions behind a command
# line). It trains on all 50k training images, evaluates on the 10k test images after every epoch, resumes
# when run again, and warms up (`PAPER_RESNET110`) at depth 110 and above; `--n-val 5000` selects the
# 45k/5k split.

# %% [markdown]
# ## Exercises
#
# 1. **Gradient accumulation (auto-checked).** Your GPU holds only 32 images, but the recipe says
#    minibatches of 128. Write `accumulated_step(model, optimizer, x, y, k)` that splits the minibatch
#    into `k` equal parts, runs forward and backward on each, and makes **one** SGD step equal to
#    `train_step` on the whole minibatch. `check_accumulation(accumulated_step)` compares the two on a
#    network without BatchNorm. (With BN they cannot be equal: why?)
# 2. Kill the tiny run with Ctrl-C in the middle and run the cell again. Which epoch does it resume from,
#    and why is the result still identical to an uninterrupted run? What would break if the data order
#    came from one generator created once at the start?
# 3. The paper's ResNet-110 warm-up lasts "until the training error is below 80%", not a fixed 400
#    iterations. Which lines of `fit` would change to end the warm-up on the training error, and what
#    would a checkpoint then have to store?

# %%
def check_accumulation(accumulated_step) -> None:
    torch.manual_seed(0)
    x, y = torch.randn(32, 3, 8, 8), torch.randint(0, 10, (32,))
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(288, 10))
    twin = copy.deepcopy(net)
    opt, twin_opt = (torch.optim.SGD(m.parameters(), 0.1, 0.9) for m in (net, twin))
    for _ in range(2):  # two steps: a gradient left over from the first shows up
        train_step(net, opt, x, y)
        accumulated_step(twin, twin_opt, x, y, 4)
    for (name, a), b in zip(net.named_parameters(), twin.parameters()):
        if not torch.allclose(a, b, rtol=1e-4, atol=1e-6):
            raise AssertionError(
                f"after two steps, {name} differs from two steps on whole minibatches "
                f"(by up to {(a - b).abs().max().item():.2g}). Hint: is what you "
                f"backpropagate, over all parts together, the mean loss of the whole "
                f"minibatch? Are gradients cleared once per step, or once per part?")
    print("correct: k accumulated parts make the same step as one whole minibatch")
