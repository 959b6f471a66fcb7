"""ResNet v1"""

PAGES = ["residual_block"]
