"""Reference solutions: resnet_v1/against_torchvision."""

from solutions import Graded

# Exercise 1: under option B only the first block of each stage projects. Option C adds a W_s (a 1×1
# convolution 4w → 4w, (4w)² weights, and its BN, 2·4w) to each of the other 2, 3, 5, 2 blocks of
# conv2_x … conv5_x, whose widths are w = 64, 128, 256, 512.
resnet50_C_minus_B = sum(blocks * ((4 * w) ** 2 + 2 * 4 * w)
                         for blocks, w in zip((2, 3, 5, 2), (64, 128, 256, 512)))

GRADED = [
    Graded(1, "resnet50_C_minus_B", "check_resnet50_C_minus_B(resnet50_C_minus_B)"),
]
