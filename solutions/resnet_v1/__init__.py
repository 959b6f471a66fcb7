"""Reference solutions: ResNet v1."""
