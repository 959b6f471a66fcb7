"""Reference solutions: training/data."""

import numpy as np

from solutions import Graded


# Exercise 1: each class c gets n_val·share(c) held-out images, rounded down, and the images still
# missing go one each to the classes with the largest remainders, so every count is within 1 of its
# share and the counts add up to n_val. Which images of a class are held out is drawn with the seed.
def split(labels, n_val: int, seed: int):
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    share = n_val * counts / len(labels)
    take = np.floor(share).astype(int)
    take[np.argsort(share - take)[::-1][: n_val - take.sum()]] += 1
    val = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)])
    return np.setdiff1d(np.arange(len(labels)), val), val


# Labels whose shares of 10 held-out images are whole numbers (1, 2, 3, 4): only one count per class is right.
FOUR_CLASSES = "np.repeat(np.arange(4), [10, 20, 30, 40])"

GRADED = [
    Graded(1, "split", "check_split(split)",
           hidden=(f"[len(part) for part in split({FOUR_CLASSES}, 10, 7)]",
                   f"np.bincount({FOUR_CLASSES}[split({FOUR_CLASSES}, 10, 7)[1]]).tolist()"),
           points=3),
]
