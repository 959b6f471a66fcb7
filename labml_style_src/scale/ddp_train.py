# %% [markdown]
# # A data-parallel training script
#
# The [previous page](ddp.md) took the pieces of data-parallel training one at a time. Here
# they make one training function, run as a single process or as many started by `torchrun`,
# and checked on real processes: two with half the batch each train like one with all of it.

# %%
import json
import os
import shutil
import signal
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from torchvision.transforms import v2 as T
from tqdm.auto import tqdm

from labml_style_src.resnet_v1.resnet import resnet
from labml_style_src.scale.ddp import (
    BN_MODES,
    TINY_SCHEDULE,
    Dist,
    Schedule,
    SeededSamples,
    barrier,
    evaluate_on_all_ranks,
    goyal_lr,
    init_distributed,
    launch_local,
    sync_buffers,
    zero_init_last_bn_,
)
from labml_style_src.scale.imagenet import (
    PAPER_IMAGENET,
    imagenet_splits,
    mean_image,
    resized,
    small_resnet,
    write_imagenet_folder,
)
from labml_style_src.scale.imagenet2 import train_transform
from labml_style_src.training.loop import (
    CheckpointError,
    atomic_write,
    to_device,
    train_step,
)
from labml_style_src.training.recipe import SubtractMean

# %% [markdown]
# ## The script: one function for one process or many
#
# `train` is what `scripts/train_ddp.py` calls; under `torchrun` every process runs it, and
# the progress bar is rank 0's. Only rank 0 writes checkpoints (all ranks hold the same
# weights), to a temporary file renamed into place, so a crash never leaves half a checkpoint;
# a barrier keeps the others from running ahead. A restarted run is started the same way, and
# *every* rank loads the checkpoint. Since the data order and the augmentation are functions
# of the epoch, a run killed in the middle of an epoch and restarted ends with the same
# weights as one that was never interrupted
# ([test](../tests/test_scale.md#test_killed_and_resumed_run_ends_with_the_same_weights)).

# %%
ARCHS = {"small": small_resnet,  # name -> function of the number of classes
         **{str(depth): lambda k, depth=depth: resnet(depth, k) for depth in (18, 50)}}


@dataclass(frozen=True)
class RunConfig:
    data: str = "data/patterns-imagenet"
    run_dir: str = "runs/ddp"
    epochs: int = 3
    batch_size: int = 32  # per process: Goyal et al.'s n
    image_scale: float = 0.25  # times the paper's image sizes
    arch: str = "small"  # a key of ARCHS
    schedule: Schedule = field(default_factory=lambda: TINY_SCHEDULE)
    bn: str = "train"  # a key of BN_MODES
    zero_gamma: bool = True
    seed: int = 0
    device: str = "cpu"
    bf16: bool = False
    channels_last: bool = False
    workers: int = 0
    mean_images: int = 10_000
    progress: bool = True
    die_at_step: int = 0  # > 0: every rank kills itself after this step (a crash)


FREE_TO_CHANGE = {"data", "run_dir", "epochs", "workers", "mean_images", "progress",
                  "die_at_step"}
CHECKPOINT = "labml_style_src.scale.ddp/checkpoint-v1"


def resume(path: Path, cfg: RunConfig, d: Dist, model, optimizer) -> tuple:
    if not path.exists():
        return [], 0
    try:
        state = torch.load(path, map_location=d.device, weights_only=True)
    except Exception as e:  # never a silent fresh start over a run's checkpoint
        raise CheckpointError(f"cannot read {path} ({type(e).__name__}); move it "
                              "away to start afresh") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT:
        raise CheckpointError(f"{path} is not a checkpoint of this script")
    ours = {k: v for k, v in asdict(cfg).items() if k not in FREE_TO_CHANGE}
    theirs = {k: v for k, v in state["config"].items() if k not in FREE_TO_CHANGE}
    if ours != theirs or state["world_size"] != d.world_size:
        changed = sorted(k for k in ours if ours[k] != theirs.get(k))
        raise CheckpointError(f"{path} was made by a different run (changed: "
                              f"{changed}, world size {state['world_size']} -> "
                              f"{d.world_size})")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["history"], state["epoch"]


# %%
def train(cfg: RunConfig) -> list:
    d = init_distributed(cfg.device)
    try:
        return fit_distributed(cfg, d)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def fit_distributed(cfg: RunConfig, d: Dist) -> list:
    recipe, run_dir = PAPER_IMAGENET.scaled(cfg.image_scale), Path(cfg.run_dir)
    train_set, val_set = imagenet_splits(cfg.data)
    if d.is_main and not (run_dir / "mean.pt").exists():  # once-only work, by rank 0
        run_dir.mkdir(parents=True, exist_ok=True)
        mean = mean_image(train_set, recipe.crop, cfg.mean_images)
        atomic_write(run_dir / "mean.pt", partial(torch.save, mean))
    barrier(d)
    mean = torch.load(run_dir / "mean.pt", weights_only=True)
    samples = SeededSamples(train_set, train_transform(recipe, mean), cfg.seed)
    centre = T.Compose([resized(recipe.test_resize), T.CenterCrop(recipe.crop)])
    val_set.transform = T.Compose([centre, SubtractMean(mean)])  # one central crop
    torch.manual_seed(cfg.seed)
    convert, set_train_mode = BN_MODES[cfg.bn]
    model = ARCHS[cfg.arch](len(train_set.classes))
    if cfg.zero_gamma:
        zero_init_last_bn_(model)
    model = convert(model).to(d.device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    gpu = [d.local_rank] if d.device.type == "cuda" else None
    net = DistributedDataParallel(model, gpu) if d.world_size > 1 else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)  # lr set at each step
    sampler = DistributedSampler(samples, d.world_size, d.rank, seed=cfg.seed)
    loader = DataLoader(samples, cfg.batch_size, sampler=sampler, drop_last=True,
                        num_workers=cfg.workers, pin_memory=d.device.type == "cuda")
    history, first_epoch = resume(run_dir / "checkpoint.pt", cfg, d, model, optimizer)
    step, total_batch = first_epoch * len(loader), cfg.batch_size * d.world_size
    autocast = torch.bfloat16 if cfg.bf16 else None
    for epoch in range(first_epoch, cfg.epochs):
        sampler.set_epoch(epoch)  # a new order every epoch
        samples.epoch = epoch
        set_train_mode(net)
        sums = torch.zeros(3, dtype=torch.float64, device=d.device)  # loss, wrong, n
        show = cfg.progress and d.is_main  # one progress bar: rank 0's
        for x, y in tqdm(loader, f"epoch {epoch + 1}/{cfg.epochs}", disable=not show):
            lr = goyal_lr(step, len(loader), total_batch, cfg.schedule)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = to_device(x, d.device, cfg.channels_last), y.to(d.device)
            loss, wrong = train_step(net, optimizer, x, y, autocast)
            n = torch.tensor(len(y), device=d.device)
            sums += torch.stack([loss * n, wrong, n]).double()
            step += 1
            if step == cfg.die_at_step:
                os.kill(os.getpid(), signal.SIGKILL)  # a crash, for the resume test
        if d.world_size > 1:
            dist.all_reduce(sums)  # the epoch's training loss over all ranks
        sync_buffers(model, d)
        loss, wrong, n = sums.tolist()
        row = dict(epoch=epoch + 1, step=step, lr=lr, train_loss=loss / n,
                   train_err=100 * wrong / n)
        row.update(evaluate_on_all_ranks(model, val_set, 2 * cfg.batch_size, d,
                                         autocast, cfg.channels_last))
        history.append(row)
        if show:
            print({k: round(v, 4) for k, v in row.items()})
        if d.is_main:
            state = dict(format=CHECKPOINT, config=asdict(cfg), world_size=d.world_size,
                         epoch=epoch + 1, history=history, model=model.state_dict(),
                         optimizer=optimizer.state_dict())
            atomic_write(run_dir / "checkpoint.pt", partial(torch.save, state))
            metrics = partial(Path.write_text, data=json.dumps(history, indent=1))
            atomic_write(run_dir / "metrics.json", metrics)
        barrier(d)
    return history


# %% [markdown]
# ## Launching it
#
# One machine, two processes on the CPU with gloo: `make ddp-demo` runs
# `torchrun --standalone --nproc_per_node 2 scripts/train_ddp.py` on generated data. One
# machine with 8 GPUs (NCCL), ResNet-50 at the paper's image sizes, 32 images per GPU:
#
# ```bash
# torchrun --standalone --nproc_per_node 8 scripts/train_ddp.py --data /data/imagenet \\
#     --device cuda --arch 50 --image-scale 1 --batch-size 32 --epochs 90 \\
#     --warmup-epochs 5 --milestones 30 60 80 --workers 8 --bf16 --channels-last
# ```
#
# Several machines: the same command on every machine, with `--nnodes` and a rendezvous
# endpoint that all of them reach (a host and a free port of one of them) and a run id:
#
# ```bash
# torchrun --nnodes 4 --nproc_per_node 8 --rdzv-backend c10d \\
#     --rdzv-endpoint node0.example.org:29500 --rdzv-id resnet50-run1 \\
#     scripts/train_ddp.py --data /data/imagenet --device cuda --arch 50 --image-scale 1
# ```
#
# With SLURM, `srun` starts one `torchrun` per node, and `torchrun` starts the 8 processes.
# A batch script for `sbatch job.sh` (its first line is `#!/bin/bash`):
#
# ```bash
# #SBATCH --nodes=4
# #SBATCH --ntasks-per-node=1
# #SBATCH --gpus-per-node=8
# #SBATCH --cpus-per-task=64
# head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
# srun torchrun --nnodes "$SLURM_NNODES" --nproc_per_node 8 \\
#     --rdzv-backend c10d --rdzv-endpoint "$head:29500" --rdzv-id "$SLURM_JOB_ID" \\
#     scripts/train_ddp.py --data /data/imagenet --device cuda --arch 50 --image-scale 1
# ```
#
# A restarted job resumes from `runs/.../checkpoint.pt`. These command lines are not run here:
# this page's tests run the one-machine CPU form through the real `torchrun`.
#
# How fast is it? `make bench-ddp` measures training images per second with 1 and 2 CPU
# processes; `python scripts/bench_ddp.py --device cuda --nprocs 1 --arch 50 --image-size 224
# --bf16 --channels-last` measures ResNet-50 on one GPU. Two CPU processes share the cores of
# one process with two threads, so expect little: data parallelism buys more devices, not
# more of one device.

# %% [markdown]
# ## Running it here: one process, then two
#
# A notebook cannot be started by `torchrun`, so the demo starts its processes with
# [`launch_local`](ddp.md#one-process-per-device-what-torchrun-provides); the training code is
# the same. 2 processes of 8 images against 1 process of 16, first with BN frozen (running
# averages, no batch statistics): the weights agree to rounding. Then with BN in training
# mode: they do not ([why](ddp.md#the-gradient-all-reduce-is-a-mean)).

# %%
def final_weights(run_dir) -> dict:
    return torch.load(Path(run_dir) / "checkpoint.pt", weights_only=True)["model"]


def max_difference(a: dict, b: dict) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in a if a[k].is_floating_point())


if __name__ == "__main__":
    data = write_imagenet_folder("data/patterns-imagenet-16", n_train=16, n_val=4)
    demo = RunConfig(data=str(data), epochs=2, batch_size=8, progress=False)
    for bn in ("frozen", "train"):
        one, two = (replace(demo, bn=bn, run_dir=f"runs/ddp-{bn}-{k}")
                    for k in ("one", "two"))
        for cfg in (one, two):
            shutil.rmtree(cfg.run_dir, ignore_errors=True)
        train(replace(one, batch_size=2 * demo.batch_size))  # this process, batch 2b
        launch_local(train, 2, two)  # 2 processes, batch b each
        gap = max_difference(final_weights(one.run_dir), final_weights(two.run_dir))
        print(f"BN {bn}: 1 process × 16 images vs 2 processes × 8: largest difference "
              f"in the final model state {gap:.2e}")
        for row in json.loads(Path(two.run_dir, "metrics.json").read_text()):
            print("   ", {k: round(v, 4) for k, v in row.items()})
        assert gap < 1e-5 if bn == "frozen" else gap > 1e-3

# %% [markdown]
# ## Exercises
#
# 1. **Steps per epoch (auto-checked).** Write `my_steps(n_images, k, n)`: how many iterations
#    one epoch of the script takes with `k` processes of `n` images each (its sampler pads,
#    its loader drops the last incomplete batch); run `check_steps_per_epoch(my_steps)`.
# 2. Delete `sampler.set_epoch(epoch)` and run the 2-process demo for 3 epochs. Which test of
#    this chapter fails, and what would a real ImageNet run lose?
# 3. Make the script save a checkpoint every 100 steps instead of once per epoch. What must the
#    checkpoint then hold so that a resumed run still ends with the same weights?

# %%
def check_steps_per_epoch(my_steps) -> None:
    for n_images, k, n in ((9, 2, 2), (10, 4, 3), (100, 3, 7), (1_281_167, 256, 32)):
        sampler = DistributedSampler(range(n_images), k, 0)
        want = len(DataLoader(range(n_images), n, sampler=sampler, drop_last=True))
        if my_steps(n_images, k, n) != want:
            raise AssertionError(
                f"{n_images} images, {k} processes of {n}: not the loader's length; "
                "how many indices does each rank get, what happens to the last batch?")
    print("correct: your count is the loader's")
