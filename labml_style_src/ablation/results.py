# %% [markdown]
# # Plain vs residual: what the run shows
#
# The [previous page](degradation.md) built plain nets and a training loop. Here is what they do
# when trained until they stop improving: plain and residual nets of 20 and 56 layers, three seeds
# each, on 8×8 digits, with the paper's kind of schedule. The paper's claim is about *training*
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
# The committed run is `make ablation`. Its first command, `python scripts/run_ablation.py`,
# trains plain and residual nets of 20 and 56 layers, seeds 0, 1 and 2, 30 epochs each, on one CPU
# thread, and writes `docs/assets/ablation/degradation.csv` (one row per net, seed and epoch) and
# `degradation.json` (settings, final numbers, time taken). Its second trains plain-56 three times
# longer (`degradation_long`). The cells below read them when this page runs inside the
# repository; a downloaded notebook has no copy of them and says how to make them.

# %%
def find_results(name: str = "degradation"):
    # The repository holding this package, or the working folder and its parents.
    import importlib.util

    spec = importlib.util.find_spec("labml_style_src")
    roots = [Path(p).parent for p in spec.submodule_search_locations] if spec else []
    for root in roots + [Path.cwd(), *Path.cwd().parents]:
        if (root / "docs" / "assets" / "ablation" / f"{name}.json").is_file():
            return root / "docs" / "assets" / "ablation"
    return None


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


def plot_curves(rows, columns: dict, title: str, depths=(20, 56), ylim=(0, 20)):
    # A panel per kind, a colour per depth; line: mean over seeds, band: their range.
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
                label = f"{kind}-{depth} {column}"
                ax.plot(epochs, mean, style, color=f"C{i}", label=label)
                ax.fill_between(epochs, lo, hi, color=f"C{i}", alpha=0.2, linewidth=0)
        ax.set(title=f"{kind} networks", xlabel="epoch", ylim=ylim)
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
        print(f"{wall:.0f} s wall, {cpu:.0f} s CPU, {summary['threads']} thread "
              "(times depend on the machine and its load)")
        plot_curves(rows, {"train_err": "--", "test_err": "-"},
                    "Training error (dashed) and test error (solid) on 8×8 digits, "
                    "mean and range over 3 seeds", summary["depths"])
        plt.show()

# %% [markdown]
# RESULTS_PROSE
#
# Was plain-56 still improving? The paper's check (§4.1, footnote 3) was to train 3× longer; the
# same for seed 0, 90 epochs with the drops at 45 and 68:

# %%
if __name__ == "__main__" and folder is not None:
    _, long = load_results(folder, "degradation_long")
    runs = [f for f in summary["final"] if f["model"] == "plain-56" and f["seed"] == 0]
    for run in runs + long["final"]:
        print(f"plain-56, seed 0, {run['epoch']:.0f} epochs: training error "
              f"{run['train_err']:.2f} % (last epoch), "
              f"{run['train_err_full']:.2f} % (full pass)")

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
                  f"{deeper['train_err_full']:+.2f}, test error {deeper['test_err']:+.2f} points")

# %% [markdown]
# ## What the running statistics did
#
# BN_PROSE

# %%
if __name__ == "__main__" and folder is not None:
    last = summary["settings"]["epochs"]
    for model in by_model(summary["final"]):
        gap = {(r["seed"], r["epoch"]): r["test_err_running"] - r["test_err"]
               for r in rows if r["model"] == model}
        at_end = [g for (seed, epoch), g in gap.items() if epoch == last]
        print(f"{model}: test error, running statistics minus precise BN: largest "
              f"{max(gap.values()):+.1f} points; last epoch {spread(at_end)[0]:+.2f} on average")
    plot_curves(rows, {"test_err_running": ":", "test_err": "-"},
                "Test error with BN running statistics (dotted) and precise BN (solid)",
                summary["depths"], ylim=(0, 100))
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
# 3. Run `python scripts/run_ablation.py --depths 20 32 44 56 --out runs/depths`. Does the
#    training error of the plain nets grow steadily with depth, as in Fig. 6?
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
                f"level {level} %: got {got!r}. Hint: average the seeds of that one net at "
                "each epoch before comparing, and say None when it never gets there.")
    print("correct: now try it on the committed rows")
