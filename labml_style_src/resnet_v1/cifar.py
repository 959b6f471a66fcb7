# %% [markdown]
# # CIFAR ResNets: 6n + 2 layers
#
# For CIFAR-10 the paper builds much thinner networks on 32×32 images: a 3×3 stem, three stages of
# $n$ basic blocks with 16, 32 and 64 channels on 32×32, 16×16 and 8×8 maps, and option A shortcuts.
# They come from the same `ResNet` class as the ImageNet models.

# %%
import torch

from labml_style_src.device import DEVICE
from labml_style_src.resnet_v1.residual_block import BasicBlock
from labml_style_src.resnet_v1.resnet import ResNet

# %%
CIFAR_DEPTHS = (20, 32, 44, 56, 110, 1202)


def cifar_resnet(depth: int, num_classes: int = 10, *, shortcut="A", block=BasicBlock) -> ResNet:
    # depth = 6n + 2: the stem conv, 3 stages × n blocks × 2 convs, the fc layer.
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNets have depth 6n+2 (n ≥ 1), e.g. {CIFAR_DEPTHS}; got {depth}")
    n = (depth - 2) // 6
    return ResNet(block, (n, n, n), widths=(16, 32, 64), stem="cifar", shortcut=shortcut, num_classes=num_classes)


# %%
if __name__ == "__main__":
    for depth in CIFAR_DEPTHS[:5]:
        model = cifar_resnet(depth)
        print(depth, sum(p.numel() for p in model.parameters()))
