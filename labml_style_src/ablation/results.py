# %% [markdown]
# # Plain vs residual: what the run shows
#
# The [previous page](degradation.md) built plain nets and a training loop. Here is what they do
# when trained until they stop improving: plain and residual nets of 20 and 56 layers, three seeds
# each, on 8×8 digits, with the paper's kind of schedule after the same short warm-up for every
# net. The paper's claim is about *training*
# error, since a net that cannot fit its training data is not overfitting:
#
# > "The deep plain nets suffer from increased depth, and exhibit higher training error when going
# > deeper." — He et al. 2015, §4.2

# %%
import csv
import json
from pathlib import Path

import matplotlib.pyplot as plt

from labml_style_src.ablation.degradation import BUILDERS
from labml_style_src.paper_tables import RESNET_FIG6_DEPTHS, RESNET_TABLE2_TOP1

# %% [markdown]
# ## How the results were made
#
# The committed run is `make ablation`. Its main command, `python scripts/run_ablation.py
# --jobs 2`, trains plain and residual nets of 20 and 56 layers, seeds 0, 1 and 2, 60 epochs each
# (the first 5 a gradual warm-up), two nets at a time in two processes of one CPU thread each (the
# files are the same as from one process:
# [test](../tests/test_ablation.md#test_run_ablation_script_tiny_one_and_two_jobs)), and writes
# `docs/assets/ablation/degradation.csv` (one row per net, seed and epoch) and
# `degradation.json` (settings, final numbers, CPU and wall time, load average). Beside it, a
# third process trains plain-56 (seed 0) three times longer: `degradation_long`. On an idle
# 2-core machine they took 988 and 788 s of wall time, side by side (the JSON files record it).
# The cells below read the files when this page runs inside the repository; a downloaded
# notebook has no copy of them and says how to make them.

# %%
def find_results(name: str = "degradation"):
    # The repository holding this package, or the working folder and its parents.
    import importlib.util
    import os

    spec = importlib.util.find_spec("labml_style_src")
    roots = [Path(p).parent for p in spec.submodule_search_locations] if spec else []
    places = roots + [Path.cwd(), *Path.cwd().parents]
    folders = [root / "docs" / "assets" / "ablation" for root in places]
    # RESNET_ASSETS is set by the site's build, which runs pages in an empty folder.
    if os.environ.get("RESNET_ASSETS"):
        folders.insert(0, Path(os.environ["RESNET_ASSETS"]) / "ablation")
    return next((f for f in folders if (f / f"{name}.json").is_file()), None)


def load_results(folder, name: str = "degradation"):
    with open(Path(folder) / f"{name}.csv", newline="") as f:
        rows = [{k: v if k == "model" else float(v) for k, v in r.items()}
                for r in csv.DictReader(f)]
    return rows, json.loads((Path(folder) / f"{name}.json").read_text())


def spread(values):
    # Mean and range over seeds: (mean, min, max).
    return sum(values) / len(values), min(values), max(values)


def by_model(finals) -> dict:
    # {"plain-20": [final of seed 0, seed 1, ...], ...}
    out = {}
    for f in finals:
        out.setdefault(f["model"], []).append(f)
    return out


def final_table(summary) -> str:
    def cell(fs, key):
        return "{:.2f} ({:.2f}–{:.2f})".format(*spread([f[key] for f in fs]))

    lines = ["| model | params | train err, last epoch | train err, full pass "
             "| test err |",
             "|---|---:|---:|---:|---:|"]
    for model, fs in by_model(summary["final"]).items():
        lines.append(f"| {model} | {fs[0]['params']:,} | {cell(fs, 'train_err')} | "
                     f"{cell(fs, 'train_err_full')} | {cell(fs, 'test_err')} |")
    return "\n".join(lines)


LABELS = {"train_err": "training", "test_err": "test",
          "test_err_running": "test, running stats"}


def plot_curves(rows, columns: dict, title: str, depths=(20, 56), yscale=None):
    # A panel per kind, a colour per depth; line: mean over seeds, band: their range.
    # Default y axis: logarithmic above 0.1 %, linear below, so that 0 % is drawn too.
    yscale = yscale or dict(value="symlog", linthresh=0.1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, kind in zip(axes, BUILDERS):
        for i, depth in enumerate(depths):
            for column, style in columns.items():
                per_epoch = {}
                for r in rows:
                    if r["model"] == f"{kind}-{depth}":
                        per_epoch.setdefault(r["epoch"], []).append(r[column])
                epochs = list(per_epoch)
                mean, lo, hi = zip(*map(spread, per_epoch.values()))
                label = f"{kind}-{depth}, {LABELS[column]}"
                ax.plot(epochs, mean, style, color=f"C{i}", label=label)
                ax.fill_between(epochs, lo, hi, color=f"C{i}", alpha=0.2, linewidth=0)
        ax.set_yscale(**yscale)
        ax.set(title=f"{kind} networks", xlabel="epoch", ylim=(0, 100))
        ax.legend(fontsize=7)
    axes[0].set_ylabel("error (%)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# %%
if __name__ == "__main__":
    folder = find_results()
    if folder is None:
        print("No results here. Run this notebook inside a copy of the repository\n"
              "(`make ablation` makes them again), or copy the repository's folder\n"
              "docs/assets/ablation to docs/assets/ablation beside this notebook.")
    else:
        rows, summary = load_results(folder)
        print("error (%), mean over seeds (range)\n" + final_table(summary))
        wall, cpu = summary["wall_seconds"], summary["cpu_seconds"]
        print(f"{cpu:.0f} s CPU, {wall:.0f} s wall with {summary['jobs']} processes of "
              f"{summary['threads']} thread (wall time depends on the machine's load)")
        plot_curves(rows, {"train_err": "--", "test_err": "-"},
                    "Training error (dashed) and test error (solid) on 8×8 digits, "
                    "mean and range over 3 seeds (log scale above 0.1 %)",
                    summary["depths"])
        plt.show()

# %% [markdown]
# What the committed run shows (every number below is checked on the committed files by
# [a test](../tests/test_ablation.md#test_committed_results_match_the_page)). "Training error" is
# measured two ways: the curves and the "last epoch" column average the shifted minibatches of an
# epoch, in train mode (what a training log shows, as in the paper's plots); the "full pass"
# column is one pass over the unshifted training images in eval mode, after the last epoch.
#
# - **Every net but plain-56 fits its training set.** plain-20, ResNet-20 and ResNet-56 end with
#   a full-pass training error of at most 0.07 % in every seed (at most one of the 1,500 images
#   wrong), and a test error between 0.3 and 1.4 %. ResNet-56 has the same layers and parameters
#   as plain-56.
# - **plain-56 fails to fit.** Its training error ends between 28.8 and 31.8 % (full pass), and
#   its test error is as high (30.3 to 33.7 %): not overfitting, a failure to fit. It learns (from
#   86–89 % in its first epoch, where chance is 90 %), slowly, and over its last 15 epochs (lr
#   0.001) its training error moves by less than 7 points in each seed and stays above 33 %: it
#   has stopped improving, while every other net stays at or below 0.33 % over those epochs. The
#   three seeds agree within 3 points.
#
# Is plain-56 only slow? The paper's check:
#
# > "We have experimented with more training iterations (3×) and still observed the degradation
# > problem, suggesting that this problem cannot be feasibly addressed by simply using more
# > iterations." — He et al. 2015, §4.1, footnote 3
#
# We did the same for its seed 0: 180 epochs, the same warm-up, the drops after 90 and 135. The
# long stretch at lr 0.1 took it down to 31.1 % on the minibatches of epoch 86. Then, in epoch 90,
# the last at lr 0.1, it fell apart: 56 % that epoch, and 93 % in epoch 97, at lr 0.01 (chance is
# 90 %). The smaller learning rates brought it back to 59.6 % only (full pass), against 31.6 %
# after 60 epochs. Three times the training never took plain-56 below 31 %, where the other nets
# end at 0.07 % or less: here too, the degradation is not a matter of time.

# %%
if __name__ == "__main__" and folder is not None:
    longer_rows, longer = load_results(folder, "degradation_long")
    runs = [f for f in summary["final"] if f["model"] == "plain-56" and f["seed"] == 0]
    for run in runs + longer["final"]:
        print(f"{run['model']}, seed 0, {run['epoch']:.0f} epochs: training error "
              f"{run['train_err']:.2f} % (last epoch), "
              f"{run['train_err_full']:.2f} % (full pass)")
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for some_rows, run in ((rows, runs[0]), (longer_rows, longer["final"][0])):
        seed_0 = [r for r in some_rows if r["model"] == "plain-56" and r["seed"] == 0]
        ax.plot([r["epoch"] for r in seed_0], [r["train_err"] for r in seed_0],
                label=f"{run['epoch']:.0f} epochs")
    ax.axhline(90, color="grey", linestyle=":", label="chance (90 %)")
    ax.set(xlabel="epoch", ylabel="training error (%)", ylim=(0, 100),
           title="plain-56, seed 0: 60 and 180 epochs (minibatch training error)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.show()

# %% [markdown]
# ## Beside the paper
#
# The paper's numbers come from `labml_style_src/paper_tables.py`, where every table this site
# quotes is typed once: Table 2 (top-1 error, %, 10-crop testing, ImageNet validation) and the
# depths Fig. 6 plots. Deeper minus shallower, for each kind (positive: the deeper net is worse),
# in the paper and here:

# %%
def mean_final(summary, model: str, key: str) -> float:
    return spread([f[key] for f in by_model(summary["final"])[model]])[0]


if __name__ == "__main__":
    print("Fig. 6 plots:", RESNET_FIG6_DEPTHS)
    for kind in BUILDERS:
        paper = RESNET_TABLE2_TOP1[kind][34] - RESNET_TABLE2_TOP1[kind][18]
        print(f"{kind}: Table 2, 34 − 18 layers: validation error {paper:+.2f} points")
        if folder is not None:
            deeper = {key: mean_final(summary, f"{kind}-56", key)
                      - mean_final(summary, f"{kind}-20", key)
                      for key in ("train_err_full", "test_err")}
            print(f"{kind}: here, 56 − 20 layers: training error "
                  f"{deeper['train_err_full']:+.2f}, "
                  f"test error {deeper['test_err']:+.2f} points")

# %% [markdown]
# In Table 2 depth hurts the plain net (+0.60 points from 18 to 34 layers) and helps the residual
# one (−2.85). Here, from 20 to 56 layers, the plain net's training error (full pass) rises by 31
# points and its test error by 32 (means of three seeds), while the ResNet's do not move: 0.02 %
# training error and 0.79 % test error at both depths. Depth hurts the plain net and leaves the
# residual one unharmed. It does not help it either: 20 layers already fit our small task.

# %% [markdown]
# ## What the running statistics did
#
# Early in training the running statistics were badly wrong: the test error measured with them
# was up to 78.8 points higher than with precise BN (ResNet-56, seed 2, epoch 7: 87.2 % against
# 8.4 %, while its training error that epoch was 19.9 %). A net that had learnt a good deal
# looked as if it guessed. The gap closes as the learning rate falls: at the last epoch, at lr
# 0.001, the two differ by at most 3.03 points in every run
# ([test](../tests/test_ablation.md#test_committed_results_match_the_page)). So the sudden jumps
# of a test-error curve measured with running statistics, at a high learning rate and with few
# steps per epoch, show BN's lag behind the weights, not the network. Precise BN costs one more
# forward pass over some training images and removes that lag.

# %%
if __name__ == "__main__" and folder is not None:
    last = summary["settings"]["epochs"]
    for model in by_model(summary["final"]):
        gap = {(r["seed"], r["epoch"]): r["test_err_running"] - r["test_err"]
               for r in rows if r["model"] == model}
        at_end = [g for (seed, epoch), g in gap.items() if epoch == last]
        print(f"{model}: test error, running statistics minus precise BN: largest "
              f"{max(gap.values()):+.1f} points; "
              f"last epoch {spread(at_end)[0]:+.2f} on average")
    plot_curves(rows, {"test_err_running": ":", "test_err": "-"},
                "Test error with BN running statistics (dotted) and precise BN (solid)",
                summary["depths"], dict(value="linear"))
    plt.show()

# %% [markdown]
# ## Exercises
#
# 1. **How much slower? (auto-checked)** Write `epochs_to_reach(rows, model, level)`: the first
#    epoch at which the mean over seeds of `train_err` is at or below `level` %, or `None` if it
#    never gets there. Run `check_epochs_to_reach(epochs_to_reach)`, then ask the committed rows:
#    how many epochs does each net need to get below 10 %? Below 2 %?
# 2. Table 2 gives validation errors, Fig. 6 training and test errors. Why does the paper's
#    argument need the *training* error? What would a higher test error alone not tell you?
# 3. Run `python scripts/run_ablation.py --depths 20 32 44 56 --jobs 2 --out runs/depths`.
#    Does the training error of the plain nets grow steadily with depth, as in Fig. 6?
# 4. Train plain-56 with batches of 32 instead of 128 (four times the steps per epoch) and plot
#    `test_err_running` against `test_err`. Does the gap between them change? Why?

# %%
def check_epochs_to_reach(epochs_to_reach) -> None:
    # Made-up rows with known answers: two seeds of "net", plus rows of another net to ignore.
    errors = {0: [50, 30, 9, 4, 1], 1: [60, 8, 25, 6, 3]}  # mean: 55, 19, 17, 5, 2
    rows = [dict(model="net", seed=s, epoch=e + 1, train_err=v)
            for s, errs in errors.items() for e, v in enumerate(errs)]
    rows += [dict(model="other", seed=0, epoch=e + 1, train_err=0.0) for e in range(5)]
    for level, want in ((20, 2), (5, 4), (17, 3), (1, None)):
        got = epochs_to_reach(rows, "net", level)
        if got != want:
            raise AssertionError(
                f"level {level} %: got {got!r}. Hint: average the seeds of that one "
                "net at each epoch before comparing, and say None when it never gets "
                "there.")
    print("correct: now try it on the committed rows")
