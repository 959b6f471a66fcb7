"""Training on CIFAR-10"""

PAGES = ["data", "recipe", "fast_gpu"]
