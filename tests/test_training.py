"""Fidelity tests for the training chapter: the data files, the paper's recipe, the loop and the fast path.

No network anywhere: CIFAR-10 is replaced by folders in the real CIFAR-10 format that the tests write.
"""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as nnf
from torchvision.datasets import CIFAR10

from labml_style_src.resnet_v1.cifar import cifar_resnet
from labml_style_src.training.data import (
    CIFAR10_CLASSES,
    CIFAR10Files,
    check_row_to_image,
    class_counts,
    digits_as_cifar,
    load_cifar10,
    show_examples,
    write_cifar_format,
)
from labml_style_src.training.recipe import (
    PAPER,
    PAPER_RESNET110,
    CheckpointError,
    Recipe,
    check_lr,
    cifar_batches,
    fit,
    lr_at,
    paper_transform,
    per_pixel_mean,
    plot_metrics,
    read_metrics,
    train_val_split,
)


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


# ---------------------------------------------------------------------------------------------------------------
# Data


# torchvision's real `CIFAR10` loading code reads a folder that `write_cifar_format` wrote: the images,
# labels and class names come back exactly. `CIFAR10Files` only replaces the file table (no MD5s).
def test_torchvision_reads_our_cifar_files(tmp_path):
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
    # The official checksums stay on by default: our files are not the real CIFAR-10, and we say so.
    with pytest.raises(ValueError, match="MD5"):
        load_cifar10(tmp_path, train=True)


# A missing data set without `download=True` names the folder, the missing files and both ways to fix it.
def test_missing_cifar_says_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True") as e:
        load_cifar10(tmp_path / "nothing")
    assert "cifar-10-batches-py" in str(e.value) and "data_batch_1" in str(e.value)
    assert "cifar-10-python.tar.gz" in str(e.value)


def test_write_cifar_format_rejects_wrong_shapes(tmp_path):
    with pytest.raises(ValueError, match=r"\[N, 32, 32, 3\]"):
        write_cifar_format(tmp_path, np.zeros((2, 3, 32, 32)), [0, 1], np.zeros((1, 32, 32, 3)), [0], "ab")


# `show_examples` and `class_counts` work on any list of (image, label) pairs, not only on CIFAR10.
def test_show_examples_and_counts_on_any_dataset():
    pairs = [(torch.rand(3, 8, 8), i % 3) for i in range(10)]
    fig = show_examples(pairs, class_names=["a", "b", "c"], rows=2, cols=3)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 6 and set(titles) <= {"a (0)", "b (1)", "c (2)"}
    assert class_counts(pairs) == {0: 4, 1: 3, 2: 3}


def test_check_row_to_image():
    check_row_to_image(lambda row: np.asarray(row).reshape(3, 32, 32).transpose(1, 2, 0))
    with pytest.raises(AssertionError):
        check_row_to_image(lambda row: np.asarray(row).reshape(32, 32, 3))


# ---------------------------------------------------------------------------------------------------------------
# The recipe (He et al. 2015, §4.2)


# The paper's numbers: SGD lr 0.1, momentum 0.9, weight decay 1e-4, batch 128, stop at 64k, 45k/5k split.
def test_paper_recipe_numbers():
    assert (PAPER.lr, PAPER.momentum, PAPER.weight_decay, PAPER.batch_size) == (0.1, 0.9, 1e-4, 128)
    assert PAPER.milestones == (32_000, 48_000) and PAPER.gamma == 0.1 and PAPER.max_iters == 64_000
    assert PAPER.n_val == 5_000 and PAPER.warmup_iters == 0
    assert (PAPER_RESNET110.warmup_lr, PAPER_RESNET110.warmup_iters) == (0.01, 400)
    with pytest.raises(ValueError, match="increasing"):
        Recipe(milestones=(48_000, 32_000))
    with pytest.raises(ValueError, match="warmup_lr"):
        Recipe(warmup_iters=10)


# lr ÷ 10 at 32k and 48k: the lr the optimizer actually uses at each iteration, read from a real SGD +
# LambdaLR stepped once per iteration as `fit` does; and ResNet-110's 0.01 warm-up for 400 iterations.
def test_lr_schedule_values():
    def lrs(recipe, n):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=recipe.lr)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: lr_at(it, recipe) / recipe.lr)
        out = []
        for _ in range(n):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    paper = lrs(PAPER, 48_001)
    assert math.isclose(paper[0], 0.1) and math.isclose(paper[31_999], 0.1)
    assert math.isclose(paper[32_000], 0.01) and math.isclose(paper[47_999], 0.01)
    assert math.isclose(paper[48_000], 0.001)
    warm = lrs(PAPER_RESNET110, 402)
    assert math.isclose(warm[0], 0.01) and math.isclose(warm[399], 0.01) and math.isclose(warm[400], 0.1)


def test_check_lr():
    def reference(it):
        return 0.01 if it < 400 else 0.1 * 0.1 ** ((it >= 32_000) + (it >= 48_000))

    check_lr(reference)
    with pytest.raises(AssertionError, match="iteration 0"):
        check_lr(lambda it: 0.1 * 0.1 ** ((it >= 32_000) + (it >= 48_000)))


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


# ---------------------------------------------------------------------------------------------------------------
# The loop: checkpoints, resume, metrics


TINY = replace(PAPER, batch_size=16, milestones=(6,), max_iters=9, n_val=300)


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
    with pytest.raises(FileExistsError, match="resume=True"):
        fit(cifar_resnet(8), None, TINY, tmp_path, resume=False, progress=False)


# Metrics are written as CSV and JSON every epoch and agree; the plot is a real, non-empty PNG.
def test_metrics_files_and_plot(digits_root, tmp_path):
    import json

    history = tiny_run(digits_root, tmp_path)
    from_csv = read_metrics(tmp_path)
    from_json = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["iteration"] for r in from_csv] == [3, 6, 9] and len(from_json) == 3
    for a, b, c in zip(from_csv, from_json, history):
        assert a.keys() == b.keys() == c.keys()
        assert all(math.isclose(a[k], b[k]) and math.isclose(b[k], c[k]) for k in a)
    assert math.isclose(from_csv[-1]["lr"], 0.01)  # ÷10 after the milestone at 6
    plot_metrics(from_csv, tmp_path / "m.png")
    png = (tmp_path / "m.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000


# A real learning check: 48 seeded SGD steps of ResNet-8 on the digits (as CIFAR files, with the paper's
# augmentation) lower the training loss and bring validation error well below chance (90 %).
def test_short_training_run_learns(digits_root, tmp_path):
    recipe = replace(PAPER, batch_size=64, milestones=(36, 42), max_iters=48, n_val=297)
    batches = cifar_batches(digits_root, recipe, verify_md5=False, max_batches=12)
    torch.manual_seed(0)
    history = fit(cifar_resnet(8), batches, recipe, tmp_path, device="cpu", progress=False)
    assert history[-1]["train_loss"] < 0.8 * history[0]["train_loss"]
    assert history[-1]["val_err"] < 70


# ---------------------------------------------------------------------------------------------------------------
# The fast path

from labml_style_src.training.fast_gpu import (  # noqa: E402
    DeviceBatches,
    check_crop_one,
    crop_flip,
    fast_options,
    random_crop_flip,
)


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


def test_check_crop_one():
    def reference(padded, dy, dx, flip):
        crop = padded[:, dy:dy + 32, dx:dx + 32]
        return crop.flip(-1) if flip else crop

    check_crop_one(reference)
    with pytest.raises(AssertionError, match="differs"):
        check_crop_one(lambda padded, dy, dx, flip: padded[:, dy:dy + 32, dx:dx + 32])


# scripts/bench_training.py runs end to end on CPU with small counts and reports both loops.
def test_bench_script_runs_on_cpu():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "bench_training.py"
    spec = importlib.util.spec_from_file_location("bench_training", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.main(["--device", "cpu", "--n-images", "64", "--steps", "1", "--warmup", "0", "--workers", "0",
                      "--depth", "8", "--batch-size", "16"])
    assert out["dataloader_images_per_s"] > 0 and out["ours_images_per_s"] > 0
