"""Reference solutions: resnet_v1/resnet."""

from solutions import Graded

# Exercise 2: the stem's 7×7 convolution and 3×3 max-pool both have stride 2 (320 -> 160 -> 80);
# conv2_x keeps the side, and conv3_x, conv4_x and conv5_x halve it in their first block.
sides_320 = {"stem": 80, "conv2_x": 80, "conv3_x": 40, "conv4_x": 20, "conv5_x": 10}

GRADED = [
    Graded(2, "sides_320", "check_sides_320(sides_320)"),
]
