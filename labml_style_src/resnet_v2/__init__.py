"""Pre-activation ResNet (v2)"""

PAGES = ["propagation", "scaled_shortcut", "shortcut_variants", "activation_variants", "preact_resnet", "keras_resnet50v2"]
