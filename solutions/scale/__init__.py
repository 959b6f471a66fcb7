"""Reference solutions: training at scale."""
