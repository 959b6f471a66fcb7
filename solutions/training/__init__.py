"""Reference solutions: training."""
