"""Reference solutions: resnext/aggregated."""

from solutions import Graded


# Exercise 1: eq. (4) gives C paths C·(c·d + 9·d² + d·c) weights, and the plain bottleneck of width
# c/4 the same with C = 1, d = c/4. Equal cost is the quadratic 9C·d² + 2cC·d − target = 0; the best
# whole width is the nearer of the two whole numbers around its positive root.
def bottleneck_width(c: int, C: int) -> int:
    def cost(C, d):
        return C * (c * d + 9 * d * d + d * c)

    target = cost(1, c // 4)
    root = (-2 * c * C + ((2 * c * C) ** 2 + 4 * 9 * C * target) ** 0.5) / (2 * 9 * C)
    below = max(1, int(root))
    return min((below, below + 1), key=lambda d: abs(cost(C, d) - target))


GRADED = [
    Graded(1, "bottleneck_width", "check_bottleneck_width(bottleneck_width)",
           hidden=("bottleneck_width(128, 4)", "bottleneck_width(1024, 32)", "bottleneck_width(4096, 12)")),
]
