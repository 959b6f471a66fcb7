"""Training at scale"""

PAGES = ["imagenet", "batchnorm", "ddp"]
