# %% [markdown]
# # The ImageNet recipe, part 2: colour, SGD and testing
#
# [Part 1](imagenet.md) read the ImageNet folder and took He et al.'s training images through
# scale augmentation, crops, flips and the per-pixel mean. This page does the rest of §3.4:
# the colour augmentation of [21] (Krizhevsky et al. 2012, AlexNet), SGD with its schedule,
# and the two ways the paper tests a network (10 crops, and the whole image at five scales).

# %%
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.transforms import v2 as T

from labml_style_src.resnet_v1.resnet import ResNet
from labml_style_src.scale.imagenet import (
    PAPER_IMAGENET,
    TINY_IMAGENET,
    TO_FLOAT,
    ImageNetRecipe,
    draw_pattern,
    imagenet_splits,
    mean_image,
    resized,
    scale_crop_flip,
    small_resnet,
    write_imagenet_folder,
)
from labml_style_src.training.recipe import SubtractMean

# %% [markdown]
# ## Colour: Krizhevsky et al.'s PCA lighting
#
# AlexNet (§4.1 of Krizhevsky et al. 2012) runs PCA on the RGB values of the training pixels and
# adds to every pixel of an image the same offset $\sum_i \alpha_i \lambda_i p_i$, where
# $\lambda_i, p_i$ are the eigenvalues and eigenvectors of the $3 \times 3$ RGB covariance and
# each $\alpha_i \sim \mathcal{N}(0, 0.1^2)$ is drawn once per image. It changes the intensity and
# colour of the lighting, not the objects. The ImageNet values below are the ones published in
# Facebook's `fb.resnet.torch` (`datasets/imagenet.lua`), computed there on a subset of the
# training images and applied to pixels in $[0, 1]$; the columns of `IMAGENET_EIGVEC` are the
# $p_i$. `rgb_pca` computes the same thing for any set of images
# ([test](../tests/test_scale.md#test_pca_lighting)).

# %%
IMAGENET_EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
IMAGENET_EIGVEC = torch.tensor([[-0.5675, 0.7192, 0.4009],
                                [-0.5808, -0.0045, -0.8140],
                                [-0.5836, -0.6948, 0.4203]])


class Lighting(nn.Module):
    def __init__(self, std=0.1, eigval=IMAGENET_EIGVAL, eigvec=IMAGENET_EIGVEC):
        super().__init__()
        self.std, self.eigval, self.eigvec = std, eigval, eigvec

    def offset(self, alpha: torch.Tensor) -> torch.Tensor:
        # $\sum_i \alpha_i \lambda_i p_i$: one RGB offset `[3]` for the whole image.
        return self.eigvec @ (alpha * self.eigval)

    def forward(self, x):  # x: float [3, H, W] in [0, 1]
        return x + self.offset(torch.randn(3) * self.std)[:, None, None]


def rgb_pca(images: torch.Tensor):
    # `[N, 3, H, W]` -> eigenvalues `[3]`, largest first; eigenvectors as columns.
    pixels = images.permute(1, 0, 2, 3).reshape(3, -1)
    eigval, eigvec = torch.linalg.eigh(torch.cov(pixels))
    return eigval.flip(0), eigvec.flip(1)


def train_transform(recipe: ImageNetRecipe, mean: torch.Tensor) -> T.Compose:
    # The whole training pipeline: PIL image -> float `[3, crop, crop]`.
    return T.Compose([scale_crop_flip(recipe), TO_FLOAT, Lighting(recipe.lighting_std),
                      SubtractMean(mean)])


# %%
if __name__ == "__main__":
    train_set, _ = imagenet_splits(write_imagenet_folder("data/patterns-imagenet"))
    image, mean = train_set[0][0], mean_image(train_set, TINY_IMAGENET.crop)
    torch.manual_seed(0)
    x = train_transform(TINY_IMAGENET, mean)(image)
    print("training input:", tuple(x.shape), x.dtype, "mean image:", tuple(mean.shape))
    # The published eigenvectors are orthonormal up to their 4 printed decimals.
    assert torch.allclose(IMAGENET_EIGVEC.T @ IMAGENET_EIGVEC, torch.eye(3), atol=1e-3)
    augment = T.Compose([scale_crop_flip(TINY_IMAGENET), TO_FLOAT])
    crops = torch.stack([augment(train_set[i][0]) for i in range(64)])
    eigval, eigvec = rgb_pca(crops)
    print("RGB eigenvalues of our patterns:", eigval.numpy().round(4),
          " of ImageNet:", IMAGENET_EIGVAL.numpy())
    for i in range(3):  # α_i = 0.1 (one standard deviation), the other two 0
        shift = Lighting().offset(0.1 * torch.eye(3)[i])
        print(f"RGB offset for α_{i + 1} = 0.1:", shift.numpy().round(4))

# %% [markdown]
# ## SGD and the schedule
#
# > "We use SGD with a mini-batch size of 256. The learning rate starts from 0.1 and is divided by
# > 10 when the error plateaus, and the models are trained for up to 60 × 10⁴ iterations. We use a
# > weight decay of 0.0001 and a momentum of 0.9. We do not use dropout [14], following the
# > practice in [16]." — He et al. 2015, §3.4
#
# "When the error plateaus" is a rule, not a list of epochs: PyTorch's `ReduceLROnPlateau` with
# `factor=0.1` is that rule. The paper gives no patience; we pick one. Our ResNets contain no
# dropout layer at all ([test](../tests/test_scale.md#test_paper_recipe_numbers)).

# %%
def paper_optimizer(model: nn.Module, recipe: ImageNetRecipe, patience: int = 2):
    sgd = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          weight_decay=recipe.weight_decay)
    # Call `plateau.step(validation_error)` once per epoch.
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(sgd, mode="min", factor=0.1,
                                                         patience=patience)
    return sgd, plateau


# %%
if __name__ == "__main__":
    sgd, plateau = paper_optimizer(small_resnet(4), PAPER_IMAGENET)
    for epoch, val_err in enumerate([60, 48, 41, 41, 41.5, 41, 35, 35, 35.2, 35]):
        plateau.step(val_err)
        lr = sgd.param_groups[0]["lr"]
        print(f"epoch {epoch}: val error {val_err:5.1f} %  ->  lr {lr:.3g}")
    assert math.isclose(sgd.param_groups[0]["lr"], 0.001)

# %% [markdown]
# ## Testing with 10 crops
#
# > "In testing, for comparison studies we adopt the standard 10-crop testing [21]." — §3.4
#
# In [21] the image is resized (shorter side 256), its central 256×256 square is kept, and the
# network sees five 224×224 crops of it (four corners and the centre) and their mirror images; the
# ten softmax outputs are averaged. torchvision's `TenCrop` returns top-left, top-right,
# bottom-left, bottom-right and centre, then the same five crops *of the mirrored image*: its
# top-left crop is the mirror of the original's top-right one
# ([test](../tests/test_scale.md#test_ten_crops_are_corners_centre_and_their_mirrors)).

# %%
def ten_crops(image, recipe: ImageNetRecipe, mean: torch.Tensor) -> torch.Tensor:
    side = recipe.test_resize
    square = T.Compose([resized(side), T.CenterCrop(side)])
    crops = T.TenCrop(recipe.crop)(square(image))
    return torch.stack(crops) - mean  # [10, 3, crop, crop]


@torch.no_grad()
def ten_crop_scores(model: nn.Module, image, recipe: ImageNetRecipe, mean):
    return model(ten_crops(image, recipe, mean)).softmax(1).mean(0)  # [classes]


# %%
if __name__ == "__main__":
    photo_path = Path("data/one-image.JPEG")
    rng = np.random.default_rng(1)
    draw_pattern("rings", 500, 375, rng).save(photo_path, quality=90)
    photo = Image.open(photo_path)  # a 500×375 JPEG, a typical ImageNet size
    paper_mean = mean_image(train_set, PAPER_IMAGENET.crop, limit=32)
    crops = ten_crops(photo, PAPER_IMAGENET, paper_mean)
    print("10 crops:", tuple(crops.shape))
    pixels = crops + paper_mean  # the crops before the mean was subtracted
    # Crops 5–9 (the mirrored image's corners, centre) mirror crops 1, 0, 3, 2, 4.
    assert torch.allclose(pixels[5:], pixels[[1, 0, 3, 2, 4]].flip(-1), atol=1e-6)
    fig, axes = plt.subplots(2, 5, figsize=(10, 4.6))
    fig.suptitle("The 10 test crops (224×224) of a 500×375 image")
    names = ["top-left", "top-right", "bottom-left", "bottom-right", "centre"]
    for i, ax in enumerate(axes.flat):
        ax.imshow(pixels[i].clamp(0, 1).permute(1, 2, 0))
        ax.set_title(names[i % 5] + (" (flipped)" if i >= 5 else ""), fontsize=8)
        ax.axis("off")
    plt.show()

# %% [markdown]
# ## Fully-convolutional testing at five scales
#
# > "For best results, we adopt the fully-convolutional form as in [41, 13], and average the
# > scores at multiple scales (images are resized such that the shorter side is in {224, 256,
# > 384, 480, 640})." — §3.4
#
# Global average pooling makes our ResNet accept any image size. The fully-convolutional form
# applies the classifier at every position of the last feature map, a map of scores
# $[K, h, w]$, and averages it over positions. Both are linear, so the order does not matter:
# the averaged score map *is* the network's output
# ([test](../tests/test_scale.md#test_score_map_average_is_the_network_output)). For whole
# images we subtract the mean colour (the mean image averaged over its pixels): a 224×224 mean
# image does not fit a 640×853 input.

# %%
@torch.no_grad()
def score_map(model: ResNet, x: torch.Tensor) -> torch.Tensor:
    # The fc layer as a 1×1 convolution over the last feature map: [B, K, h, w].
    features = model.stages(model.stem(x))  # [B, C, h, w]
    scores = torch.einsum("bchw,kc->bkhw", features, model.fc.weight)
    return scores + model.fc.bias[:, None, None]


@torch.no_grad()
def multi_scale_scores(model: nn.Module, image, recipe: ImageNetRecipe, mean):
    channel_mean = mean.mean((1, 2), keepdim=True)  # [3, 1, 1]
    scores = []
    for side in recipe.test_scales:
        x = resized(side)(image)
        scores.append(model((x - channel_mean)[None]).softmax(1)[0])
    return torch.stack(scores).mean(0)  # [classes], averaged over the scales


# %%
if __name__ == "__main__":
    torch.manual_seed(0)
    model = small_resnet(4).eval()
    for side in PAPER_IMAGENET.test_scales:
        x = resized(side)(photo)
        smap = score_map(model, x[None])
        assert torch.allclose(smap.mean((2, 3)), model(x[None]), atol=1e-5)
        print(f"shorter side {side}: input {tuple(x.shape[1:])} "
              f"-> score map {tuple(smap.shape[1:])}")
    for name, scores in (("10-crop", ten_crop_scores), ("5-scale", multi_scale_scores)):
        probabilities = scores(model, photo, PAPER_IMAGENET, paper_mean)
        print(f"{name} scores:", probabilities.numpy().round(4))

# %% [markdown]
# The network above is untrained, so its scores say nothing about the rings; the point is what
# is computed. The [data-parallel pages](ddp.md) train on this pipeline.
#
# ## Exercises
#
# 1. **PCA lighting (auto-checked).** Write `my_offset(alpha, eigval, eigvec)` that returns the RGB
#    offset $\sum_i \alpha_i \lambda_i p_i$ (a tensor `[3]`) without a matrix product, and run
#    `check_lighting(my_offset)`.
# 2. **Score-map size (auto-checked).** Write `my_map_side(side)`: the height (or width) of
#    the score map of our ResNets for an input `side` pixels high (or wide); run
#    `check_map_side(my_map_side)`. Which layers halve it, and how do they round?
# 3. At shorter side 640, how large is the score map of a 640×853 image, and how many 224×224
#    windows does its average stand for? Why is a mean *image* no longer usable there?
# 4. The paper gives no patience for the plateau rule. Run the schedule demo with patience 0,
#    2 and 5: after which epoch does each reach lr 0.001, and which would you trust on a noisy
#    validation error?

# %%
def check_map_side(my_map_side) -> None:
    model = small_resnet(2).to("meta").eval()  # shapes only: no memory, no arithmetic
    for side in (32, 33, 56, 63, 64, 97, 224, 225, 640, 853):
        want = score_map(model, torch.empty(1, 3, side, side, device="meta")).shape[-1]
        if my_map_side(side) != want:
            raise AssertionError(f"for side {side} your score map is "
                                 f"{my_map_side(side)} wide; count the stride-2 layers "
                                 "and how each rounds")
    print("correct: your score-map sizes are the network's")


def check_lighting(my_offset) -> None:
    for seed in range(3):
        alpha = torch.randn(3, generator=torch.Generator().manual_seed(seed)) * 0.1
        want = Lighting().offset(alpha)
        got = my_offset(alpha, IMAGENET_EIGVAL, IMAGENET_EIGVEC)
        got = torch.as_tensor(got, dtype=torch.float32)
        if got.shape != (3,) or not torch.allclose(got, want, atol=1e-6):
            raise AssertionError(
                f"for alpha={alpha.tolist()} your offset is {got.tolist()}; each "
                "eigenvector is a column, scaled by its alpha and its eigenvalue")
    print("correct: your lighting offset matches")
