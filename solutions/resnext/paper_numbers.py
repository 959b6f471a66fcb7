"""Reference solutions: resnext/paper_numbers."""

from solutions import Graded


# Exercise 1: the first 1×1 (c_in → w, w = C·(d·width/64)) runs before the stride, on h × h; the
# grouped 3×3 (each output channel sees w/C inputs), the last 1×1 (w → 4·width) and the projection
# shortcut (c_in → 4·width, stride 2) produce the halved map, (h + 1) // 2 on a side.
def downsampling_block_macs(c_in: int, width: int, C: int, d: int, h: int) -> int:
    w, c_out, h2 = C * (d * width // 64), 4 * width, (h + 1) // 2
    return c_in * w * h * h + (9 * w * (w // C) + w * c_out + c_in * c_out) * h2 * h2


GRADED = [
    Graded(1, "downsampling_block_macs", "check_downsampling_block_macs(downsampling_block_macs)",
           hidden=("downsampling_block_macs(1024, 512, 32, 4, 14)", "downsampling_block_macs(128, 64, 2, 16, 15)")),
]
