"""Images per second: our device-resident loop vs a plain DataLoader loop, same model, same data.

Synthetic CIFAR-shaped data (uint8 [N, 3, 32, 32], random labels): this measures speed, not accuracy.
Not a test: timings depend on the machine and on what else runs on it.

    python scripts/bench_training.py --device cpu --n-images 1024 --steps 8        # CPU, seconds
    python scripts/bench_training.py --device cuda --compile                       # GPU
    python scripts/bench_training.py --device cuda --compile --full-schedule       # 64k iterations, ResNet-20
"""

import argparse
import json
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
from labml_style_src.training.recipe import PAPER, LoaderBatches, fit, paper_transform  # noqa: E402


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
    p.add_argument("--steps", type=int, default=50, help="timed steps per loop")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (cuDNN autotune, compile)")
    p.add_argument("--workers", type=int, default=4, help="DataLoader worker processes for the plain loop")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--compile", action="store_true", help="torch.compile the model in our loop")
    p.add_argument("--no-bf16", action="store_true", help="our loop in float32 even on CUDA")
    p.add_argument("--full-schedule", action="store_true",
                   help="also time the paper's whole ResNet schedule (64k iterations, 45k/5k) with our loop")
    p.add_argument("--json", default=None, help="write the results here too")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    images, labels = synthetic(args.n_images)
    mean = images.float().mean(0) / 255
    results = dict(device=str(device), depth=args.depth, batch_size=args.batch_size, n_images=args.n_images,
                   steps=args.steps, threads=torch.get_num_threads(), workers=args.workers, compile=args.compile)

    torch.manual_seed(0)
    plain = LoaderBatches(PerImageDataset(images, labels, paper_transform(mean, train=True)), None,
                          args.batch_size, num_workers=args.workers)
    results["dataloader_images_per_s"] = images_per_second(cifar_resnet(args.depth), plain, args.steps,
                                                           device=device, warmup=args.warmup)

    options = fast_options(device)
    if args.no_bf16:
        options["autocast_dtype"] = None
    results.update(bf16=options["autocast_dtype"] is not None, channels_last=options["channels_last"])
    torch.manual_seed(0)
    model = cifar_resnet(args.depth)
    ours = DeviceBatches(images, labels, images[:256], labels[:256], mean, args.batch_size, device=device)
    results["ours_images_per_s"] = images_per_second(torch.compile(model) if args.compile else model, ours,
                                                     args.steps, device=device, warmup=args.warmup, **options)
    results["speedup"] = results["ours_images_per_s"] / results["dataloader_images_per_s"]

    if args.full_schedule:
        n_val = PAPER.n_val
        full, full_y = synthetic(45_000 + n_val, seed=1)
        batches = DeviceBatches(full[:45_000], full_y[:45_000], full[45_000:], full_y[45_000:],
                                full[:45_000].float().mean(0) / 255, PAPER.batch_size, device=device)
        torch.manual_seed(0)
        model = cifar_resnet(args.depth)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as run_dir:
            fit(torch.compile(model) if args.compile else model, batches, PAPER, run_dir, device=device, **options)
        results["full_schedule_seconds"] = time.perf_counter() - start

    for k, v in results.items():
        print(f"{k:>26}: {round(v, 1) if isinstance(v, float) else v}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
