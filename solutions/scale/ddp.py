"""Reference solutions: scale/ddp."""

from solutions import Graded


# Exercise 1: kn = 256·32 = 8192 images per step, so 1,281,167 // 8192 = 156 steps per epoch and
# η̂ = 0.1·8192/256 = 3.2. For 5 epochs the lr climbs in a straight line from 0.1 to 3.2, moving at
# every step (fractional epochs); then it is η̂, divided by 10 at epochs 30, 60 and 80.
def my_lr(step):
    epoch = step / 156
    peak = 0.1 * 256 * 32 / 256
    if epoch < 5:
        return 0.1 + (peak - 0.1) * epoch / 5
    return peak * 0.1 ** sum(epoch >= m for m in (30, 60, 80))


# Exercise 2: the sampler pads the list 0 … n − 1 to a multiple of k by repeating it from the start, so
# position p holds p mod n; rank r takes the positions r, r + k, r + 2k, …: ceil(n / k) of them.
def my_shard(n, k, r):
    return [(r + i * k) % n for i in range(-(-n // k))]


GRADED = [
    Graded(1, "my_lr", "check_goyal_lr(my_lr)",
           hidden=("round(my_lr(390), 9)", "round(my_lr(779), 9)", "round(my_lr(14_000), 9)")),
    Graded(2, "my_shard", "check_shard(my_shard)",
           hidden=("list(my_shard(10, 3, 2))", "list(my_shard(2, 7, 6))", "list(my_shard(100, 8, 5))[-3:]")),
]
