"""Reference solutions: scale/imagenet."""

from solutions import Graded

# Exercise 1: 60×10⁴ iterations of 256 images see 153.6 M images; ImageNet has 1,281,167 training images.
epochs = round(600_000 * 256 / 1_281_167, 1)


# Exercise 2: column i of `eigvec` is the eigenvector p_i; scaling each column by α_i·λ_i (broadcast
# along the rows) and summing the columns gives Σ_i α_i λ_i p_i.
def my_offset(alpha, eigval, eigvec):
    return (eigvec * (alpha * eigval)).sum(dim=1)


GRADED = [
    Graded(1, "epochs", "check_epochs(epochs)"),
    Graded(2, "my_offset", "check_lighting(my_offset)",
           # Whole numbers, so any order of the sum gives the same floats; the columns of a permutation
           # tell columns from rows.
           hidden=("torch.as_tensor(my_offset(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 10.0, 100.0]), "
                   "torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))).tolist()",)),
]
