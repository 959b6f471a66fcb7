"""Reference solutions: resnext/resnext_nets."""

from labml_style_src.resnext.resnext_nets import CIFAR_WIDTHS
from solutions import Graded


# Exercise 1: a stage of ResNeXt-29 C×dd has three blocks of grouped width w = C·(d·p/64) for the
# template width p: a 1×1 into w, a grouped 3×3 whose weight is [w, w/C, 3, 3], and a 1×1 out to 4p.
# The first block reads the previous stage's width and has a projection shortcut (a 1×1); the two
# others read 4p and add the identity.
def stage_weights(C: int, d: int) -> dict:
    out, c_in = {}, 64  # the stem's 64 filters
    for name, p in zip(("conv2_x", "conv3_x", "conv4_x"), CIFAR_WIDTHS):
        w, c_out = C * (d * p // 64), 4 * p
        first, later = (c * w + 9 * w * (w // C) + w * c_out for c in (c_in, c_out))
        out[name] = first + c_in * c_out + 2 * later
        c_in = c_out
    return out


GRADED = [
    Graded(1, "stage_weights", "check_stage_weights(stage_weights)",
           hidden=("stage_weights(32, 4)", "stage_weights(1, 64)")),
]
