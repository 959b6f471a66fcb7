"""Reference solutions: resnet_v2/activation_variants."""

from solutions import Graded

# Exercise 1: a unit's output is never negative exactly when its last layer is a ReLU, i.e. when the
# activation f after the addition ends in one: the original unit (f = ReLU) and BN after addition
# (f = BN, ReLU). The three others end in the addition, whose identity shortcut passes a negative
# input on (even ReLU before addition, whose F is never negative).
never_negative = {"original", "bn_after_addition"}

GRADED = [
    Graded(1, "never_negative", "check_never_negative(never_negative)"),
]
