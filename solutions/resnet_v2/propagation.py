"""Reference solutions: resnet_v2/propagation."""

from solutions import Graded


# Exercise 1: eq. (4), x_L = x_l + sum_{i=l}^{L-1} F(x_i), from the stored inputs of the units.
def unrolled_x_L(units, xs, l):
    return xs[l] + sum(units[i].F(xs[i]) for i in range(l, len(units)))


GRADED = [
    Graded(1, "unrolled_x_L", "check_unrolled(unrolled_x_L)"),
]
