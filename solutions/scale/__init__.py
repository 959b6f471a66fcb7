"""Reference solutions: scale."""
