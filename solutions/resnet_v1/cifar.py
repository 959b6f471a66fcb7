"""Reference solutions: resnet_v1/cifar."""

from solutions import Graded


# Exercise 1: a 3×3 convolution without bias holds 9·c_in·c_out weights and its BN 2·c_out. The stem,
# then per stage one block c_in → c_out and n − 1 blocks c_out → c_out (two conv–BN pairs each),
# option A's shortcuts hold nothing, and the fc layer 64·10 weights and 10 biases.
def cifar_params(n: int) -> int:
    def conv_bn(c_in, c_out):
        return 9 * c_in * c_out + 2 * c_out

    stem = conv_bn(3, 16)
    stages = sum(conv_bn(c_in, c_out) + conv_bn(c_out, c_out) + (n - 1) * 2 * conv_bn(c_out, c_out)
                 for c_in, c_out in ((16, 16), (16, 32), (32, 64)))
    return stem + stages + 64 * 10 + 10


GRADED = [
    Graded(1, "cifar_params", "check_cifar_params(cifar_params)",
           hidden=("cifar_params(2)", "cifar_params(200)")),  # ResNet-14 and ResNet-1202
]
