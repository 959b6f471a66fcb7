"""Reference solutions: ablation/degradation."""

import torch
from torch import nn

from solutions import Graded


# Exercise 1: a Dirac kernel copies its input channel for channel; in eval mode BN computes
# γ·(x − μ)/√(σ² + ε) + β, so γ = √(σ² + ε) and β = μ undo it. Both ReLUs then see x ≥ 0 and pass it.
def make_identity(block) -> None:
    with torch.no_grad():
        for conv in (block.F[0], block.F[3]):
            nn.init.dirac_(conv.weight)
        for bn in (block.F[1], block.F[4]):
            bn.weight.copy_(torch.sqrt(bn.running_var + bn.eps))
            bn.bias.copy_(bn.running_mean)


GRADED = [Graded(1, "make_identity", "check_identity(make_identity)")]
