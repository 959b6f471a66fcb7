"""Training at scale"""

PAGES = ["imagenet", "batchnorm", "ddp", "ddp_train"]
