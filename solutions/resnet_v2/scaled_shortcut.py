"""Reference solutions: resnet_v2/scaled_shortcut."""

from torch import nn

from solutions import Graded


# Exercise 1: through x_1 = λ·x_0 + F(x_0), dE/dx_0 = dE/dx_1 · (λ + w) for a 1×1 convolution F of
# weight w on one channel: w = −λ makes it 0 for every input and every loss.
def cancelling_F(lam: float) -> nn.Conv2d:
    F = nn.Conv2d(1, 1, kernel_size=1, bias=False)
    nn.init.constant_(F.weight, -lam)
    return F


GRADED = [
    Graded(1, "cancelling_F", "check_gradient_cancels(cancelling_F(1.0))",
           hidden=("check_gradient_cancels(cancelling_F(0.5), lam=0.5)",  # the exercise's scaled shortcut
                   "check_gradient_cancels(cancelling_F(2.0), lam=2.0)")),  # passes: None, else it raises
]
