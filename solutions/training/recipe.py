"""Reference solutions: training/recipe."""

from labml_style_src.training.recipe import PAPER, lr_at
from solutions import Graded


# Exercise 1: with k = batch_size / 128, iteration i has seen the images of the paper's iteration i·k,
# so the schedule is the paper's at i·k (same epochs, same images before each drop), times k.
def my_lr(iteration: int, batch_size: int) -> float:
    k = batch_size / 128
    return k * lr_at(iteration * k, PAPER)


GRADED = [
    Graded(1, "my_lr", "check_lr(my_lr)",
           # Batches the check does not try: 16 GPUs, and 3 (32,000 / 3 is not a whole iteration).
           hidden=("round(my_lr(1_999, 2_048), 12)", "round(my_lr(2_000, 2_048), 12)",
                   "round(my_lr(10_666, 384), 12)", "round(my_lr(10_667, 384), 12)")),
]
