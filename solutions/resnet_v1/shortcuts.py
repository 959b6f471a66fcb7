"""Reference solutions: resnet_v1/shortcuts."""

from solutions import Graded


# Exercise 1: option A's shortcuts hold no parameters; option C gives every block a W_s (a 1×1
# convolution, c_in·c_out weights, and a BN, 2·c_out): the first block's maps c_in → c_out, the
# n − 1 others' c_out → c_out.
def extra_params_C(n: int, c_in: int, c_out: int) -> int:
    def projection(c_in, c_out):
        return c_in * c_out + 2 * c_out

    return projection(c_in, c_out) + (n - 1) * projection(c_out, c_out)


GRADED = [
    Graded(1, "extra_params_C", "check_extra_params_C(extra_params_C)",
           hidden=("extra_params_C(9, 16, 32)", "extra_params_C(2, 256, 512)")),
]
