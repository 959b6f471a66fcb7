"""Reference solutions: ablation/degradation."""

import torch
from torch import nn

from solutions import Graded


# Exercise 1: a Dirac kernel makes each 3×3 convolution copy its input channel by channel. In eval mode
# BN computes γ·(z − running_mean) / sqrt(running_var + eps) + β, so γ = sqrt(running_var + eps) and
# β = running_mean make each BN the identity too; the ReLUs then pass an input x ≥ 0 unchanged.
def make_identity(block) -> None:
    with torch.no_grad():
        for conv in (block.F[0], block.F[3]):
            nn.init.dirac_(conv.weight)
        for bn in (block.F[1], block.F[4]):
            bn.weight.copy_(torch.sqrt(bn.running_var + bn.eps))
            bn.bias.copy_(bn.running_mean)


GRADED = [
    # It changes a module in place, and many settings are right (a kernel a·δ with γ scaled by 1/a):
    # no value to compare in a hidden test.
    Graded(1, "make_identity", "check_identity(make_identity)", points=3),
]
