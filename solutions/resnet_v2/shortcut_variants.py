"""Reference solutions: resnet_v2/shortcut_variants."""

import torch

from solutions import Graded


# Exercise 3: in eval mode the shortcut computes γ·(W_s x − running_mean) / sqrt(running_var + eps) + β
# channel by channel. W_s = I, γ = sqrt(running_var + eps) and β = running_mean turn that into x.
def set_identity(merge) -> None:
    conv, bn = merge.W_s
    c = conv.out_channels
    conv.weight.copy_(torch.eye(c, dtype=conv.weight.dtype).view(c, c, 1, 1))
    bn.weight.copy_((bn.running_var + bn.eps).sqrt())
    bn.bias.copy_(bn.running_mean)


GRADED = [
    # It changes a module in place: many settings are right (W_s = a·I with γ scaled by 1/a), so there is
    # no value to compare in a hidden test.
    Graded(3, "set_identity", "check_conv_shortcut_identity(set_identity)", points=3),
]
