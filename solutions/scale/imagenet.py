"""Reference solutions: scale/imagenet."""

from solutions import Graded

# Exercise 1: 600,000 iterations × 256 images = 153.6 million images, over 1,281,167 per epoch.
epochs = round(600_000 * 256 / 1_281_167, 1)


GRADED = [
    Graded(1, "epochs", "check_epochs(epochs)"),
]
