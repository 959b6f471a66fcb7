"""Pre-activation ResNet (v2)"""

PAGES = ["propagation"]
