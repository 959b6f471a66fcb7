"""The one device switch every page uses.

`RESNET_DEVICE=cpu` (or `cuda`, `cuda:1`, ...) forces a device; otherwise CUDA is used when present.
"""

import os

import torch

DEVICE = torch.device(os.environ.get("RESNET_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu"))
