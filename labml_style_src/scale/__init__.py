"""Training at scale"""

PAGES = ["imagenet", "imagenet2", "batchnorm", "ddp", "ddp_train"]
