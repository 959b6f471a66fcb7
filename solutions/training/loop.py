"""Reference solutions: training/loop."""

from torch.nn import functional as nnf

from solutions import Graded


# Exercise 1: the loss of the whole minibatch is the mean of the k parts' mean losses (equal parts), so
# backpropagating each part's loss divided by k accumulates exactly the whole minibatch's gradient;
# the gradients are cleared once before the parts and the optimizer steps once after them.
def accumulated_step(model, optimizer, x, y, k):
    optimizer.zero_grad(set_to_none=True)
    for x_part, y_part in zip(x.chunk(k), y.chunk(k)):
        (nnf.cross_entropy(model(x_part), y_part) / k).backward()
    optimizer.step()


GRADED = [
    # It changes a model and its optimizer in place: no value to compare in a hidden test.
    Graded(1, "accumulated_step", "check_accumulation(accumulated_step)", points=3),
]
