"""Reference solutions: pre-activation ResNets (ResNet v2)."""
