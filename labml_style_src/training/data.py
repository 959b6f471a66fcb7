# %% [markdown]
# # Looking at the data
#
# Before training anything, look at what the network will see: a grid of images with their class names,
# and how many images each class has. This page writes the PyTorch equivalent of TensorFlow Datasets'
# `show_examples` for any dataset that yields `(image, label)` pairs, and a loader for CIFAR-10 that runs
# torchvision's own reading code.
#
# CIFAR-10 is 60,000 colour images of 32×32 pixels in 10 classes: 50,000 for training (five files of
# 10,000) and 10,000 for testing. The paper trains its CIFAR ResNets on it (§4.2).
#
# !!! note "What the pictures on this page are: handwritten digits, not CIFAR-10"
#     The site is built and tested offline, so this page cannot download CIFAR-10 (an archive of
#     170,498,071 bytes, 163 MiB). It takes a real data set that ships inside scikit-learn instead, 1,797
#     scanned handwritten *digits* (8×8 grey images), scales them to 32×32, writes them **in the CIFAR-10
#     file format** and reads them back through torchvision's `CIFAR10` class: every image and count below
#     is a digit. Every line runs unchanged on the real CIFAR-10: call `load_cifar10(root, download=True)`
#     once when you are online, and the grid shows airplanes, cats and trucks (see the last section).

# %%
import pickle
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch.nn import functional as nnf
from torchvision.datasets import CIFAR10

# %% [markdown]
# ## The CIFAR-10 file format
#
# The "python version" of CIFAR-10 is a folder `cifar-10-batches-py` with six pickled dictionaries
# `data_batch_1` … `data_batch_5` and `test_batch`, plus `batches.meta` with the class names. In each
# batch, `data` is a `uint8` array `[N, 3072]`: one row per image, the 1,024 red values first, then green,
# then blue, each a 32×32 image in row-major order; `labels` is a list of `N` integers.

# %%
# Writing that format ourselves has two uses: the tests get a real CIFAR-10 folder for torchvision's
# loader, and this page gets a real data set to show without a download.
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
BASE_FOLDER = "cifar-10-batches-py"


def write_cifar_format(root, train_images, train_labels, test_images, test_labels,
                       class_names) -> Path:
    # `*_images`: uint8 `[N, 32, 32, 3]` (HWC, as `CIFAR10.data`); labels: ints.
    folder = Path(root) / BASE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    train_images = np.asarray(train_images, np.uint8)
    test_images = np.asarray(test_images, np.uint8)
    for images in (train_images, test_images):
        if images.ndim != 4 or images.shape[1:] != (32, 32, 3):
            raise ValueError(f"CIFAR images are uint8 [N, 32, 32, 3], got "
                             f"{images.shape}")

    def batch(name, images, labels, idx):
        # HWC -> CHW -> one 3072-long row per image: all red, then green, then blue.
        rows = images[idx].transpose(0, 3, 1, 2).reshape(len(idx), 3 * 32 * 32)
        _dump(folder / name, {"batch_label": name, "data": rows,
                              "labels": [int(labels[i]) for i in idx],
                              "filenames": [f"{i}.png" for i in idx]})

    # Five training files, as close to equal in size as the count allows.
    parts = np.array_split(np.arange(len(train_images)), len(TRAIN_FILES))
    for name, idx in zip(TRAIN_FILES, parts):
        batch(name, train_images, train_labels, idx)
    batch("test_batch", test_images, test_labels, np.arange(len(test_images)))
    _dump(folder / "batches.meta", {"label_names": list(class_names), "num_vis": 3072,
                                    "num_cases_per_batch": len(parts[0])})
    return folder


def _dump(path: Path, obj) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


# %% [markdown]
# ## Reading it with torchvision's own code
#
# `torchvision.datasets.CIFAR10(root, download=False)` reads the six files, stacks them into `data`
# (`uint8 [N, 32, 32, 3]`) and `targets`, and takes `classes` from `batches.meta`. Before reading, it
# checks the **MD5 checksum** of every file against the checksums of the official download, so a folder we
# wrote ourselves is rejected as "not found or corrupted".

# %%
# torchvision's check is `check_integrity(path, md5)`, and with `md5=None` it only checks that the file
# exists. So `CIFAR10Files` is a subclass that changes nothing but its *file table*: same file names, no
# checksums. All reading code is torchvision's, untouched. Use it for files you made; for the real
# download keep the checksums (`load_cifar10(..., verify_md5=True)`, the default).
class CIFAR10Files(CIFAR10):
    # The official file names with `md5 = None`: "the file exists" is the whole check.
    train_list = [[name, None] for name, _ in CIFAR10.train_list]
    test_list = [[name, None] for name, _ in CIFAR10.test_list]
    meta = {**CIFAR10.meta, "md5": None}


def load_cifar10(root, train: bool = True, transform=None, *, download: bool = False,
                 verify_md5: bool = True):
    # `download=True` is opt-in: it fetches the official archive (checksummed).
    root = Path(root).expanduser()  # "~/data" works, as in torchvision
    if download:
        return CIFAR10(root, train=train, transform=transform, download=True)
    folder = Path(root) / BASE_FOLDER
    missing = [n for n in (*TRAIN_FILES, "test_batch", "batches.meta")
               if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 not found: {folder} is missing {', '.join(missing)}. Either "
            f"call load_cifar10({str(root)!r}, download=True) once while online "
            f"(170,498,071 bytes from {CIFAR10.url}), or extract that archive yourself "
            f"so that {folder} holds data_batch_1..data_batch_5, test_batch and "
            f"batches.meta.")
    cls = CIFAR10 if verify_md5 else CIFAR10Files
    try:
        return cls(root, train=train, transform=transform, download=False)
    except RuntimeError as e:  # "not found or corrupted": the files exist, so an MD5
        raise ValueError(
            f"the files in {folder} are not the official CIFAR-10 (MD5 mismatch: {e}). "
            f"Re-download them, or pass verify_md5=False for a CIFAR-format folder you "
            f"wrote yourself.") from None


# %% [markdown]
# ## A real data set without a download: scikit-learn's digits

# %%
# scikit-learn ships 1,797 grey 8×8 images of handwritten digits (values 0–16, each the count of ink
# pixels in a 4×4 block of a 32×32 scan). We scale them to 0–255, resize them to 32×32 (bilinear), repeat
# the grey channel three times, and keep 300 for the test file. That is a CIFAR-10-shaped data set with
# ten classes, "0" to "9".
def digits_as_cifar(root, n_test: int = 300, seed: int = 0) -> Path:
    from sklearn.datasets import load_digits  # ships with scikit-learn: no download

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32)[:, None]  # [N, 1, 8, 8]
    x = x * (255 / 16)
    x = nnf.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    x = x.round().clamp(0, 255).to(torch.uint8).repeat(1, 3, 1, 1)  # [N, 3, 32, 32]
    x = x.permute(0, 2, 3, 1).numpy()  # [N, 32, 32, 3], as CIFAR10.data
    order = np.random.default_rng(seed).permutation(len(x))
    test, train = order[:n_test], order[n_test:]
    y = digits.target
    return write_cifar_format(root, x[train], y[train], x[test], y[test],
                              [str(d) for d in range(10)])


# %%
if __name__ == "__main__":
    digits_as_cifar("data/digits")
    train_set = load_cifar10("data/digits", train=True, verify_md5=False)
    test_set = load_cifar10("data/digits", train=False, verify_md5=False)
    print(train_set)
    print("classes:", train_set.classes)
    print("data:", train_set.data.dtype, train_set.data.shape)
    assert train_set.data.shape == (1497, 32, 32, 3) and train_set.data.dtype == "uint8"
    assert len(test_set) == 300 and train_set.classes == [str(d) for d in range(10)]

# %% [markdown]
# ## The `show_examples` equivalent
#
# `show_examples` takes any data set whose items are `(image, label)`, with the image a PIL image, an
# `[H, W]` / `[H, W, C]` array or a `[C, H, W]` tensor (a mean-subtracted one too: each image is rescaled
# for display), picks a few items at random (seeded) and draws them with their class names. `class_counts`
# counts the labels, and `plot_class_counts` draws them; CIFAR-10 has exactly 5,000 training and 1,000
# test images per class. All three work on any such data set, not only on `CIFAR10`
# ([test](../tests/test_training.md#test_show_examples_and_counts_on_any_dataset)).

# %%
def _as_hwc(image) -> np.ndarray:
    # PIL / ndarray `[H, W(, C)]` / tensor `[C, H, W]` -> float `[H, W, C]`, `imshow`'s.
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().float()
        image = image.permute(1, 2, 0) if image.dim() == 3 else image
    a = np.asarray(image, dtype=np.float32)
    a = a[:, :, None] if a.ndim == 2 else a  # [H, W] -> [H, W, 1]
    a = a.repeat(3, axis=2) if a.shape[2] == 1 else a  # grey -> three equal channels
    # Rescale to [0, 1] per image (handles uint8 and mean-subtracted tensors alike).
    return (a - a.min()) / max(float(a.max() - a.min()), 1e-8)


def show_examples(dataset, class_names=None, rows: int = 3, cols: int = 8,
                  seed: int = 0, title: str = ""):
    class_names = class_names or getattr(dataset, "classes", None)
    pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.5 * rows + 0.4),
                             squeeze=False)
    for ax, i in zip(axes.flat, pick[: rows * cols].tolist()):
        image, label = dataset[i]
        ax.imshow(_as_hwc(image), interpolation="nearest")
        name = str(class_names[label]) if class_names else str(label)
        ax.set_title(name if name == str(label) else f"{name} ({label})", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(title or f"{rows * cols} random images with their labels", fontsize=10)
    fig.tight_layout()
    return fig


def class_counts(dataset) -> dict:
    # Datasets that keep their labels (`targets`) are fast; others take one pass.
    labels = getattr(dataset, "targets", None)
    if labels is None:
        labels = [int(label) for _, label in dataset]
    return dict(sorted(Counter(int(t) for t in labels).items()))


def plot_class_counts(splits: dict, class_names, title: str = ""):
    # splits: {"train": dataset, "test": dataset}; one group of bars per class.
    fig, ax = plt.subplots(figsize=(8, 2.8))
    width = 0.8 / len(splits)
    for k, (name, dataset) in enumerate(splits.items()):
        counts = class_counts(dataset)
        xs = np.arange(len(class_names)) + k * width
        bars = ax.bar(xs, [counts.get(c, 0) for c in range(len(class_names))], width,
                      label=f"{name} ({len(dataset):,} images)")
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(np.arange(len(class_names)) + 0.4 - width / 2, class_names)
    ax.set(xlabel="class", ylabel="images", title=title)
    ax.set_ylim(0, 1.3 * ax.get_ylim()[1])  # room for the legend above the bars
    ax.legend(fontsize=8, loc="upper center", ncol=len(splits))
    fig.tight_layout()
    return fig


# %%
if __name__ == "__main__":
    show_examples(train_set, rows=3, cols=8,
                  title="24 random training images (3 rows of 8) with their labels: "
                        "scikit-learn's handwritten digits in CIFAR-10 format, not "
                        "CIFAR-10")
    plt.show()
    counts = class_counts(train_set)
    print("images per class (train):", counts)
    assert sum(counts.values()) == len(train_set) == 1497 and len(counts) == 10
    plot_class_counts({"train": train_set, "test": test_set}, train_set.classes,
                      title="Images per class of the handwritten digits in CIFAR-10 "
                            "format, training and test files")
    plt.show()

# %% [markdown]
# ## The real CIFAR-10, when you are online
#
# ```python
# train_set = load_cifar10("~/data", train=True, download=True)  # once: 163 MiB, checksummed
# show_examples(train_set)    # class names from batches.meta: airplane, automobile, ...
# class_counts(train_set)     # {0: 5000, 1: 5000, ..., 9: 5000}
# ```
#
# Without the files and without `download=True`, `load_cifar10` stops with a message saying where the
# files must go and how to get them: it never trains on an empty or half-written folder
# ([test](../tests/test_training.md#test_missing_cifar_says_where_to_put_it)). The tests also check that
# torchvision's loader really reads a folder written by `write_cifar_format`
# ([test](../tests/test_training.md#test_torchvision_reads_our_cifar_files)).

# %% [markdown]
# ## Exercises
#
# 1. **A held-out set with the classes' shares (auto-checked).** Picking 5,000 validation images at random
#    leaves some classes over- and others under-represented. Write `split(labels, n_val, seed)` that
#    returns `(train_idx, val_idx)`: every index in exactly one of them, `n_val` held out, chosen at
#    random (seeded) but so that each class's count in `val_idx` is within 1 of `n_val` times its share of
#    all labels. Check it with `check_split(split)`.
# 2. Call `show_examples` on the *test* split with another seed. Which digits does the bilinear resize
#    make hardest to read? Would a CNN care about the blur?
# 3. `class_counts` of the digits training file is not perfectly balanced; CIFAR-10's is. Compute the
#    largest relative difference between two classes here. When would a 45k/5k split that ignores classes
#    leave the validation set unbalanced enough to matter?

# %%
def check_split(split) -> None:
    from sklearn.datasets import load_digits

    cases = [(load_digits().target, 297), (np.repeat(np.arange(10), 5000), 5000),
             (np.repeat(np.arange(3), [7, 50, 143]), 33)]
    for labels, n_val in cases:
        labels = np.asarray(labels)
        train, val = (np.sort(np.asarray(i, np.int64)) for i in split(labels, n_val, 0))
        where = f"({len(labels)} labels, n_val={n_val})"
        if len(val) != n_val or not np.array_equal(np.union1d(train, val),
                                                   np.arange(len(labels))):
            raise AssertionError(f"{where}: expected {n_val} held-out indices and "
                                 f"every index in exactly one part; got {len(val)} "
                                 f"held out, {len(train)} for training")
        if len(np.intersect1d(train, val)):
            raise AssertionError(f"{where}: an index is in both parts")
        for c, total in zip(*np.unique(labels, return_counts=True)):
            have, share = int((labels[val] == c).sum()), n_val * total / len(labels)
            if abs(have - share) >= 1:
                raise AssertionError(f"{where}: class {c} has {have} held-out "
                                     f"images; its share of the labels gives "
                                     f"{share:.1f}. Hint: draw per class; where does "
                                     f"the rounding go?")
        again = np.sort(np.asarray(split(labels, n_val, 0)[1]))
        other = np.sort(np.asarray(split(labels, n_val, 1)[1]))
        if not np.array_equal(again, val) or np.array_equal(other, val):
            raise AssertionError(f"{where}: the same seed must give the same split and "
                                 f"another seed another one")
    print("correct: your split keeps every class's share")
