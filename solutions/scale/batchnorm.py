"""Reference solutions: scale/batchnorm."""

from solutions import Graded


# Exercise 1: in training mode BN moves each running statistic a fraction `momentum` of the way to the
# batch's: the mean over the batch and the map of each channel, and the *unbiased* variance (÷ n − 1),
# although it normalises the batch with the biased one.
def my_update(running_mean, running_var, x, momentum):
    mean = x.mean(dim=(0, 2, 3))
    var = x.var(dim=(0, 2, 3), unbiased=True)
    return (1 - momentum) * running_mean + momentum * mean, (1 - momentum) * running_var + momentum * var


# Exercise 2: with momentum 0.1 the starting value still weighs 0.9^k after k updates with the same
# batch; 0.9^k ≤ 0.01 first holds at k = 44 (0.9^43 ≈ 0.0108, 0.9^44 ≈ 0.0097).
updates_to_99 = 44

GRADED = [
    Graded(1, "my_update", "check_running_stats(my_update)",
           # Two channels whose batch statistics are whole numbers: means 2 and 2, unbiased variances 2 and 8.
           hidden=("[torch.as_tensor(s).tolist() for s in my_update(torch.zeros(2), torch.ones(2), "
                   "torch.tensor([[1.0, 0.0], [3.0, 4.0]]).view(2, 2, 1, 1), 0.5)]",)),
    Graded(2, "updates_to_99", "check_updates_to_99(updates_to_99)"),
]
