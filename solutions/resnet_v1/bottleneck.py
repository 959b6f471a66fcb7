"""Reference solutions: resnet_v1/bottleneck."""

from solutions import Graded


# Exercise 1: per output pixel the 1×1 (4p → p), the 3×3 (p → p) and the 1×1 (p → 4p) cost
# k²·c_in·c_out each; at stride 1 all three run on the whole h × w map, and the identity is free.
def bottleneck_macs(width: int, h: int, w: int) -> int:
    return (4 * width * width + 9 * width * width + width * 4 * width) * h * w


GRADED = [
    Graded(1, "bottleneck_macs", "check_bottleneck_macs(bottleneck_macs)",
           hidden=("bottleneck_macs(512, 7, 7)", "bottleneck_macs(3, 2, 11)")),
]
