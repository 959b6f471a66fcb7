"""The ResNet family, annotated line by line.

Each chapter is a sub-package; each page is one module in jupytext percent format.
`CHAPTERS` is the reading order of the site: the navigation is built from it and from
each chapter's own `PAGES` list, so a page exists on the site exactly when it is listed.
"""

CHAPTERS = ["resnet_v1", "ablation", "resnet_v2", "resnext", "training", "scale"]
