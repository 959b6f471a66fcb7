"""Plain vs residual"""

PAGES = []
