"""Reference solutions: scale/imagenet2."""

from solutions import Graded


# Exercise 1: the i-th eigenvector is the i-th *column*, weighted by its alpha and its eigenvalue.
def my_offset(alpha, eigval, eigvec):
    return sum(alpha[i] * eigval[i] * eigvec[:, i] for i in range(3))


# Exercise 2: five layers halve the side (the stem's 7×7 convolution and max-pool, and the first block
# of conv3_x, conv4_x and conv5_x); with their padding each gives ceil(side / 2), so the map is
# ceil(side / 32) wide.
def my_map_side(side):
    return -(-side // 32)


GRADED = [
    Graded(1, "my_offset", "check_lighting(my_offset)",
           hidden=("[round(v, 6) for v in my_offset(torch.tensor([1.0, 0.0, 0.0]), IMAGENET_EIGVAL, "
                   "IMAGENET_EIGVEC).tolist()]",
                   "[round(v, 6) for v in my_offset(torch.tensor([0.0, -2.0, 1.0]), IMAGENET_EIGVAL, "
                   "IMAGENET_EIGVEC).tolist()]")),
    Graded(2, "my_map_side", "check_map_side(my_map_side)",
           hidden=("my_map_side(1)", "my_map_side(480)", "my_map_side(481)")),
]
