"""Reference solutions: ablation/results."""

from solutions import Graded


# Exercise 1: group the net's rows by epoch, average `train_err` over the seeds of each epoch, and return
# the first epoch, in epoch order (not row order), whose mean is at or below the level; None if none is.
def epochs_to_reach(rows, model, level):
    by_epoch = {}
    for row in rows:
        if row["model"] == model:
            by_epoch.setdefault(row["epoch"], []).append(row["train_err"])
    return next((epoch for epoch, errors in sorted(by_epoch.items())
                 if sum(errors) / len(errors) <= level), None)


# Rows listed later epoch first; both epochs reach a mean of 5 %, the first one is epoch 1.
UNSORTED = ("[dict(model='m', seed=s, epoch=e, train_err=v) for s, e, v in "
            "((0, 2, 1.0), (1, 2, 3.0), (0, 1, 9.0), (1, 1, 1.0))]")

GRADED = [
    Graded(1, "epochs_to_reach", "check_epochs_to_reach(epochs_to_reach)",
           hidden=(f"epochs_to_reach({UNSORTED}, 'm', 5)",  # epoch order, not row order
                   f"epochs_to_reach({UNSORTED}, 'absent', 50)")),  # a model without rows
]
