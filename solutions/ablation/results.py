"""Reference solutions: ablation/results."""

from solutions import Graded


# Exercise 1: group the rows of `model` by epoch, average train_err over the seeds, and return the first
# epoch whose mean is at or below `level` (None when no epoch gets there).
def epochs_to_reach(rows, model, level):
    by_epoch = {}
    for r in rows:
        if r["model"] == model:
            by_epoch.setdefault(r["epoch"], []).append(r["train_err"])
    return next((e for e, v in sorted(by_epoch.items()) if sum(v) / len(v) <= level), None)


GRADED = [Graded(1, "epochs_to_reach", "check_epochs_to_reach(epochs_to_reach)")]
