"""Training on CIFAR-10"""

PAGES = ["data", "recipe", "loop", "fast_gpu"]
