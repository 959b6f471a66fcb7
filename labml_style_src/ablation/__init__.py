"""Plain vs residual"""

PAGES = ["degradation"]
