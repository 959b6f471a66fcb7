"""Images per second: the device-resident batches of the fast path vs a plain DataLoader, same data.

Random CIFAR-shaped data (uint8 [N, 3, 32, 32], random labels): this measures speed, not accuracy.
Each round times, one after the other, (1) the data alone from each source and (2) ResNet training
steps fed by each source; the report gives the median over rounds of each rate and of each ratio,
so that a shared or busy machine disturbs both sides alike. `--clock cpu` counts the CPU time of
this process (all its threads) instead of wall time: on a machine shared with other jobs that is
the work each side does, not how long it waited; it needs `--workers 0`, as the CPU time of
DataLoader worker processes is not counted. Not a test: timings depend on the machine and on what
else runs on it (the load average before and after is recorded).

    make bench-train                                                     # the CPU figure of the page
    python scripts/bench_training.py --device cuda --compile             # on a GPU
    python scripts/bench_training.py --device cuda --compile --full-schedule   # + 64k iterations
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labml_style_src.resnet_v1.cifar import cifar_resnet  # noqa: E402
from labml_style_src.training.fast_gpu import (  # noqa: E402
    DeviceBatches,
    PerImageDataset,
    fast_options,
    images_per_second,
)
from labml_style_src.training.loop import fit  # noqa: E402
from labml_style_src.training.recipe import PAPER, LoaderBatches, paper_transform  # noqa: E402


def synthetic(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    return images, torch.randint(0, 10, (n,), generator=g)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--depth", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--n-images", type=int, default=50_000)
    p.add_argument("--steps", type=int, default=50, help="timed steps per loop and round")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (worker start-up, cuDNN, compile)")
    p.add_argument("--workers", type=int, default=4, help="DataLoader worker processes for the plain loop")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: CPU time of this process (needs --workers 0)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model in our loop")
    p.add_argument("--no-bf16", action="store_true", help="our loop in float32 even on CUDA")
    p.add_argument("--full-schedule", action="store_true",
                   help="also time the paper's whole schedule (64k iterations on 50k images) with our loop")
    p.add_argument("--json", default=None, help="write the results here too")
    args = p.parse_args(argv)
    if args.clock == "cpu" and args.workers:
        p.error("--clock cpu needs --workers 0: worker processes' CPU time is not counted")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    images, labels = synthetic(args.n_images)
    mean = images.float().mean(0) / 255
    options = fast_options(device)
    if args.no_bf16:
        options["autocast_dtype"] = None
    plain = LoaderBatches(PerImageDataset(images, labels, paper_transform(mean, train=True)), None,
                          args.batch_size, num_workers=args.workers)
    ours = DeviceBatches(images, labels, images[:256], labels[:256], mean, args.batch_size, device=device)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    timed = dict(steps=args.steps, device=device, warmup=args.warmup, clock=clock)

    rates = {k: [] for k in ("data_dataloader", "data_ours", "train_dataloader", "train_ours")}
    load_before = os.getloadavg()
    for _ in range(args.rounds):
        rates["data_dataloader"].append(images_per_second(None, plain, **timed))
        rates["data_ours"].append(images_per_second(None, ours, **timed))
        torch.manual_seed(0)
        rates["train_dataloader"].append(images_per_second(cifar_resnet(args.depth), plain, **timed))
        torch.manual_seed(0)
        model = cifar_resnet(args.depth)
        rates["train_ours"].append(images_per_second(torch.compile(model) if args.compile else model, ours,
                                                     **timed, **options))
    results = dict(
        device=str(device), cpu=platform.processor() or platform.machine(), cpu_count=os.cpu_count(),
        clock=args.clock, threads=torch.get_num_threads(), workers=args.workers, depth=args.depth,
        batch_size=args.batch_size,
        n_images=args.n_images, steps=args.steps, rounds=args.rounds, compile=args.compile,
        bf16=options["autocast_dtype"] is not None, channels_last=options["channels_last"],
        load_average_before=load_before, load_average_after=os.getloadavg(),
        **{f"{k}_images_per_s": statistics.median(v) for k, v in rates.items()},
        data_speedup=statistics.median(o / d for o, d in zip(rates["data_ours"], rates["data_dataloader"])),
        train_speedup=statistics.median(o / d for o, d in zip(rates["train_ours"], rates["train_dataloader"])),
        rounds_images_per_s=rates,
    )

    if args.full_schedule:
        full, full_y = synthetic(60_000, seed=1)  # 50k to train on, 10k to evaluate
        batches = DeviceBatches(full[:50_000], full_y[:50_000], full[50_000:], full_y[50_000:],
                                full[:50_000].float().mean(0) / 255, PAPER.batch_size, device=device)
        torch.manual_seed(0)
        model = cifar_resnet(args.depth)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as run_dir:
            fit(torch.compile(model) if args.compile else model, batches, PAPER, run_dir, device=device,
                **options)
        results["full_schedule_seconds"] = time.perf_counter() - start

    for k, v in results.items():
        if k != "rounds_images_per_s":
            print(f"{k:>30}: {round(v, 2) if isinstance(v, float) else v}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
