"""Reference solutions: resnet_v2/keras_resnet50v2."""

from solutions import Graded


# A Keras layer without padding of its own maps a side s to (s − kernel) // stride + 1; explicit
# ZeroPadding adds 2·pad first. Every stride-2 layer on the way to `post_bn` is listed here.
def final_side(size: int) -> int:
    side = (size + 2 * 3 - 7) // 2 + 1  # conv1: pad 3, 7×7/2
    side = (side + 2 * 1 - 3) // 2 + 1  # pool1: pad 1, 3×3/2
    for _ in range(3):  # the last block of conv2, conv3 and conv4: a stride-2 `_2_conv` (pad 1, 3×3/2)
        side = (side + 2 * 1 - 3) // 2 + 1
    return side


# Exercise 1: the sides that `final_side` gives; for 224×224 it gives the 7 the page prints.
final_map_size = {size: final_side(size) for size in (299, 225)}

GRADED = [
    Graded(1, "final_map_size", "check_final_map_size(final_map_size)"),  # the check compares every size
]
