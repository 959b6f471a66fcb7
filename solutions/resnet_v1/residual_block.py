"""Reference solutions: resnet_v1/residual_block."""

from solutions import Graded


# Exercise 1: two 3×3 convolutions without bias (9·c·c weights each) and two BNs (γ and β: 2·c each).
def basic_block_params(c: int) -> int:
    return 2 * 9 * c * c + 2 * 2 * c


GRADED = [
    Graded(1, "basic_block_params", "check_basic_block_params(basic_block_params)",
           hidden=("basic_block_params(3)", "basic_block_params(512)")),
]
