"""Reference solutions: resnet_v2/preact_resnet."""

from torch import nn

from labml_style_src.resnet_v1.residual_block import conv3x3, residual_add
from labml_style_src.resnet_v2.preact_resnet import bn_relu, preact_shortcut
from solutions import Graded


# Exercise 2: `PreActBottleneck` with two 3×3 convolutions in F: a BN-ReLU before each (the first one
# shared with a projecting shortcut), nothing after the last convolution or after the addition.
class PreActBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int = 1, shortcut=preact_shortcut):
        super().__init__()
        self.preact = bn_relu(c_in)
        self.F = nn.Sequential(conv3x3(c_in, width, stride), bn_relu(width), conv3x3(width, width))
        self.shortcut = shortcut(c_in, width, stride)
        self.shortcut_reads_preact = not isinstance(self.shortcut, nn.Identity)

    def forward(self, x):
        a = self.preact(x)
        h = self.shortcut(a if self.shortcut_reads_preact else x)
        return residual_add(self.F(a), h)


GRADED = [
    Graded(2, "PreActBasicBlock", "check_preact_basic_block(PreActBasicBlock)",
           hidden=("n_params(PreActBasicBlock(16, 32, 2))",  # a projecting unit
                   "n_params(preact_cifar_net(PreActBasicBlock, 18))"),  # the whole ResNet-110
           points=3),
]
