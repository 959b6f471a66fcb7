"""Reference solutions: scale/ddp."""

import math

from solutions import Graded


# Exercise 1: kn = 256 × 32 = 8192, so η̂ = 0.1 · 8192 / 256 = 3.2. For 5 epochs the rate climbs in a
# straight line from 0.1 to 3.2; after that it is 3.2, divided by 10 at epochs 30, 60 and 80.
def my_lr(step):
    epoch = step / 156
    if epoch < 5:
        return 0.1 + (3.2 - 0.1) * epoch / 5
    return 3.2 * 0.1 ** sum(epoch >= m for m in (30, 60, 80))


# Exercise 2: the list is padded (from its start) to a multiple of k, ceil(n / k) · k indices, and rank r
# takes positions r, r + k, r + 2k, ...; position p holds index p mod n.
def my_shard(n, k, r):
    return [(r + i * k) % n for i in range(math.ceil(n / k))]


GRADED = [
    Graded(1, "my_lr", "check_goyal_lr(my_lr)",
           hidden=("round(my_lr(390), 9)", "round(my_lr(9_360), 9)", "round(my_lr(13_000), 9)")),
    Graded(2, "my_shard", "check_shard(my_shard)",
           hidden=("list(my_shard(7, 3, 2))", "list(my_shard(2, 5, 4))")),
]
