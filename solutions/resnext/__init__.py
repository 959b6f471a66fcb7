"""Reference solutions: ResNeXt."""
