"""The degradation ablation: plain vs residual nets at two depths.

Default (the committed results: about 75 seconds on an idle 2-core CPU):

    python scripts/run_ablation.py

trains plain-20, plain-56, ResNet-20 and ResNet-56 on scikit-learn's digits at 16×16 for 20 epochs
(SGD momentum 0.9, wd 1e-4, batch 128, lr 0.01 for 3 epochs then 0.1) and writes
docs/assets/ablation/degradation.{csv,json,png}.

With CIFAR-10 and a GPU, the paper's setting (recipe of §4.2, 64k iterations):

    python scripts/run_ablation.py --cifar ~/data --download --device cuda --out runs/ablation_cifar
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labml_style_src.ablation.degradation import (  # noqa: E402
    digits_setup,
    results_table,
    run_degradation,
)
from labml_style_src.training.recipe import PAPER, cifar_batches  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "docs" / "assets" / "ablation"), help="where CSV/JSON/PNG go")
    p.add_argument("--depths", type=int, nargs="+", default=[20, 56])
    p.add_argument("--epochs", type=int, default=20, help="digits only")
    p.add_argument("--warmup-epochs", type=int, default=3, help="digits only: lr 0.01 for this many epochs")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--max-batches", type=int, default=None, help="cap minibatches per epoch (smoke tests)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads; the committed run used 2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--runs-dir", default=None, help="checkpoints (default: a fresh temporary folder)")
    p.add_argument("--cifar", default=None, help="CIFAR-10 root: run the paper's setting instead of digits")
    p.add_argument("--download", action="store_true", help="with --cifar: download CIFAR-10 if missing")
    p.add_argument("--progress", action="store_true", help="show a progress bar per model")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.cifar:
        recipe = PAPER
        batches = cifar_batches(args.cifar, recipe, seed=args.seed, download=args.download, num_workers=4,
                                max_batches=args.max_batches)
    else:
        batches, recipe = digits_setup(args.epochs, args.warmup_epochs, args.batch_size, args.max_batches, args.seed)
    runs_dir = args.runs_dir or tempfile.mkdtemp(prefix="ablation-runs-")
    start = time.perf_counter()
    run_degradation(args.out, batches, recipe, tuple(args.depths), runs_dir=runs_dir, seed=args.seed,
                    device=torch.device(args.device), progress=args.progress)
    print(results_table(Path(args.out) / "degradation.csv"))
    print(f"threads {args.threads}, total {time.perf_counter() - start:.0f} s; results in {args.out}")


if __name__ == "__main__":
    main()
