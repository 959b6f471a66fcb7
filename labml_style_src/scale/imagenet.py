# %% [markdown]
# # The ImageNet recipe, part 1: the folder, scale augmentation and the mean
#
# How He et al. fed images to their ImageNet ResNets (§3.4), written with torchvision
# transforms and `ImageFolder`: the folder layout, scale augmentation, crops and flips, and the
# per-pixel mean; [part 2](imagenet2.md) adds the colour noise, SGD and testing. Each step runs
# on real JPEG files, at a quarter of the paper's image sizes so that the page runs in
# seconds; the paper's sizes are one argument away.
#
# > "Our implementation for ImageNet follows the practice in [21, 41]. The image is resized with
# > its shorter side randomly sampled in [256, 480] for scale augmentation [41]. A 224×224 crop is
# > randomly sampled from an image or its horizontal flip, with the per-pixel mean subtracted [21].
# > The standard color augmentation in [21] is used." — He et al. 2015, §3.4
#
# [21] is Krizhevsky et al. 2012 (AlexNet), [41] is Simonyan & Zisserman 2015 (VGG).

# %%
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension
from torchvision.transforms import v2 as T

from labml_style_src.resnet_v1.residual_block import BasicBlock
from labml_style_src.resnet_v1.resnet import ResNet

# %% [markdown]
# ## The recipe as data
#
# Every number of §3.4 in one frozen dataclass. `scaled(f)` gives the same recipe for images `f`
# times the size: `TINY_IMAGENET` (a quarter: 56-pixel crops from images whose shorter side is
# 64 to 120) and `small_resnet` are what this chapter's demos and tests use on a CPU.
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


def small_resnet(num_classes: int) -> ResNet:
    # A ResNet-10 for the CPU: ImageNet stem, one basic block per stage, widths 16–128.
    return ResNet(BasicBlock, (1, 1, 1, 1), (16, 32, 64, 128), num_classes=num_classes)

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


# %%
if __name__ == "__main__":
    mean = mean_image(train_set, TINY_IMAGENET.crop)
    colour = mean.mean((1, 2))  # the mean image averaged over its pixels
    print("mean image:", tuple(mean.shape), " mean colour:", colour.numpy().round(3))
    gap = (mean - colour[:, None, None]).abs().max()
    print(f"largest distance of a pixel from the mean colour: {gap:.3f}")

# %% [markdown]
# ## Exercises
#
# 1. **Epochs (auto-checked).** How many passes over ImageNet's 1,281,167 training images are
#    60×10⁴ iterations of 256 images? Set `epochs` to your answer, to one decimal, and run
#    `check_epochs(epochs)`.
# 2. At which shorter side does a 224 crop cover the most of an image, and the least? What would
#    `T.RandomResizedCrop(224)` (the augmentation of later papers) do instead?
# 3. Draw the mean image of the demo's folder and of 64 photos of your own. Which one is close
#    to a single colour, and what would subtracting the mean image rather than the mean colour
#    remove from photos taken with the sky at the top?

# %%
def check_epochs(answer: float) -> None:
    truth = PAPER_IMAGENET.max_iters * PAPER_IMAGENET.batch_size / IMAGENET_TRAIN_IMAGES
    if abs(answer - truth) > 0.05:
        raise AssertionError(f"{answer} is not it: images seen = iterations × batch "
                             "size; divide by the number of training images")
    print(f"correct: {truth:.1f} epochs")
