# %% [markdown]
# # Data-parallel training with DDP and torchrun
#
# One process per device, each with a full copy of the model and its own share of every
# batch; after each backward pass the processes average their gradients, so every copy takes
# the same step. This page takes PyTorch's pieces for it one at a time (`torch.distributed`,
# `DistributedDataParallel`, `DistributedSampler`, `torchrun`), with the rules of Goyal et
# al. 2017, "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour" (arXiv:1706.02677);
# the [next page](ddp_train.md) puts them into one training script run on real processes.

# %%
import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from labml_style_src.resnet_v1.resnet import resnet
from labml_style_src.scale.batchnorm import BN_TYPES
from labml_style_src.training.loop import evaluate

# %% [markdown]
# ## One process per device: what `torchrun` provides
#
# `torchrun --nproc_per_node N script.py` starts `N` copies of the script on each machine and
# gives each one environment variables: `RANK` (its number among all processes, from 0),
# `LOCAL_RANK` (its number on this machine: which GPU it takes), `WORLD_SIZE` (how many
# processes in all) and `MASTER_ADDR` / `MASTER_PORT` (where they meet).
# `init_process_group(backend)` reads them. NCCL moves CUDA tensors between GPUs; gloo
# moves CPU tensors. Without these variables the script is a single process and never
# creates a process group ([test](../tests/test_scale.md#test_single_process_when_not_launched_by_torchrun)).

# %%
@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "cpu") -> Dist:
    if "WORLD_SIZE" not in os.environ:  # not launched by torchrun
        return Dist(device=torch.device(device))
    rank, local_rank, world_size = (int(os.environ[k])
                                    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
    if device == "cuda":
        torch.cuda.set_device(local_rank)  # one GPU per process
    here = torch.device("cuda", local_rank) if device == "cuda" else torch.device("cpu")
    # The default `env://` rendezvous: reads MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE.
    dist.init_process_group("nccl" if here.type == "cuda" else "gloo")
    return Dist(rank, world_size, local_rank, here)


def barrier(d: Dist) -> None:
    if d.world_size > 1:
        dist.barrier()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_rank(rank: int, world_size: int, port: int, fn, args) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)  # the processes share the CPU cores
    fn(*args)


def launch_local(fn, nprocs: int, *args) -> None:
    # For notebooks and tests, which `torchrun` cannot start: `fn(*args)` in `nprocs`
    # forked processes, each with the variables `torchrun` would give it.
    torch.multiprocessing.start_processes(_as_rank, (nprocs, free_port(), fn, args),
                                          nprocs=nprocs, start_method="fork")


# %% [markdown]
# ## Goyal et al.: learning rate, warm-up, and the last BN of each block
#
# > "Linear Scaling Rule: When the minibatch size is multiplied by k, multiply the learning rate
# > by k." — Goyal et al. 2017, §2.1
#
# With $k$ workers of $n$ images each they use $\eta = 0.1 \cdot kn/256$ (§5.1): $0.1$ for
# He et al.'s batch of 256, $3.2$ for $kn = 8192$. Early in training the rule breaks down, so
# they warm up gradually (§2.2): "we start from a learning rate of η and increment it by a
# constant amount at each iteration such that it reaches η̂ = kη after 5 epochs". Then the
# schedule divides the rate by 10 at epochs 30, 60 and 80 of 90 (§5.1)
# ([test](../tests/test_scale.md#test_linear_scaling_and_warmup_values)).
#
# > "For BN layers, the learnable scaling coefficient γ is initialized to be 1, except for each
# > residual block's last BN where γ is initialized to be 0." — Goyal et al. 2017, §5.1
#
# With $\gamma = 0$ (and $\beta = 0$) the last BN outputs zeros, so $F(x) = 0$ and each block
# computes $\sigma(0 + W_s x)$: the identity where the shortcut is the identity, since the
# input of every block comes out of a ReLU ($x \ge 0$)
# ([test](../tests/test_scale.md#test_zero_gamma_makes_every_block_its_shortcut)).

# %%
@dataclass(frozen=True)
class Schedule:
    base_lr: float = 0.1  # η for a total batch of `base_batch`
    base_batch: int = 256
    warmup_epochs: float = 5
    milestones: tuple = (30, 60, 80)  # epochs; lr ÷ 10 at each


# For the small demos of this chapter: lr 0.1 at a total batch of 64.
TINY_SCHEDULE = Schedule(base_lr=0.1, base_batch=64, warmup_epochs=1, milestones=(3,))


def reference_lr(total_batch: int, s: Schedule) -> float:
    return s.base_lr * total_batch / s.base_batch  # η = 0.1 · kn / 256


def goyal_lr(step: int, steps_per_epoch: int, total_batch: int, s: Schedule) -> float:
    epoch = step / steps_per_epoch  # fractional: the warm-up moves at every iteration
    peak = reference_lr(total_batch, s)
    if epoch < s.warmup_epochs:  # a straight line from η (or η̂ if smaller) to η̂
        start = min(s.base_lr, peak)
        return start + (peak - start) * epoch / s.warmup_epochs
    return peak * 0.1 ** sum(epoch >= m for m in s.milestones)


def zero_init_last_bn_(model: nn.Module) -> int:
    # γ = 0 in the last BN of every residual branch `F`; returns the number of blocks.
    blocks = [m for m in model.modules()
              if isinstance(getattr(m, "F", None), nn.Sequential)]
    for block in blocks:
        nn.init.zeros_([m for m in block.F if isinstance(m, BN_TYPES)][-1].weight)
    return len(blocks)


# %%
if __name__ == "__main__":
    goyal, per_epoch = Schedule(), 1_281_167 // 8192  # iterations per epoch at kn = 8k
    for epoch in (0, 1, 2.5, 5, 29.9, 30, 60, 80):
        lr = goyal_lr(round(epoch * per_epoch), per_epoch, 256 * 32, goyal)
        print(f"k = 256 workers × n = 32: epoch {epoch:>4}: lr {lr:.4g}")
    assert reference_lr(256 * 32, goyal) == 3.2 and reference_lr(8 * 32, goyal) == 0.1
    net = resnet(50).train()
    print("zero-γ blocks in ResNet-50:", zero_init_last_bn_(net))
    block = net.stages.conv3_x[1]  # identity shortcut
    x = torch.relu(torch.randn(2, 512, 28, 28))
    assert torch.equal(block(x), x)

# %% [markdown]
# ## Every process its own share: `DistributedSampler` and `set_epoch`
#
# `DistributedSampler` shuffles the indices of the whole data set with a generator seeded by
# `seed + epoch`, then gives rank $r$ the positions $r, r + k, r + 2k, …$, padding with the
# first indices when the count does not divide. All ranks compute the same permutation, so
# one epoch covers every sample once: the single shuffle per epoch of Goyal et al.'s Remark 4.
# **Call `sampler.set_epoch(epoch)`** at the start of every epoch, or every epoch has the
# same order ([test](../tests/test_scale.md#test_sampler_without_set_epoch_repeats_the_order)).
# Augmentation is drawn per image from a generator seeded by (seed, epoch, index): an image
# gets the same crop whichever process loads it, and a resumed run redraws the same ones.

# %%
class SeededSamples(Dataset):
    def __init__(self, images, transform, seed: int = 0):
        self.images, self.transform, self.seed, self.epoch = images, transform, seed, 0

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image, label = self.images[i]
        with torch.random.fork_rng(devices=[]):  # leaves the global generator alone
            torch.manual_seed((self.seed * 1_000_003 + self.epoch) * 10_000_019 + i)
            return self.transform(image), label


# %%
if __name__ == "__main__":
    # No process group is needed to look at a sampler: pass the rank and world size.
    shards = [DistributedSampler(range(10), num_replicas=4, rank=r) for r in range(4)]
    for epoch in (0, 1):
        for s in shards:
            s.set_epoch(epoch)
        print(f"epoch {epoch}, 10 samples on 4 ranks:", [list(s) for s in shards])

# %% [markdown]
# ## The gradient all-reduce is a mean
#
# `DistributedDataParallel` copies rank 0's parameters and buffers to every rank when it is
# built. In backward it sums each gradient over the ranks (in buckets, while the rest of the
# backward pass runs) and divides by the world size
# ([test](../tests/test_scale.md#test_ddp_copies_rank_0_averages_gradients_and_syncs_buffers)).
# With equal per-rank batches, that is the gradient of the mean loss over all $kn$ images
# (Goyal et al.'s Remark 3), so two processes with batch $b$ take exactly the steps of one
# process with batch $2b$, up to rounding, *if no layer looks at other images of the batch*
# ([test](../tests/test_scale.md#test_ddp_matches_one_process_with_twice_the_batch)).
# BatchNorm in training mode does: each rank normalises with statistics of its own $b$
# images, not of $2b$, so the two runs differ
# ([test](../tests/test_scale.md#test_ddp_with_batchnorm_in_train_mode_differs)).
# `SyncBatchNorm` (GPUs only) computes them over all ranks, which should make the runs equal
# again; [its test](../tests/test_scale.md#test_syncbn_matches_one_process_on_cuda) needs two
# GPUs and is skipped elsewhere.
#
# DDP also sends rank 0's buffers (BN's running averages) to the other ranks at the start
# of every training forward, so after the last step each rank's buffers still hold its own
# last update. `sync_buffers` sends rank 0's once more before evaluating or saving
# ([test](../tests/test_scale.md#test_ddp_copies_rank_0_averages_gradients_and_syncs_buffers)).

# %%
def train_all(model):
    model.train()


def train_with_frozen_bn(model):
    # BN normalises with its running averages: no dependence on the rest of the batch.
    model.train()
    for m in model.modules():
        if isinstance(m, BN_TYPES):
            m.eval()


BN_MODES = {  # name -> (how to convert the model, how to put it in training mode)
    "train": (lambda m: m, train_all),
    "frozen": (lambda m: m, train_with_frozen_bn),
    "sync": (nn.SyncBatchNorm.convert_sync_batchnorm, train_all),
}


def sync_buffers(model: nn.Module, d: Dist) -> None:
    if d.world_size > 1:
        for b in model.buffers():
            dist.broadcast(b, src=0)


# %% [markdown]
# ## Evaluation that counts every image once
#
# The sampler's padding is harmless in training but skews a metric: with 9 test images on 2
# ranks it would score one image twice. Here each rank takes the positions
# $r, r + k, …$ without padding, and the ranks add up their (loss, errors, count) with one
# `all_reduce`, so the metric is over exactly the test set
# ([test](../tests/test_scale.md#test_distributed_evaluation_counts_every_image_once)).

# %%
def evaluate_on_all_ranks(model, val_set, batch_size: int, d: Dist, autocast_dtype=None,
                          channels_last: bool = False) -> dict:
    shard = Subset(val_set, range(d.rank, len(val_set), d.world_size))  # no padding
    n = len(shard)
    # The training chapter's `evaluate` on this rank's share: mean loss and error (%).
    loss, err = evaluate(model, DataLoader(shard, batch_size), d.device, autocast_dtype,
                         channels_last) if n else (0.0, 0.0)
    sums = torch.tensor([loss * n, err * n / 100, n], dtype=torch.float64,
                        device=d.device)  # NCCL reduces tensors on the GPU
    if d.world_size > 1:
        dist.all_reduce(sums)  # over ranks: total loss, wrong answers, images
    loss, wrong, n = sums.tolist()
    return dict(val_loss=loss / n, val_err=100 * round(wrong) / n, val_images=round(n))


# %% [markdown]
# ## Exercises
#
# 1. **Warm-up (auto-checked).** Write `my_lr(step)` for 256 workers of 32 images on ImageNet
#    (156 iterations per epoch): gradual warm-up, then the step schedule; run
#    `check_goyal_lr(my_lr)`.
# 2. **Shards (auto-checked).** Write `my_shard(n, k, r)`: the indices that rank `r` of `k`
#    gets from `DistributedSampler(range(n), k, r, shuffle=False)`, padding included; run
#    `check_shard(my_shard)`.
# 3. Goyal et al. apply no weight decay to BN's $\gamma$ and $\beta$ (§5.1). Give the optimizer
#    two parameter groups to do the same, and check the number of parameters in each.

# %%
def check_goyal_lr(my_lr) -> None:
    steps, s = 1_281_167 // 8192, Schedule()
    for epoch in (0, 0.5, 1, 4.99, 5, 6, 29.99, 30, 59, 60, 80, 89):
        step = round(epoch * steps)
        want, got = goyal_lr(step, steps, 256 * 32, s), my_lr(step)
        if abs(got - want) > 1e-9 * max(1, want):
            raise AssertionError(
                f"at step {step} (epoch {epoch}) your lr is {got}; the warm-up is a "
                "straight line over 5 epochs from the 256-image rate to the scaled one")
    print("correct: your schedule is Goyal et al.'s")


def check_shard(my_shard) -> None:
    for n, k in ((10, 4), (9, 2), (8, 8), (3, 5)):
        for r in range(k):
            want = list(DistributedSampler(range(n), k, r, shuffle=False))
            if list(my_shard(n, k, r)) != want:
                raise AssertionError(
                    f"n={n}, k={k}, rank {r}: not the sampler's indices; how many does "
                    "each rank get, and where does the padding come from?")
    print("correct: your shards are DistributedSampler's")
