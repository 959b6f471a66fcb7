# %% [markdown]
# # The paper's ImageNet recipe
#
# How He et al. trained and tested their ImageNet ResNets (§3.4), written with torchvision
# transforms and `ImageFolder`: scale augmentation, crops and flips, the per-pixel mean, the PCA
# colour noise, SGD with its schedule, and the two ways the paper tests a network (10 crops, and
# the whole image at five scales). Each step runs here on real JPEG files, at a quarter of the
# paper's image sizes so that the page runs in seconds; the paper's sizes are one argument away.
#
# > "Our implementation for ImageNet follows the practice in [21, 41]. The image is resized with
# > its shorter side randomly sampled in [256, 480] for scale augmentation [41]. A 224×224 crop is
# > randomly sampled from an image or its horizontal flip, with the per-pixel mean subtracted [21].
# > The standard color augmentation in [21] is used." — He et al. 2015, §3.4
#
# [21] is Krizhevsky et al. 2012 (AlexNet), [41] is Simonyan & Zisserman 2015 (VGG).

# %%
import math
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension
from torchvision.transforms import v2 as T

from labml_style_src.resnet_v1.residual_block import BasicBlock
from labml_style_src.resnet_v1.resnet import ResNet
from labml_style_src.training.recipe import SubtractMean

# %% [markdown]
# ## The recipe as data
#
# Every number of §3.4 in one frozen dataclass. `scaled(f)` gives the same recipe for images `f`
# times the size: `TINY_IMAGENET` (a quarter: 56-pixel crops from images whose shorter side is
# 64 to 120) is what this chapter's demos and tests use on a CPU.
#
# 60×10⁴ iterations of 256 images are about 120 passes over ImageNet's 1,281,167 training images.

# %%
IMAGENET_TRAIN_IMAGES = 1_281_167


@dataclass(frozen=True)
class ImageNetRecipe:
    scale: tuple = (256, 480)  # shorter side: a uniform integer in [256, 480]
    crop: int = 224
    test_resize: int = 256  # 10-crop testing: shorter side 256, central 256×256
    test_scales: tuple = (224, 256, 384, 480, 640)  # multi-scale testing: shorter sides
    batch_size: int = 256
    lr: float = 0.1  # divided by 10 when the error plateaus
    momentum: float = 0.9
    weight_decay: float = 1e-4
    max_iters: int = 600_000  # "up to 60 × 10^4 iterations"
    lighting_std: float = 0.1  # σ of the PCA colour noise of [21]

    def __post_init__(self):
        lo, hi = self.scale
        if not self.crop <= lo <= hi or self.test_resize < self.crop:
            raise ValueError(f"need crop ≤ scale[0] ≤ scale[1] and crop ≤ test_resize, "
                             f"got crop={self.crop}, scale={self.scale}, "
                             f"test_resize={self.test_resize}")

    def scaled(self, factor: float) -> "ImageNetRecipe":
        r = lambda s: round(s * factor)  # noqa: E731
        return replace(self, scale=tuple(map(r, self.scale)), crop=r(self.crop),
                       test_resize=r(self.test_resize),
                       test_scales=tuple(map(r, self.test_scales)))


PAPER_IMAGENET = ImageNetRecipe()
TINY_IMAGENET = PAPER_IMAGENET.scaled(1 / 4)

# %%
if __name__ == "__main__":
    print(PAPER_IMAGENET)
    print(TINY_IMAGENET)
    paper = PAPER_IMAGENET
    epochs = paper.max_iters * paper.batch_size / IMAGENET_TRAIN_IMAGES
    print(f"60×10^4 iterations × 256 images = {epochs:.1f} epochs of ImageNet")
    assert round(epochs) == 120 and TINY_IMAGENET.crop == 56

# %% [markdown]
# ## The ImageNet folder
#
# torchvision's `ImageFolder` reads the layout everyone uses for ImageNet: one folder per split,
# one sub-folder per class (named by its WordNet id, e.g. `n01440764`), the JPEG files inside. The
# official validation images come as one flat folder with the labels in a separate file; they must
# be sorted into class folders first. `imagenet_splits` checks the layout before anything is
# read and, when it is wrong, says what it expected
# ([test](../tests/test_scale.md#test_bad_imagenet_folders_say_what_layout_is_expected)).

# %%
LAYOUT = """expected the ImageNet folder layout that torchvision's ImageFolder reads:
    {root}/train/n01440764/n01440764_10026.JPEG   one folder per class (WordNet id)
    {root}/train/n01443537/...
    {root}/val/n01440764/ILSVRC2012_val_00000293.JPEG   the same class folders
The official validation images come in one flat folder: sort them into class
folders first (torchvision.datasets.ImageNet does it with the devkit file)."""


class ImageNetLayoutError(FileNotFoundError):
    pass


def _images(folder: Path) -> list:
    return [p for p in folder.iterdir()
            if has_file_allowed_extension(p.name, IMG_EXTENSIONS)]


def imagenet_folder(root, split: str) -> ImageFolder:
    folder = Path(root) / split
    if not folder.is_dir():
        problem = f"{folder} does not exist"
    elif _images(folder):
        problem = f"{len(_images(folder))} images lie directly in {folder}"
    elif not [p for p in folder.iterdir() if p.is_dir()]:
        problem = f"{folder} has no class folders"
    else:
        classes = sorted(p for p in folder.iterdir() if p.is_dir())
        empty = [p.name for p in classes if not _images(p)]
        problem = empty and f"class folders without images in {folder}: {empty[:3]}"
    if problem:
        raise ImageNetLayoutError(f"{problem}; {LAYOUT.format(root=root)}")
    return ImageFolder(folder)  # yields (PIL image, class index)


def imagenet_splits(root) -> tuple:
    train, val = imagenet_folder(root, "train"), imagenet_folder(root, "val")
    if train.classes != val.classes:
        raise ImageNetLayoutError(f"train/ and val/ have different class folders; "
                                  f"{LAYOUT.format(root=root)}")
    return train, val


# %% [markdown]
# No ImageNet here (it is 150 GB and needs an account), so the demos write a small folder in that
# layout: real JPEG files of four kinds of pattern (horizontal stripes, vertical stripes, checks,
# rings) in random colours with noise, of random sizes and aspect ratios, one class per pattern.
# A pattern covers the whole image, so every crop shows its class; a horizontal flip keeps it.
# Everything below reads the folder exactly as it would read ImageNet
# ([test](../tests/test_scale.md#test_generated_folder_is_real_jpegs_in_imagenet_layout)).

# %%
PATTERNS = {  # class name -> 0/1 mask from pixel coordinates (x, y) and a period p
    "horizontal": lambda x, y, p: (y // p) % 2,
    "vertical": lambda x, y, p: (x // p) % 2,
    "checks": lambda x, y, p: (x // p + y // p) % 2,
    "rings": lambda x, y, p: (np.hypot(x, y) // p) % 2,
}


def draw_pattern(kind: str, width: int, height: int, rng) -> Image.Image:
    y, x = np.mgrid[:height, :width].astype(float)
    period = rng.uniform(0.12, 0.2) * min(width, height)
    mask = PATTERNS[kind](x - rng.uniform(0, width), y - rng.uniform(0, height), period)
    # Two colours about half the range apart in each channel, and noise.
    a = rng.integers(0, 256, 3)
    b = (a + 128 + rng.integers(-28, 29, 3)) % 256
    pixels = np.where(mask[..., None] > 0, b, a) + rng.normal(0, 25, (height, width, 3))
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def write_imagenet_folder(root, n_train: int = 64, n_val: int = 16,
                          patterns=tuple(PATTERNS), size=(80, 160),
                          seed: int = 0) -> Path:
    rng, root = np.random.default_rng(seed), Path(root)
    for split, n in (("train", n_train), ("val", n_val)):
        for k, kind in enumerate(patterns):
            wnid = f"n{k:08d}"  # folder names in the WordNet-id style
            folder = root / split / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                w, h = (int(v) for v in rng.integers(size[0], size[1] + 1, 2))
                name = f"{wnid}_{i}" if split == "train" else \
                    f"ILSVRC2012_val_{k * n + i + 1:08d}"
                draw_pattern(kind, w, h, rng).save(folder / f"{name}.JPEG", quality=90)
    return root


# %%
if __name__ == "__main__":
    root = write_imagenet_folder("data/patterns-imagenet")
    train_set, val_set = imagenet_splits(root)
    image, label = train_set[0]
    print(f"{len(train_set)} training and {len(val_set)} validation JPEGs")
    print("classes:", train_set.classes)
    print("first image:", image.size, image.mode, "class", label)
    try:
        imagenet_folder(root, "test")
    except ImageNetLayoutError as e:
        print("ImageNetLayoutError:", str(e).splitlines()[0])

# %% [markdown]
# ## Scale augmentation, crop and flip
#
# `RandomResize(256, 481)` draws one integer shorter side in $[256, 480]$ (the upper bound of
# `torch.randint` is exclusive) and resizes with the aspect ratio kept; `RandomCrop(224)` and
# `RandomHorizontalFlip()` do the rest. A 224 crop covers between 47 % and 88 % of the shorter side
# ([test](../tests/test_scale.md#test_scale_augmentation_range)).

# %%
TO_FLOAT = T.ToDtype(torch.float32, scale=True)  # uint8 in [0, 255] -> float in [0, 1]


def resized(side: int) -> T.Compose:
    # PIL image -> float `[3, H, W]` with shorter side `side`, aspect ratio kept.
    return T.Compose([T.ToImage(), T.Resize(side), TO_FLOAT])


def scale_crop_flip(recipe: ImageNetRecipe) -> T.Compose:
    return T.Compose([T.ToImage(),  # PIL -> uint8 tensor [3, H, W]
                      T.RandomResize(recipe.scale[0], recipe.scale[1] + 1),
                      T.RandomCrop(recipe.crop), T.RandomHorizontalFlip()])


# %%
if __name__ == "__main__":
    torch.manual_seed(0)
    resize, tiny = T.RandomResize(256, 481), torch.zeros(1, 2, 2)  # a 2×2 input: cheap
    shorter = [min(resize(tiny).shape[-2:]) for _ in range(500)]
    print(f"500 shorter sides drawn: {min(shorter)} to {max(shorter)}")
    assert 256 <= min(shorter) and max(shorter) <= 480
    print("one training crop:", tuple(scale_crop_flip(PAPER_IMAGENET)(image).shape))

# %% [markdown]
# ## The per-pixel mean
#
# "The per-pixel mean" is a mean *image*, one value per colour and pixel position, subtracted
# from every crop. AlexNet computed it on 256×256 images. We compute it at the crop size over
# the training images, each resized (shorter side = crop) and centre-cropped, as a running sum
# (ImageNet does not fit in memory); `limit` takes evenly spaced images for a quicker estimate
# ([test](../tests/test_scale.md#test_mean_image_is_the_pixelwise_average)).

# %%
def mean_image(dataset, size: int, limit: int | None = None) -> torch.Tensor:
    square = T.Compose([resized(size), T.CenterCrop(size)])
    n = min(limit or len(dataset), len(dataset))
    picked = np.linspace(0, len(dataset) - 1, n).round()
    total = torch.zeros(3, size, size)
    for i in picked.astype(int):
        total += square(dataset[i][0])
    return total / len(picked)  # [3, size, size], values in [0, 1]


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
    mean = mean_image(train_set, TINY_IMAGENET.crop)
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


def small_resnet(num_classes: int) -> ResNet:
    # A ResNet-10 for the CPU: ImageNet stem, one basic block per stage, widths 16–128.
    return ResNet(BasicBlock, (1, 1, 1, 1), (16, 32, 64, 128), num_classes=num_classes)


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
# is computed. The [data-parallel page](ddp.md) trains on this pipeline.
#
# ## Exercises
#
# 1. **Epochs (auto-checked).** How many passes over ImageNet's 1,281,167 training images are
#    60×10⁴ iterations of 256 images? Set `epochs` to your answer, to one decimal, and run
#    `check_epochs(epochs)`.
# 2. **PCA lighting (auto-checked).** Write `my_offset(alpha, eigval, eigvec)` that returns the RGB
#    offset $\sum_i \alpha_i \lambda_i p_i$ (a tensor `[3]`) without a matrix product, and run
#    `check_lighting(my_offset)`.
# 3. At which shorter side does a 224 crop cover the most of an image, and the least? What would
#    `T.RandomResizedCrop(224)` (the augmentation of later papers) do instead?
# 4. At shorter side 640, how large is the score map of a 640×853 image, and how many 224×224
#    windows does its average stand for? Why is a mean *image* no longer usable there?

# %%
def check_epochs(answer: float) -> None:
    truth = PAPER_IMAGENET.max_iters * PAPER_IMAGENET.batch_size / IMAGENET_TRAIN_IMAGES
    if abs(answer - truth) > 0.05:
        raise AssertionError(f"{answer} is not it: images seen = iterations × batch "
                             "size; divide by the number of training images")
    print(f"correct: {truth:.1f} epochs")


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
