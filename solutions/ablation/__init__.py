"""Reference solutions: plain vs residual."""
