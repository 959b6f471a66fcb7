"""The paper's CIFAR-10 run (He et al. 2015, §4.2): the `fit` loop of
labml_style_src/training/loop.py with the recipe of labml_style_src/training/recipe.py, behind a
command line.

    python scripts/train_cifar.py --cifar ~/data --download --depth 20   # Table 6's setting
    python scripts/train_cifar.py --cifar ~/data --depth 20 --n-val 5000  # the 45k/5k split

It trains on all 50k training images and evaluates on the 10k test images after every epoch
(`--n-val 5000`: on 5k images held out of the training set), warms up (PAPER_RESNET110) at depth
110 and above, and writes runs/resnet<depth>[-val]/ (metrics.csv, metrics.json, metrics.png,
checkpoint.pt). Running the same command again resumes from the checkpoint.
"""

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labml_style_src.resnet_v1.cifar import cifar_resnet  # noqa: E402
from labml_style_src.training.loop import fit, plot_metrics  # noqa: E402
from labml_style_src.training.recipe import PAPER, PAPER_RESNET110, cifar_batches  # noqa: E402


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar", required=True, help="folder with (or to get) cifar-10-batches-py")
    parser.add_argument("--download", action="store_true")
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--n-val", type=int, default=0, help="5000: the 45k/5k split")
    args = parser.parse_args(argv)
    recipe = PAPER_RESNET110 if args.depth >= 110 else PAPER  # warm-up from 110 on
    recipe = replace(recipe, n_val=args.n_val)
    batches = cifar_batches(args.cifar, recipe, download=args.download, num_workers=4)
    run_dir = Path(f"runs/resnet{args.depth}" + ("-val" if args.n_val else ""))
    torch.manual_seed(0)  # the initial weights
    rows = fit(cifar_resnet(args.depth), batches, recipe, run_dir)
    held_out = "5k validation images" if args.n_val else "test set"
    fig = plot_metrics(rows, f"ResNet-{args.depth} on CIFAR-10", held_out)
    fig.savefig(run_dir / "metrics.png", dpi=100)
    return rows


if __name__ == "__main__":
    main()
