"""Reference solutions: resnext/add_pitfall."""

from solutions import Graded

# Exercise 1: line the shapes up from the right; each pair of sizes must be equal or contain a 1, and a
# missing dimension counts as 1. The traps: (8, 1) lines up with H, W (broadcast, no error), and a 1-D
# (64,) lines up with W, not with the channels (8 ≠ 64: an error).
answers = [
    None,  # (2, 64, 8, 8) + (2, 64, 8): 8 vs 64 and 64 vs 2 in the last three dimensions
    (2, 64, 8, 8),  # every size is equal or 1
    (2, 64, 8, 8),  # (8, 1) is [H, 1]: broadcast over W, the batch and the channels
    None,  # 8 vs 4
    (2, 64, 8, 8),  # (64, 1, 1) is [C, 1, 1]
    (2, 64, 8, 8),  # every size is equal or 1
    None,  # (64,) lines up with W = 8
    (2, 8, 8, 8),  # (8,) lines up with W = 8: silently added to every row, not per channel
]

GRADED = [
    Graded(1, "answers", "check_add_shapes(answers)"),  # the check compares every pair
]
