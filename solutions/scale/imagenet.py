"""Reference solutions: scale/imagenet."""

from solutions import Graded

# Exercise 1: 600,000 iterations × 256 images = 153.6 million images, over 1,281,167 per epoch.
epochs = round(600_000 * 256 / 1_281_167, 1)


# Exercise 2: the i-th eigenvector is the i-th *column*, weighted by its alpha and its eigenvalue.
def my_offset(alpha, eigval, eigvec):
    return sum(alpha[i] * eigval[i] * eigvec[:, i] for i in range(3))


GRADED = [
    Graded(1, "epochs", "check_epochs(epochs)"),
    Graded(2, "my_offset", "check_lighting(my_offset)",
           hidden=("[round(v, 6) for v in my_offset(torch.tensor([1.0, 0.0, 0.0]), IMAGENET_EIGVAL, "
                   "IMAGENET_EIGVEC).tolist()]",
                   "[round(v, 6) for v in my_offset(torch.tensor([0.0, -2.0, 1.0]), IMAGENET_EIGVAL, "
                   "IMAGENET_EIGVEC).tolist()]")),
]
