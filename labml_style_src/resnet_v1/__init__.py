"""ResNet v1"""

PAGES = ["residual_block", "bottleneck", "shortcuts", "resnet", "against_torchvision", "cifar"]
