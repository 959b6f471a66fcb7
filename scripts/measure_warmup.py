"""What does the 0.01 warm-up change? Training loss, iteration by iteration, with and without it.

The setting is the small digits problem of the ablation chapter (16×16 inputs, batch 128, SGD with
lr 0.1, momentum 0.9, weight decay 1e-4): `digits_setup(epochs=3, warmup_epochs=W)` with W = 0 (lr 0.1
from the first step) or W = 3 (lr 0.01 for all 36 iterations measured), for plain and residual nets
at 20 and 56 layers, seeds 0, 1, 2. One CPU thread, so the numbers repeat on the same machine.

    python scripts/measure_warmup.py      # about 6 minutes of one CPU core

writes docs/assets/training/warmup.csv (one row per iteration) and warmup.png.
"""

import argparse
import csv
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dataclasses import replace  # noqa: E402

from torch.nn import functional as nnf  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from labml_style_src.ablation.degradation import plain_cifar  # noqa: E402
from labml_style_src.resnet_v1.cifar import cifar_resnet  # noqa: E402
from labml_style_src.training.loop import train_step  # noqa: E402
from labml_style_src.training.recipe import PAPER, LoaderBatches, make_optimizer  # noqa: E402


def digits_16(n_test: int = 297, seed: int = 0):
    """scikit-learn's digits at 16×16 (bilinear from 8×8), 3 channels, normalised; 297 held out. The data of the
    committed measurement (the ablation chapter itself now trains on the digits at 8×8)."""
    from sklearn.datasets import load_digits  # ships with scikit-learn: no download

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32)[:, None]  # [1797, 1, 8, 8], values 0..16
    x = nnf.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(), x[train].std()
    return (x[train] - mean) / std, y[train], (x[test] - mean) / std, y[test]


def digits_setup(epochs=20, warmup_epochs=3, batch_size=128, seed=0):
    """The paper's optimiser (SGD, momentum 0.9, wd 1e-4, batch 128); lr 0.01 for `warmup_epochs`, then 0.1."""
    x_train, y_train, x_test, y_test = digits_16(seed=seed)
    batches = LoaderBatches(TensorDataset(x_train, y_train), TensorDataset(x_test, y_test), batch_size, seed)
    steps = -(-len(x_train) // batch_size)
    recipe = replace(PAPER, batch_size=batch_size, milestones=(), max_iters=epochs * steps,
                     warmup_lr=0.01, warmup_iters=warmup_epochs * steps, n_val=len(x_test))
    return batches, recipe


BUILDERS = {"plain": plain_cifar, "ResNet": cifar_resnet}
EPOCHS = 3  # 36 iterations of 128 images: the length of the ablation's warm-up
FIELDS = ("kind", "depth", "warmup_iters", "seed", "iteration", "lr", "loss", "err")


def run_one(kind: str, depth: int, warmup_epochs: int, seed: int, iters: int | None = None):
    """One run's rows: the loss and error (%) of each training minibatch, before its SGD step."""
    batches, recipe = digits_setup(epochs=EPOCHS, warmup_epochs=warmup_epochs, seed=seed)
    torch.manual_seed(seed)
    model = BUILDERS[kind](depth).train()
    optimizer, schedule = make_optimizer(model, recipe)
    rows, iteration = [], 0
    for epoch in range(EPOCHS):
        for x, y in batches.train(epoch):
            lr = optimizer.param_groups[0]["lr"]
            loss, wrong = train_step(model, optimizer, x, y)
            schedule.step()
            iteration += 1
            rows.append(dict(kind=kind, depth=depth, warmup_iters=recipe.warmup_iters,
                             seed=seed, iteration=iteration, lr=lr, loss=loss.item(),
                             err=100 * wrong.item() / len(y)))
            if iteration == iters:
                return rows
    return rows


def read_rows(path) -> list:
    with open(path, newline="") as f:
        return [{k: v if k == "kind" else float(v) if k in ("lr", "loss", "err") else int(v)
                 for k, v in row.items()} for row in csv.DictReader(f)]


def summary(rows) -> dict:
    """(kind, depth, warmup_iters) -> largest loss of any seed, and each seed's loss at the end."""
    out = {}
    for r in rows:
        key = (r["kind"], r["depth"], r["warmup_iters"])
        peak, last = out.setdefault(key, (0.0, {}))
        last[r["seed"]] = r["loss"]  # rows are in iteration order
        out[key] = (max(peak, r["loss"]), last)
    return {k: (peak, sorted(last.values())) for k, (peak, last) in out.items()}


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(13, 3.2), sharey=True)
    panels = [(k, d) for k in BUILDERS for d in (20, 56)]
    for ax, (kind, depth) in zip(axes, panels):
        for warm, color in ((0, "tab:red"), (36, "tab:blue")):
            for seed in (0, 1, 2):
                mine = [r for r in rows if (r["kind"], r["depth"], r["warmup_iters"],
                                            r["seed"]) == (kind, depth, warm, seed)]
                ax.plot([r["iteration"] for r in mine], [r["loss"] for r in mine], color=color,
                        alpha=0.8, label=("lr 0.1 from the start" if not warm else
                                          "0.01 warm-up") if seed == 0 else None)
        ax.axhline(2.302585, color="grey", linestyle=":", linewidth=1)  # ln 10: chance
        ax.set(title=f"{kind}-{depth}", xlabel="iteration", yscale="log")
    axes[0].set_ylabel("training loss (minibatch)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Training loss in the first 36 iterations on 16×16 digits, 3 seeds each: "
                 "lr 0.1 from the start (red) vs a 0.01 warm-up (blue); dotted: ln 10", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "docs" / "assets" / "training"))
    p.add_argument("--threads", type=int, default=1, help="the committed run used 1")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, start = [], time.process_time()
    for kind in BUILDERS:
        for depth in (20, 56):
            for warmup_epochs in (0, EPOCHS):
                for seed in (0, 1, 2):
                    rows += run_one(kind, depth, warmup_epochs, seed)
                    print(kind, depth, "warm-up" if warmup_epochs else "no warm-up", "seed", seed,
                          f"max loss {max(r['loss'] for r in rows[-36:]):.2f}", flush=True)
    with open(out / "warmup.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, out / "warmup.png")
    for key, (peak, last) in summary(rows).items():
        print(key, f"peak {peak:.2f}", "last", [round(v, 2) for v in last])
    print(f"{time.process_time() - start:.0f} s of CPU time; results in {out}")


if __name__ == "__main__":
    main()
