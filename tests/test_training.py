"""Fidelity tests for the training chapter: the data files, the paper's recipe, the loop, the fast path.

No network anywhere: CIFAR-10 is replaced by folders in the real CIFAR-10 format that the tests write.
"""

import csv
import importlib.util
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as nnf
from torch.utils.data import TensorDataset
from torchvision.datasets import CIFAR10

from labml_style_src.resnet_v1.cifar import cifar_resnet
from labml_style_src.training.data import (
    CIFAR10Files,
    check_split,
    class_counts,
    digits_as_cifar,
    load_cifar10,
    plot_class_counts,
    show_examples,
    write_cifar_format,
)
from labml_style_src.training.fast_gpu import (
    DeviceBatches,
    check_black_padding,
    crop_flip,
    fast_options,
    random_crop_flip,
)
from labml_style_src.training.loop import (
    CheckpointError,
    check_accumulation,
    fit,
    plot_metrics,
    rounded,
    train_step,
)
from labml_style_src.training.recipe import (
    PAPER,
    PAPER_RESNET110,
    LoaderBatches,
    Recipe,
    check_lr,
    cifar_batches,
    lr_at,
    make_optimizer,
    paper_transform,
    per_pixel_mean,
    plot_schedule,
    train_val_split,
)
from solutions.training.data import split
from solutions.training.fast_gpu import crop_black
from solutions.training.loop import accumulated_step
from solutions.training.recipe import my_lr

ROOT = Path(__file__).resolve().parent.parent
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
ASSETS = ROOT / "docs" / "assets" / "training"
PAGES = ROOT / "labml_style_src" / "training"


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_cifar(root, per_batch=10, seed=0):
    """A CIFAR-10 folder with `per_batch` random images in each of the six files; returns the arrays."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(6 * per_batch, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=6 * per_batch).tolist()
    n = 5 * per_batch
    write_cifar_format(root, images[:n], labels[:n], images[n:], labels[n:], CIFAR10_CLASSES)
    return images, labels, n


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    digits_as_cifar(root)
    return root


def assert_hint(error, *not_in):
    """A checker's failure gives a hint, and not the values it compares against."""
    message = str(error.value)
    assert "Hint" in message, message
    assert not any(s in message for s in not_in), message


# ---------------------------------------------------------------------------------------------------------------
# Data


# torchvision's real `CIFAR10` loading code reads a folder that `write_cifar_format` wrote: the images,
# labels and class names come back exactly. `CIFAR10Files` only replaces the file table (no MD5s).
def test_torchvision_reads_our_cifar_files(tmp_path, monkeypatch):
    images, labels, n = tiny_cifar(tmp_path)
    assert CIFAR10Files.__init__ is CIFAR10.__init__ and CIFAR10Files._load_meta is CIFAR10._load_meta
    train = load_cifar10(tmp_path, train=True, verify_md5=False)
    test = load_cifar10(tmp_path, train=False, verify_md5=False)
    assert isinstance(train, CIFAR10)
    assert np.array_equal(train.data, images[:n]) and train.targets == labels[:n]
    assert np.array_equal(test.data, images[n:]) and test.targets == labels[n:]
    assert train.classes == list(CIFAR10_CLASSES)
    image, label = train[3]
    assert isinstance(image, Image.Image) and image.size == (32, 32) and label == labels[3]
    monkeypatch.setenv("HOME", str(tmp_path))
    assert np.array_equal(load_cifar10("~", verify_md5=False).data, train.data)  # "~" as torchvision
    # The official checksums stay on by default: our files are not the real CIFAR-10, and we say so.
    with pytest.raises(ValueError, match="MD5"):
        load_cifar10(tmp_path, train=True)


# A missing data set without `download=True` names the folder, the missing files and both ways to fix it.
def test_missing_cifar_says_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True") as e:
        load_cifar10(tmp_path / "nothing")
    assert "cifar-10-batches-py" in str(e.value) and "data_batch_1" in str(e.value)
    assert "cifar-10-python.tar.gz" in str(e.value) and "170,498,071 bytes" in str(e.value)


def test_write_cifar_format_rejects_wrong_shapes(tmp_path):
    with pytest.raises(ValueError, match=r"\[N, 32, 32, 3\]"):
        write_cifar_format(tmp_path, np.zeros((2, 3, 32, 32)), [0, 1], np.zeros((1, 32, 32, 3)), [0], "ab")


# `show_examples`, `class_counts` and `plot_class_counts` work on any list of (image, label) pairs.
def test_show_examples_and_counts_on_any_dataset():
    pairs = [(torch.randn(3, 8, 8), i % 3) for i in range(10)]  # negative values too
    fig = show_examples(pairs, class_names=["a", "b", "c"], rows=2, cols=3, title="t")
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 6 and set(titles) <= {"a (0)", "b (1)", "c (2)"}
    assert fig._suptitle.get_text() == "t"
    assert class_counts(pairs) == {0: 4, 1: 3, 2: 3}
    fig = plot_class_counts({"train": pairs, "test": pairs[:4]}, ["a", "b", "c"])
    heights = [int(p.get_height()) for p in fig.axes[0].patches]
    assert heights == [4, 3, 3, 2, 1, 1]


def test_check_split():
    check_split(split)

    def random_split(labels, n_val, seed):  # a wrong one: ignores the classes
        return train_val_split(len(labels), n_val, seed)

    with pytest.raises(AssertionError, match="held-out images; its share") as e:
        check_split(random_split)
    assert_hint(e)

    def one_short(labels, n_val, seed):  # wrong: one image too few held out
        train, val = split(labels, n_val, seed)
        return np.append(train, val[-1]), val[:-1]

    with pytest.raises(AssertionError, match="expected 297 held-out"):
        check_split(one_short)


# ---------------------------------------------------------------------------------------------------------------
# The recipe (He et al. 2015, §4.2)


# The paper's numbers: SGD lr 0.1, momentum 0.9, weight decay 1e-4, batch 128, ÷10 at 32k and 48k, stop at
# 64k; trained on all 50k training images and evaluated on the test set (n_val = 0).
def test_paper_recipe_numbers():
    assert (PAPER.lr, PAPER.momentum, PAPER.weight_decay, PAPER.batch_size) == (0.1, 0.9, 1e-4, 128)
    assert PAPER.milestones == (32_000, 48_000) and PAPER.gamma == 0.1 and PAPER.max_iters == 64_000
    assert PAPER.n_val == 0 and PAPER.warmup_iters == 0
    assert PAPER_RESNET110 == replace(PAPER, warmup_lr=0.01, warmup_iters=400)
    with pytest.raises(ValueError, match="increasing"):
        Recipe(milestones=(48_000, 32_000))
    with pytest.raises(ValueError, match="warmup_lr"):
        Recipe(warmup_iters=10)
    with pytest.raises(ValueError, match="n_val"):
        Recipe(n_val=-1)


# The default pipeline on a CIFAR-format folder (written by the test, read by torchvision) trains on every image
# of the five training files and evaluates on the test file; the 45k/5k option (here 45/5) holds part of the
# training files out instead, and the held-out images never reach training. The per-pixel mean is that of the
# images trained on.
def test_paper_pipeline_trains_on_the_training_set_and_tests_on_the_test_set(tmp_path):
    images, labels, n = tiny_cifar(tmp_path)
    paper = cifar_batches(tmp_path, PAPER, verify_md5=False)
    assert len(paper.train_set) == n == 50 and len(paper.held_out_set) == 10
    assert paper.train_set.train and not paper.held_out_set.train  # the test file
    assert np.array_equal(paper.held_out_set.data, images[n:])
    assert torch.allclose(paper.train_set.transform.transforms[2].mean, per_pixel_mean(images[:n]))

    selection = cifar_batches(tmp_path, replace(PAPER, n_val=5), verify_md5=False)
    train_idx, val_idx = selection.train_set.indices, selection.held_out_set.indices
    assert len(train_idx) == 45 and len(val_idx) == 5 and set(train_idx).isdisjoint(val_idx)
    assert selection.held_out_set.dataset.train  # taken from the training files
    mean = selection.held_out_set.dataset.transform.transforms[2].mean
    assert torch.allclose(mean, per_pixel_mean(images[:n][train_idx]))


# 50,000 training images in minibatches of 128: a real DataLoader, as the batch source builds it, makes 391
# iterations per epoch (the last one of 80 images), so 64k iterations end in epoch 164; 45,000 images make 352
# iterations, about 182 epochs.
def test_iterations_per_epoch_on_50k_and_45k():
    for n, per_epoch, epochs in ((50_000, 391, 164), (45_000, 352, 182)):
        batches = LoaderBatches(TensorDataset(torch.zeros(n, 0)), None, PAPER.batch_size)
        loader = batches.loader(0)
        sizes = [len(b) for b in loader.batch_sampler]
        assert len(loader) == len(sizes) == per_epoch and sum(sizes) == n
        assert round(PAPER.max_iters / per_epoch) == epochs
    assert sizes[-1] == 45_000 - 351 * 128 and 50_000 - 390 * 128 == 80
    assert math.ceil(PAPER.max_iters / 391) == 164


# lr ÷ 10 at 32k and 48k: the lr the optimizer actually uses at each iteration, read from a real SGD +
# LambdaLR stepped once per iteration as `fit` does; and ResNet-110's 0.01 warm-up for 400 iterations.
# The page's figure draws exactly these values.
def test_lr_schedule_values():
    def lrs(recipe, n):
        optimizer, schedule = make_optimizer(nn.Linear(1, 1), recipe)
        out = []
        for _ in range(n):
            out.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            schedule.step()
        return out

    paper = lrs(PAPER, 48_001)
    assert math.isclose(paper[0], 0.1) and math.isclose(paper[31_999], 0.1)
    assert math.isclose(paper[32_000], 0.01) and math.isclose(paper[47_999], 0.01)
    assert math.isclose(paper[48_000], 0.001)
    warm = lrs(PAPER_RESNET110, 402)
    assert math.isclose(warm[0], 0.01) and math.isclose(warm[399], 0.01) and math.isclose(warm[400], 0.1)
    full, zoom = plot_schedule({"paper": PAPER, "110": PAPER_RESNET110}).axes
    drawn = full.lines[0].get_ydata()
    assert len(drawn) == 64_000 and np.allclose(drawn[31_999:32_001], [0.1, 0.01])
    assert np.allclose(zoom.lines[1].get_ydata()[399:401], [0.01, 0.1])


def test_check_lr():
    check_lr(my_lr)
    with pytest.raises(AssertionError, match="batch 256, iteration 0") as e:
        check_lr(lambda it, batch: lr_at(it, PAPER))  # the lr not scaled
    assert_hint(e, "0.2")
    with pytest.raises(AssertionError, match="batch 256, iteration 16000") as e:
        check_lr(lambda it, batch: batch / 128 * lr_at(it, PAPER))  # milestones not moved
    assert_hint(e, "0.02")


# The 45k/5k split: disjoint, covering all 50k, the same for the same seed, different for another.
def test_split_is_disjoint_and_deterministic():
    train, val = train_val_split(50_000, 5_000, seed=0)
    assert len(train) == 45_000 and len(val) == 5_000
    assert len(set(train.tolist()) | set(val.tolist())) == 50_000
    train2, val2 = train_val_split(50_000, 5_000, seed=0)
    assert torch.equal(train, train2) and torch.equal(val, val2)
    assert not torch.equal(val, train_val_split(50_000, 5_000, seed=1)[1])
    with pytest.raises(ValueError, match="n_val"):
        train_val_split(10, 10)


# Per-pixel mean subtraction, 4-pixel padding, random 32×32 crop, horizontal flip: every training
# output is one of the 9×9 crops of the padded mean-subtracted image, or its mirror; test images are
# exactly the mean-subtracted original.
def test_transforms_shapes_and_augmentation(tmp_path):
    images, _, n = tiny_cifar(tmp_path)
    ds = load_cifar10(tmp_path, verify_md5=False)
    mean = per_pixel_mean(ds.data)
    assert mean.shape == (3, 32, 32) and mean.dtype == torch.float32
    assert torch.allclose(mean, torch.from_numpy(images[:n]).float().mean(0).permute(2, 0, 1) / 255)
    x = torch.from_numpy(images[0]).permute(2, 0, 1).float() / 255 - mean
    test_x = paper_transform(mean, train=False)(ds[0][0])
    assert test_x.shape == (3, 32, 32) and test_x.dtype == torch.float32 and torch.allclose(test_x, x, atol=1e-6)
    padded = nnf.pad(x, (4, 4, 4, 4))
    crops = [padded[:, i:i + 32, j:j + 32] for i in range(9) for j in range(9)]
    crops += [c.flip(2) for c in crops]
    torch.manual_seed(0)
    aug = paper_transform(mean, train=True)
    outs = [aug(ds[0][0]) for _ in range(20)]
    assert all(o.shape == (3, 32, 32) and o.dtype == torch.float32 for o in outs)
    assert all(any(torch.allclose(o, c, atol=1e-6) for c in crops) for o in outs)
    assert len({tuple(o.flatten()[:50].tolist()) for o in outs}) > 1  # it is random


# The committed warm-up measurement (scripts/measure_warmup.py -> docs/assets/training/warmup.csv) says what the
# recipe page says, in the page's rounding; and the first iterations of one run, re-run here, agree with the file.
def test_committed_warmup_measurement():
    measure = load_script("measure_warmup")
    rows = measure.read_rows(ASSETS / "warmup.csv")
    assert len(rows) == 2 * 2 * 2 * 3 * 36 and {r["iteration"] for r in rows} == set(range(1, 37))

    def run(kind, depth, warmup, seed):
        return [r for r in rows if (r["kind"], r["depth"], r["warmup_iters"], r["seed"]) == (kind, depth, warmup, seed)]

    def peak(r):
        return max(r, key=lambda row: row["loss"])

    no_warm, warm = [run("ResNet", 56, 0, s) for s in range(3)], [run("ResNet", 56, 36, s) for s in range(3)]
    assert sorted(round(peak(r)["loss"], 1) for r in no_warm)[::2] == [10.7, 16.9]  # "between 10.7 and 16.9"
    assert sorted(peak(r)["iteration"] for r in no_warm) == [4, 7, 14]
    assert all(2.05 <= r[-1]["loss"] < 2.25 and 75.5 <= r[-1]["err"] < 86.5 for r in no_warm)  # 2.1-2.2, 76-86 %
    assert all(r[0]["lr"] == 0.1 and r[-1]["lr"] == 0.1 for r in no_warm)
    assert all(peak(r)["iteration"] == 1 and peak(r)["loss"] < 3.95 for r in warm)  # "at most 3.9"
    assert sorted(round(r[-1]["loss"], 2) for r in warm)[::2] == [0.32, 0.49] and all(r[-1]["lr"] == 0.01 for r in warm)
    assert all(math.isfinite(r["loss"]) for r in rows)
    assert max(peak(run("plain", 56, 0, s))["loss"] for s in range(3)) < 2.55  # "at most 2.5"
    for kind in ("plain", "ResNet"):  # the 20-layer nets end lower without the warm-up, every seed
        assert all(run(kind, 20, 0, s)[-1]["loss"] < run(kind, 20, 36, s)[-1]["loss"] for s in range(3))

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the committed run
    try:
        again = measure.run_one("ResNet", 56, False, 1, iters=4)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(again, run("ResNet", 56, 0, 1)[:4], strict=True):
        assert math.isclose(a["loss"], b["loss"], rel_tol=1e-3) and a["lr"] == b["lr"] == 0.1
    assert again[-1]["loss"] > 10  # the jump itself, reproduced


# ---------------------------------------------------------------------------------------------------------------
# The loop: checkpoints, resume, metrics


TINY = replace(PAPER, batch_size=16, milestones=(6,), max_iters=9)


def tiny_run(digits_root, run_dir, *, seed=0, on_step=None, recipe=TINY, depth=8):
    batches = cifar_batches(digits_root, recipe, seed=seed, verify_md5=False, max_batches=3)
    torch.manual_seed(seed)
    return fit(cifar_resnet(depth), batches, recipe, run_dir, seed=seed, device="cpu", progress=False,
               on_step=on_step)


class Killed(Exception):
    pass


def kill_at(n):
    def on_step(iteration):
        if iteration == n:
            raise Killed

    return on_step


def read_metrics(run_dir) -> list:
    """The metrics.csv that `fit` writes, as numbers."""
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: int(v) if k in ("epoch", "iteration") else float(v) for k, v in r.items()} for r in rows]


def without_time(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


# A run killed in the middle of its second epoch and resumed ends with exactly the weights and metrics
# of an uninterrupted run with the same seed (data order, augmentation draws, momentum and lr restored).
def test_kill_and_resume_gives_the_same_run(digits_root, tmp_path):
    straight = tiny_run(digits_root, tmp_path / "a")
    with pytest.raises(Killed):
        tiny_run(digits_root, tmp_path / "b", on_step=kill_at(5))
    assert len(read_metrics(tmp_path / "b")) == 1  # one finished epoch was saved before the kill
    resumed = tiny_run(digits_root, tmp_path / "b")
    assert len(straight) == 3 and without_time(resumed) == without_time(straight)
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Not trivially equal: another seed gives another run.
    other = tiny_run(digits_root, tmp_path / "c", seed=1)
    assert without_time(other) != without_time(straight)


# Checkpoints are written to a temporary file and swapped in: a crash while saving leaves the
# previous checkpoint readable and the run resumable.
def test_crash_while_saving_keeps_the_old_checkpoint(digits_root, tmp_path, monkeypatch):
    tiny_run(digits_root, tmp_path, recipe=replace(TINY, max_iters=3))
    good = (tmp_path / "checkpoint.pt").read_bytes()
    real_save = torch.save

    def dying_save(obj, f):
        real_save(obj, f)
        with open(f, "r+b") as fh:
            fh.truncate(100)  # half-written file ...
        raise Killed  # ... and the process dies

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(Killed):
        tiny_run(digits_root, tmp_path, recipe=replace(TINY, max_iters=6))
    monkeypatch.setattr(torch, "save", real_save)
    assert (tmp_path / "checkpoint.pt").read_bytes() == good
    assert len(tiny_run(digits_root, tmp_path, recipe=replace(TINY, max_iters=6))) == 2


# A corrupt, foreign or mismatched checkpoint is a clear error, and the file is left untouched.
def test_bad_checkpoint_is_an_error_not_a_restart(digits_root, tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    ckpt.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        tiny_run(digits_root, tmp_path)
    assert ckpt.read_bytes() == b"\x00garbage"
    torch.save({"epoch": 3, "weights": torch.zeros(2)}, ckpt)
    with pytest.raises(CheckpointError, match="not a checkpoint of this training loop"):
        tiny_run(digits_root, tmp_path)
    ckpt.unlink()
    tiny_run(digits_root, tmp_path, recipe=replace(TINY, max_iters=3))
    with pytest.raises(CheckpointError, match="different model"):
        tiny_run(digits_root, tmp_path, depth=14)
    with pytest.raises(CheckpointError, match="Only max_iters may change"):
        tiny_run(digits_root, tmp_path, recipe=replace(TINY, lr=0.05))
    with pytest.raises(CheckpointError, match="Only max_iters may change"):
        tiny_run(digits_root, tmp_path, recipe=replace(TINY, n_val=100))  # another split
    with pytest.raises(FileExistsError, match="resume=True"):
        fit(cifar_resnet(8), None, TINY, tmp_path, resume=False, progress=False)


# Metrics are written as CSV and JSON every epoch and agree; the plot is a real, non-empty PNG; a row prints
# rounded to 4 significant digits, without the machine-dependent seconds.
def test_metrics_files_and_plot(digits_root, tmp_path):
    history = tiny_run(digits_root, tmp_path)
    from_csv = read_metrics(tmp_path)
    from_json = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["iteration"] for r in from_csv] == [3, 6, 9] and len(from_json) == 3
    for a, b, c in zip(from_csv, from_json, history):
        assert a.keys() == b.keys() == c.keys()
        assert all(math.isclose(a[k], b[k]) and math.isclose(b[k], c[k]) for k in a)
    assert math.isclose(from_csv[-1]["lr"], 0.01)  # ÷10 after the milestone at 6
    shown = rounded(history[-1])  # a row as the pages print it: 0.1 · 0.1 is 0.01, no seconds
    assert shown["lr"] == 0.01 != history[-1]["lr"] and shown["epoch"] == 3 and "seconds" not in shown
    fig = plot_metrics(from_csv, "title")
    assert [line.get_label() for line in fig.axes[1].lines] == ["train", "test"]
    fig.savefig(tmp_path / "m.png")
    png = (tmp_path / "m.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000


# A real learning check: 48 seeded SGD steps of ResNet-8 on the digits (as CIFAR files, with the paper's
# augmentation) lower the training loss and bring the test error well below chance (90 %).
def test_short_training_run_learns(digits_root, tmp_path):
    recipe = replace(PAPER, batch_size=64, milestones=(36, 42), max_iters=48)
    batches = cifar_batches(digits_root, recipe, verify_md5=False, max_batches=12)
    torch.manual_seed(0)
    history = fit(cifar_resnet(8), batches, recipe, tmp_path, device="cpu", progress=False)
    assert history[-1]["train_loss"] < 0.8 * history[0]["train_loss"]
    assert history[-1]["held_out_err"] < 70


def test_check_accumulation():
    check_accumulation(accumulated_step)

    def summed(model, optimizer, x, y, k):  # wrong: k times the mean loss
        optimizer.zero_grad(set_to_none=True)
        for xs, ys in zip(x.chunk(k), y.chunk(k)):
            nnf.cross_entropy(model(xs), ys).backward()
        optimizer.step()

    with pytest.raises(AssertionError, match="differs from two steps on whole minibatches") as e:
        check_accumulation(summed)
    assert_hint(e, "/ k")

    def last_part_only(model, optimizer, x, y, k):  # wrong: gradients cleared for every part
        for xs, ys in zip(x.chunk(k), y.chunk(k)):
            optimizer.zero_grad(set_to_none=True)
            (nnf.cross_entropy(model(xs), ys) / k).backward()
        optimizer.step()

    with pytest.raises(AssertionError, match="differs from two steps on whole minibatches") as e:
        check_accumulation(last_part_only)
    assert_hint(e)
    # The reference it compares with is the loop's own step on the whole minibatch.
    assert check_accumulation.__globals__["train_step"] is train_step


# ---------------------------------------------------------------------------------------------------------------
# The fast path


# One gather crops and flips a whole batch exactly like slicing each padded image; every one of the
# 9×9 offsets and both flips are reachable; the result is already channels_last.
def test_batched_crop_flip_matches_per_image_slicing():
    x = torch.randn(162, 3, 32, 32)
    offsets = torch.tensor([(i, j) for i in range(9) for j in range(9)] * 2)
    flip = torch.arange(162) >= 81
    out = crop_flip(x, offsets[:, 0], offsets[:, 1], flip)
    padded = nnf.pad(x, (4, 4, 4, 4))
    for b in range(162):
        dy, dx = offsets[b].tolist()
        crop = padded[b, :, dy:dy + 32, dx:dx + 32]
        assert torch.equal(out[b], crop.flip(2) if flip[b] else crop)
    assert out.is_contiguous(memory_format=torch.channels_last)


def make_device_batches(device="cpu", n=100, batch_size=32, seed=0, classes=None):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.arange(n)  # label = index: lets the test see which images came out
    labels = labels % classes if classes else labels
    return DeviceBatches(images, labels, images[:20], labels[:20], images.float().mean(0) / 255, batch_size,
                         seed=seed, device=device)


# An epoch visits every image once; the same epoch gives the same batches (what resume relies on),
# another epoch another order.
def test_device_batches_cover_epoch_and_repeat():
    batches = make_device_batches()
    first = list(batches.train(0))
    seen = torch.cat([y for _, y in first])
    assert sorted(seen.tolist()) == list(range(100)) and [len(y) for _, y in first] == [32, 32, 32, 4]
    again = list(batches.train(0))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not torch.equal(torch.cat([y for _, y in batches.train(1)]), seen)
    x, _ = first[0]
    assert x.shape == (32, 3, 32, 32) and x.dtype == torch.float32
    assert sum(len(y) for _, y in batches.held_out()) == 20


# The loop with channels_last and bf16 autocast (on CPU here) trains and writes its checkpoint.
def test_fit_with_channels_last_and_bf16_on_cpu(tmp_path):
    torch.manual_seed(0)
    model = cifar_resnet(8)
    history = fit(model, make_device_batches(classes=10), replace(TINY, max_iters=4, batch_size=32), tmp_path,
                  device="cpu", progress=False, autocast_dtype=torch.bfloat16, channels_last=True)
    assert len(history) == 1 and math.isfinite(history[0]["train_loss"])
    assert model.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert fast_options("cuda") == dict(autocast_dtype=torch.bfloat16, channels_last=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_batches_identical_on_cuda():
    cpu = list(make_device_batches("cpu").train(3))
    gpu = list(make_device_batches("cuda").train(3))
    assert all(torch.equal(a[0], b[0].cpu()) and torch.equal(a[1], b[1].cpu()) for a, b in zip(cpu, gpu))
    x = gpu[0][0]
    g = torch.Generator().manual_seed(0)
    assert random_crop_flip(x, g).device == x.device


def test_check_black_padding():
    check_black_padding(crop_black)
    with pytest.raises(AssertionError, match="border") as e:
        check_black_padding(lambda x, mean, dy, dx, flip: crop_flip(x, dy, dx, flip))  # mean-colour padding
    assert_hint(e, "+ mean", "- mean")
    with pytest.raises(AssertionError, match="inside") as e:
        check_black_padding(lambda x, mean, dy, dx, flip: crop_black(x, mean, dy, dx, ~flip))
    assert_hint(e)


# scripts/bench_training.py runs end to end on CPU with small counts and reports both sources.
def test_bench_script_runs_on_cpu():
    out = load_script("bench_training").main([
        "--device", "cpu", "--n-images", "64", "--steps", "1", "--warmup", "0", "--workers", "0",
        "--depth", "8", "--batch-size", "16", "--rounds", "2"])
    assert out["train_dataloader_images_per_s"] > 0 and out["train_ours_images_per_s"] > 0
    assert len(out["rounds_images_per_s"]["data_ours"]) == 2 and out["data_speedup"] > 0


# The figures the fast path page states are the committed `make bench-train` results (CPU time of one thread,
# no workers), rounded as printed, and so are the two per-image costs computed from them.
def test_fast_gpu_page_states_the_committed_benchmark():
    bench = json.loads((ASSETS / "bench_cpu.json").read_text())
    assert (bench["device"], bench["clock"], bench["threads"], bench["workers"]) == ("cpu", "cpu", 1, 0)
    assert bench["rounds"] == 3 and bench["depth"] == 20 and bench["batch_size"] == 128
    page = (PAGES / "fast_gpu.py").read_text(encoding="utf-8")
    for key in ("data_dataloader_images_per_s", "data_ours_images_per_s", "train_dataloader_images_per_s",
                "train_ours_images_per_s"):
        assert f"{bench[key]:,.0f} images/s" in page, key
    for key in ("data_speedup", "train_speedup"):
        assert f"{bench[key]:.2f}×" in page, key
    saved_ms = 1e3 / bench["data_dataloader_images_per_s"] - 1e3 / bench["data_ours_images_per_s"]
    prose = re.sub(r"\n# ?", " ", page)  # the notes as one line: a sentence may wrap anywhere
    assert f"saves {saved_ms:.2f} ms of the {1e3 / bench['train_dataloader_images_per_s']:.1f} ms" in prose
    assert f"Medians of {bench['rounds']} rounds" in page and "--steps 4 --warmup 1 --rounds 3" in page
