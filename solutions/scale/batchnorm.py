"""Reference solutions: scale/batchnorm."""

from solutions import Graded


# Exercise 1: the new value gets weight `momentum`; BN keeps the *unbiased* variance of the batch
# (divided by n - 1, n = B·H·W values per channel), while it normalises with the biased one.
def my_update(running_mean, running_var, x, momentum):
    mean = x.mean((0, 2, 3))
    var = x.var((0, 2, 3), unbiased=True)
    return (1 - momentum) * running_mean + momentum * mean, (1 - momentum) * running_var + momentum * var


# Exercise 2: after k updates from 0 the running mean is (1 - 0.9^k) of the batch mean; the first k
# with 0.9^k ≤ 0.01 is 44 (0.9^43 ≈ 0.0108, 0.9^44 ≈ 0.0097).
updates_to_99 = 44


GRADED = [
    Graded(1, "my_update", "check_running_stats(my_update)",
           hidden=("[round(v, 5) for v in my_update(torch.zeros(2), torch.ones(2), "
                   "torch.arange(16.0).reshape(2, 2, 2, 2), 0.5)[1].tolist()]",)),
    Graded(2, "updates_to_99", "check_updates_to_99(updates_to_99)"),
]
