# %% [markdown]
# # Looking at the data
#
# Before training anything, look at what the network will see: a grid of images with their class
# names, and how many images each class has. This page writes the PyTorch equivalent of
# TensorFlow Datasets' `show_examples` for any dataset that yields `(image, label)` pairs, and a
# loader for CIFAR-10 that runs torchvision's own reading code.
#
# CIFAR-10 is 60,000 colour images of 32×32 pixels in 10 classes: 50,000 for training (five files
# of 10,000) and 10,000 for testing. The paper trains its CIFAR ResNets on it (§4.2).
#
# !!! note "No network on this site's build"
#     The site is built and tested offline, so this page cannot download CIFAR-10 (about 163 MB).
#     Instead it takes a data set that ships inside scikit-learn, the 1,797 handwritten *digits*,
#     writes it to disk **in the CIFAR-10 file format**, and reads it back through torchvision's
#     `CIFAR10` class. Every line below runs unchanged on the real CIFAR-10: call
#     `load_cifar10(root, download=True)` once when you are online.

# %%
import os
import pickle
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.nn import functional as nnf
from torchvision.datasets import CIFAR10

# %%
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# %% [markdown]
# ## The CIFAR-10 file format
#
# The "python version" of CIFAR-10 is a folder `cifar-10-batches-py` with six pickled dictionaries
# `data_batch_1` … `data_batch_5` and `test_batch`, plus `batches.meta` with the class names. In each
# batch, `data` is a `uint8` array `[N, 3072]`: one row per image, the 1,024 red values first, then
# green, then blue, each a 32×32 image in row-major order; `labels` is a list of `N` integers.
#
# Writing that format ourselves has two uses: the tests get a real CIFAR-10 folder (ten images per
# file) for torchvision's loader, and this page gets a real data set to show without a download.

# %%
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
BASE_FOLDER = "cifar-10-batches-py"


def write_cifar_format(root, train_images, train_labels, test_images, test_labels, class_names) -> Path:
    # `*_images`: uint8 `[N, 32, 32, 3]` (HWC, like `CIFAR10.data`); labels: ints in `[0, len(class_names))`.
    folder = Path(root) / BASE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    train_images, test_images = np.asarray(train_images, np.uint8), np.asarray(test_images, np.uint8)
    for images in (train_images, test_images):
        if images.ndim != 4 or images.shape[1:] != (32, 32, 3):
            raise ValueError(f"CIFAR images are uint8 [N, 32, 32, 3], got shape {images.shape}")
    # HWC -> CHW -> one 3072-long row per image: all red, then all green, then all blue.
    def rows(images):
        return images.transpose(0, 3, 1, 2).reshape(len(images), 3 * 32 * 32)
    # Five training files, as close to equal in size as the count allows.
    parts = np.array_split(np.arange(len(train_images)), len(TRAIN_FILES))
    for name, idx in zip(TRAIN_FILES, parts):
        _dump(folder / name, {"batch_label": name, "labels": [int(train_labels[i]) for i in idx],
                              "data": rows(train_images[idx]), "filenames": [f"{i}.png" for i in idx]})
    _dump(folder / "test_batch", {"batch_label": "test_batch", "labels": [int(t) for t in test_labels],
                                  "data": rows(test_images), "filenames": [f"{i}.png" for i in range(len(test_images))]})
    _dump(folder / "batches.meta", {"label_names": list(class_names), "num_vis": 3072,
                                    "num_cases_per_batch": len(parts[0])})
    return folder


def _dump(path: Path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


# %% [markdown]
# ## Reading it with torchvision's own code
#
# `torchvision.datasets.CIFAR10(root, download=False)` reads the six files, stacks them into
# `data` (`uint8 [N, 32, 32, 3]`) and `targets`, and takes `classes` from `batches.meta`. Before
# reading, it checks the **MD5 checksum** of every file against the checksums of the official
# download, so a folder we wrote ourselves is rejected as "not found or corrupted".
#
# torchvision's check is `check_integrity(path, md5)`, and with `md5=None` it only checks that the
# file exists. So `CIFAR10Files` below is a subclass that changes nothing but its *file table*: same
# file names, no checksums. All reading code is torchvision's, untouched. Use it for files you made;
# for the real download keep the checksums (`load_cifar10(..., verify_md5=True)`, the default).

# %%
class CIFAR10Files(CIFAR10):
    # The official file names with `md5 = None`: "the file exists" is the whole integrity check.
    train_list = [[name, None] for name, _ in CIFAR10.train_list]
    test_list = [[name, None] for name, _ in CIFAR10.test_list]
    meta = {**CIFAR10.meta, "md5": None}


# %%
def load_cifar10(root, train: bool = True, transform=None, *, download: bool = False, verify_md5: bool = True):
    # `download=True` is opt-in: it fetches the official archive (checksummed) into `root`.
    if download:
        return CIFAR10(root, train=train, transform=transform, download=True)
    folder = Path(root) / BASE_FOLDER
    missing = [n for n in (*TRAIN_FILES, "test_batch", "batches.meta") if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 not found: {folder} is missing {', '.join(missing)}. Either call "
            f"load_cifar10({str(root)!r}, download=True) once while online (about 163 MB from "
            f"{CIFAR10.url}), or extract that archive yourself so that {folder} holds "
            f"data_batch_1..data_batch_5, test_batch and batches.meta."
        )
    cls = CIFAR10 if verify_md5 else CIFAR10Files
    try:
        return cls(root, train=train, transform=transform, download=False)
    except RuntimeError as e:  # torchvision's "not found or corrupted": here the files exist, so an MD5 differs
        raise ValueError(
            f"the files in {folder} are not the official CIFAR-10 (MD5 mismatch: {e}). Re-download them, "
            f"or pass verify_md5=False for a CIFAR-format folder you wrote yourself."
        ) from None


# %% [markdown]
# ## A real data set without a download: scikit-learn's digits
#
# scikit-learn ships 1,797 grey 8×8 images of handwritten digits (values 0–16). We scale them to
# 0–255, resize them to 32×32 (bilinear), repeat the grey channel three times, and keep 300 for the
# test file. That is a CIFAR-10-shaped data set with ten classes, "0" to "9".

# %%
def digits_as_cifar(root, n_test: int = 300, seed: int = 0) -> Path:
    from sklearn.datasets import load_digits  # ships with scikit-learn: no download

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32)[:, None] * (255 / 16)  # [1797, 1, 8, 8]
    x = nnf.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    x = x.round().clamp(0, 255).to(torch.uint8).repeat(1, 3, 1, 1).permute(0, 2, 3, 1)  # [N, 32, 32, 3]
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    test, train = order[:n_test], order[n_test:]
    y = torch.tensor(digits.target)
    return write_cifar_format(root, x[train].numpy(), y[train].tolist(), x[test].numpy(), y[test].tolist(),
                              [str(d) for d in range(10)])


# %%
if __name__ == "__main__":
    digits_as_cifar("data/digits")
    train_set = load_cifar10("data/digits", train=True, verify_md5=False)
    test_set = load_cifar10("data/digits", train=False, verify_md5=False)
    print(train_set)
    print("classes:", train_set.classes)
    print("data:", train_set.data.dtype, train_set.data.shape)
    assert train_set.data.shape == (1497, 32, 32, 3) and train_set.data.dtype == np.uint8
    assert len(test_set) == 300 and train_set.classes == [str(d) for d in range(10)]

# %% [markdown]
# ## The `show_examples` equivalent
#
# `show_examples` takes any data set whose items are `(image, label)`, with the image a PIL image,
# an `[H, W]` / `[H, W, C]` array or a `[C, H, W]` tensor, picks a few items at random (seeded) and
# draws them with their class names. `class_counts` counts the labels; CIFAR-10 has exactly 5,000
# training and 1,000 test images per class.

# %%
def _as_hwc(image) -> np.ndarray:
    # PIL / ndarray `[H, W(, C)]` / tensor `[C, H, W]` -> float array `[H, W, C]` for `imshow`.
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().float().permute(1, 2, 0).numpy() if image.dim() == 3 else image.cpu().numpy()
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == 1:
        a = a.repeat(3, axis=2)
    # Rescale to [0, 1] per image (handles uint8 and mean-subtracted tensors alike).
    return (a - a.min()) / max(float(a.max() - a.min()), 1e-8)


def show_examples(dataset, class_names=None, rows: int = 3, cols: int = 8, seed: int = 0):
    class_names = class_names or getattr(dataset, "classes", None)
    pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[: rows * cols]
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.5 * rows), squeeze=False)
    for ax, i in zip(axes.flat, pick.tolist()):
        image, label = dataset[i]
        ax.imshow(_as_hwc(image), interpolation="nearest")
        name = str(class_names[label]) if class_names else str(label)
        ax.set_title(name if name == str(label) else f"{name} ({label})", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig


def class_counts(dataset) -> dict:
    # Fast path for datasets that keep their labels (`targets`), else one pass over the items.
    labels = getattr(dataset, "targets", None)
    if labels is None:
        labels = [int(label) for _, label in dataset]
    return dict(sorted(Counter(int(t) for t in labels).items()))


# %%
if __name__ == "__main__":
    os.makedirs("runs", exist_ok=True)
    fig = show_examples(train_set, rows=3, cols=8)
    fig.savefig("runs/digits_examples.png", dpi=80)
    plt.show()
    counts = class_counts(train_set)
    print("images per class (train):", counts)
    assert sum(counts.values()) == len(train_set) == 1497 and set(counts) == set(range(10))

# %% [markdown]
# The same two functions work on any `(image, label)` data set, for example a torchvision
# `TensorDataset`-like list of `[C, H, W]` tensors (here: mean-subtracted, so negative values — the
# grid rescales each image for display).

# %%
if __name__ == "__main__":
    pairs = [(torch.tensor(train_set.data[i]).permute(2, 0, 1).float() - 128, train_set.targets[i]) for i in range(64)]
    fig = show_examples(pairs, class_names=train_set.classes, rows=2, cols=8, seed=1)
    plt.close(fig)
    assert class_counts(pairs) == dict(sorted(Counter(train_set.targets[:64]).items()))

# %% [markdown]
# ## The real CIFAR-10, when you are online
#
# ```python
# train_set = load_cifar10("~/data", train=True, download=True)   # once: ~163 MB, checksummed
# show_examples(train_set)          # class names come from batches.meta: airplane, automobile, ...
# class_counts(train_set)           # {0: 5000, 1: 5000, ..., 9: 5000}
# ```
#
# Without the files and without `download=True`, `load_cifar10` stops with a message saying where the
# files must go and how to get them — it never trains on an empty or half-written folder
# ([test](../tests/test_training.md#test_missing_cifar_says_where_to_put_it)). The tests also check
# that torchvision's loader really reads a folder written by `write_cifar_format`
# ([test](../tests/test_training.md#test_torchvision_reads_our_cifar_files)).

# %%
if __name__ == "__main__":
    try:
        load_cifar10("data/no-cifar-here")
    except FileNotFoundError as e:
        print("FileNotFoundError:", str(e)[:120], "...")
    else:
        raise AssertionError("a missing data set must raise")

# %% [markdown]
# ## Exercises
#
# 1. **Rows to pictures (auto-checked).** Write `row_to_image(row)` that turns one row of a CIFAR
#    batch file (`uint8`, length 3072) into the `[32, 32, 3]` image torchvision returns in `data`. Run
#    `check_row_to_image(row_to_image)`: it writes a small CIFAR folder and compares your function with
#    torchvision's loader image by image.
# 2. Call `show_examples` on the *test* split with another seed. Which digits does the bilinear
#    resize make hardest to read? Would a CNN care about the blur?
# 3. `class_counts` of the digits training file is not perfectly balanced; CIFAR-10's is. Compute the
#    largest relative difference between two classes here. When would a 45k/5k split that ignores
#    classes leave the validation set unbalanced enough to matter?

# %%
def check_row_to_image(row_to_image) -> None:
    import tempfile

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 32, 32, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as root:
        folder = write_cifar_format(root, images[:10], list(range(10)), images[10:], [0, 1], CIFAR10_CLASSES)
        with open(folder / "data_batch_1", "rb") as f:
            rows = pickle.load(f, encoding="latin1")["data"]
        expected = CIFAR10Files(root, train=True).data
        for i, row in enumerate(rows):
            got = np.asarray(row_to_image(row))
            if got.shape != (32, 32, 3):
                raise AssertionError(f"expected shape (32, 32, 3), got {got.shape}")
            if not np.array_equal(got, expected[i]):
                raise AssertionError(f"image {i} differs from torchvision's: check the channel order "
                                     f"(all red values come first) and the transpose to HWC")
    print("correct: your row_to_image matches torchvision's CIFAR10 loader")
