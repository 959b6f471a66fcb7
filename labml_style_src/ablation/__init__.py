"""Plain vs residual"""

PAGES = ["degradation", "results"]
