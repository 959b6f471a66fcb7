"""Fidelity tests for the "Training at scale" chapter: the paper's ImageNet recipe, BatchNorm in train and
eval mode, and data-parallel training, run through the real `torchrun` on the CPU (gloo backend).

No network and no ImageNet: the tests write small folders of real JPEG files in the ImageNet layout.
"""

import copy
import importlib.util
import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from PIL import Image
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from torchvision.transforms import v2 as T

from labml_style_src.resnet_v1.resnet import resnet
from labml_style_src.scale import batchnorm, ddp, ddp_train, imagenet, imagenet2
from labml_style_src.training.loop import CheckpointError
from solutions.scale import batchnorm as batchnorm_solutions
from solutions.scale import ddp as ddp_solutions
from solutions.scale import ddp_train as ddp_train_solutions
from solutions.scale import imagenet as imagenet_solutions
from solutions.scale import imagenet2 as imagenet2_solutions

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "train_ddp.py"
PATTERNS = ("horizontal", "vertical", "checks")  # 3 classes: 48 training, 9 (odd) validation images
BATCH = 4  # per process; 48 images / (2 × 4) = 6 steps per epoch


@pytest.fixture(scope="module")
def patterns_root(tmp_path_factory):
    return imagenet.write_imagenet_folder(tmp_path_factory.mktemp("imagenet"), n_train=16, n_val=3,
                                          patterns=PATTERNS)


# ---------------------------------------------------------------------------------------------------------------
# The ImageNet recipe


# §3.4's numbers, and what they add up to: 60×10^4 iterations of 256 images ≈ 120 epochs of ImageNet.
def test_paper_recipe_numbers():
    r = imagenet.PAPER_IMAGENET
    assert (r.scale, r.crop, r.test_scales) == ((256, 480), 224, (224, 256, 384, 480, 640))
    assert (r.batch_size, r.lr, r.momentum, r.weight_decay, r.max_iters) == (256, 0.1, 0.9, 1e-4, 600_000)
    assert r.lighting_std == 0.1
    assert math.isclose(r.max_iters * r.batch_size / imagenet.IMAGENET_TRAIN_IMAGES, 119.9, abs_tol=0.05)
    tiny = imagenet.TINY_IMAGENET
    assert (tiny.scale, tiny.crop, tiny.test_resize, tiny.test_scales) == ((64, 120), 56, 64, (56, 64, 96, 120, 160))
    with pytest.raises(ValueError, match="crop"):
        imagenet.ImageNetRecipe(scale=(200, 480))
    # "We do not use dropout": no Dropout module anywhere in our ResNets.
    with torch.device("meta"):
        for model in (resnet(50), imagenet.small_resnet(4)):
            assert not any(isinstance(m, nn.Dropout) for m in model.modules())


# The generated folder holds real JPEG files in the ImageNet layout, and torchvision's ImageFolder reads it.
def test_generated_folder_is_real_jpegs_in_imagenet_layout(patterns_root):
    train, val = imagenet.imagenet_splits(patterns_root)
    assert (len(train), len(val)) == (48, 9) and train.classes == ["n00000000", "n00000001", "n00000002"]
    path, label = val.samples[0]
    assert Path(path).name.startswith("ILSVRC2012_val_") and Path(path).parent.name == val.classes[label]
    with Image.open(path) as image:
        assert image.format == "JPEG" and image.mode == "RGB"
    mean = imagenet.mean_image(train, 56)
    assert mean.shape == (3, 56, 56) and 0 < mean.min() and mean.max() < 1
    for recipe in (imagenet.PAPER_IMAGENET, imagenet.TINY_IMAGENET):
        x = imagenet2.train_transform(recipe, torch.zeros(3, recipe.crop, recipe.crop))(train[0][0])
        assert x.shape == (3, recipe.crop, recipe.crop) and x.dtype == torch.float32


# The mean image is the average of the resized, centre-cropped training images, pixel by pixel.
def test_mean_image_is_the_pixelwise_average(patterns_root):
    train, _ = imagenet.imagenet_splits(patterns_root)
    square = T.Compose([imagenet.resized(32), T.CenterCrop(32)])
    want = torch.stack([square(train[i][0]) for i in range(len(train))]).mean(0)
    assert torch.allclose(imagenet.mean_image(train, 32), want, atol=1e-6)
    picked = imagenet.mean_image(train, 32, limit=3)  # images 0, 24 and 47
    assert torch.allclose(picked, torch.stack([square(train[i][0]) for i in (0, 24, 47)]).mean(0), atol=1e-6)


# Scale augmentation: the shorter side takes every integer in [lo, hi] and nothing outside; aspect ratio kept.
def test_scale_augmentation_range():
    torch.manual_seed(0)
    recipe = imagenet.TINY_IMAGENET
    augment = imagenet.scale_crop_flip(recipe)
    resize = augment.transforms[1]
    image = torch.zeros(3, 100, 150, dtype=torch.uint8)
    sides = set()
    for _ in range(3000):
        h, w = resize(image).shape[-2:]
        sides.add(h)
        assert abs(w / h - 1.5) < 0.02
    assert sides == set(range(recipe.scale[0], recipe.scale[1] + 1))
    assert augment(image).shape == (3, recipe.crop, recipe.crop)


# 10-crop testing: four corners and the centre of the central square, then the same of the mirrored square.
def test_ten_crops_are_corners_centre_and_their_mirrors():
    recipe = imagenet.PAPER_IMAGENET
    image = Image.fromarray(torch.randint(0, 256, (300, 400, 3), dtype=torch.uint8).numpy())
    zero = torch.zeros(3, 224, 224)
    crops = imagenet2.ten_crops(image, recipe, zero)
    assert crops.shape == (10, 3, 224, 224)
    square = T.Compose([imagenet.resized(256), T.CenterCrop(256)])(image)
    first, last, middle = slice(0, 224), slice(32, 256), slice(16, 240)  # CenterCrop: offset 16
    boxes = [(first, first), (first, last), (last, first), (last, last), (middle, middle)]
    for i, (rows, cols) in enumerate(boxes):  # top-left, top-right, bottom-left, bottom-right, centre
        assert torch.equal(crops[i], square[:, rows, cols])
        assert torch.equal(crops[5 + i], square.flip(-1)[:, rows, cols])
    mean = torch.rand(3, 224, 224)
    assert torch.allclose(imagenet2.ten_crops(image, recipe, mean), crops - mean)


# Fully-convolutional testing: the fc layer as a 1×1 convolution gives a score map whose average over positions is
# exactly the network's output; multi-scale testing averages the softmax over the five scales.
def test_score_map_average_is_the_network_output():
    torch.manual_seed(0)
    model = imagenet.small_resnet(5).eval()
    x = torch.randn(2, 3, 96, 130)
    smap = imagenet2.score_map(model, x)
    assert smap.shape == (2, 5, 3, 5)
    with torch.no_grad():
        assert torch.allclose(smap.mean((2, 3)), model(x), atol=1e-5)
    image = Image.fromarray(torch.randint(0, 256, (90, 120, 3), dtype=torch.uint8).numpy())
    recipe, mean = imagenet.TINY_IMAGENET, torch.rand(3, 56, 56)
    scores = imagenet2.multi_scale_scores(model, image, recipe, mean)
    with torch.no_grad():
        per_scale = [model(imagenet.resized(s)(image)[None] - mean.mean((1, 2), keepdim=True)).softmax(1)[0]
                     for s in recipe.test_scales]
    assert torch.allclose(scores, torch.stack(per_scale).mean(0), atol=1e-6)
    assert math.isclose(scores.sum().item(), 1, abs_tol=1e-5)
    ten = imagenet2.ten_crop_scores(model, image, recipe, mean)
    assert ten.shape == (5,) and math.isclose(ten.sum().item(), 1, abs_tol=1e-5)


# PCA lighting adds Σ α_i λ_i p_i to every pixel; the published eigenvectors are orthonormal (to 4 decimals), and
# `rgb_pca` recovers the eigenvalues and eigenvectors of a known covariance from pixels drawn with it.
def test_pca_lighting():
    torch.manual_seed(0)
    lighting = imagenet2.Lighting()
    alpha = torch.tensor([0.1, -0.2, 0.05])
    by_loop = sum(alpha[i] * imagenet2.IMAGENET_EIGVAL[i] * imagenet2.IMAGENET_EIGVEC[:, i] for i in range(3))
    assert torch.allclose(lighting.offset(alpha), by_loop)
    x = torch.rand(3, 4, 5)
    y = lighting(x)
    shift = (y - x).reshape(3, -1)
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-6)  # one RGB offset for every pixel
    assert torch.allclose(imagenet2.IMAGENET_EIGVEC.T @ imagenet2.IMAGENET_EIGVEC, torch.eye(3), atol=1e-3)
    eigvec = torch.linalg.qr(imagenet2.IMAGENET_EIGVEC)[0]
    cov = eigvec @ torch.diag(imagenet2.IMAGENET_EIGVAL) @ eigvec.T
    pixels = torch.distributions.MultivariateNormal(torch.zeros(3), cov).sample((200_000,))
    eigval, found = imagenet2.rgb_pca(pixels.T.reshape(1, 3, 400, 500))
    assert torch.allclose(eigval, imagenet2.IMAGENET_EIGVAL, rtol=0.05)
    assert torch.allclose((found * eigvec).sum(0).abs(), torch.ones(3), atol=0.01)  # same directions, up to sign


# A missing folder, or one not in the ImageNet layout, is refused with a message that shows the expected layout.
def test_bad_imagenet_folders_say_what_layout_is_expected(tmp_path):
    def refused(what):
        with pytest.raises(imagenet.ImageNetLayoutError, match=what) as e:
            imagenet.imagenet_splits(root)
        assert "train/n01440764/" in str(e.value) and "val/n01440764/" in str(e.value)

    def jpeg(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        imagenet.draw_pattern("rings", 50, 40, np.random.default_rng(0)).save(path)

    root = tmp_path / "nothing"
    refused("does not exist")
    root = tmp_path / "imagenet"
    jpeg(root / "train" / "n0" / "a.JPEG")
    refused("val does not exist")
    jpeg(root / "val" / "ILSVRC2012_val_00000001.JPEG")  # the official, flat validation folder
    refused("images lie directly in")
    (root / "val" / "ILSVRC2012_val_00000001.JPEG").unlink()
    refused("has no class folders")
    (root / "val" / "n0").mkdir()
    refused(r"class folders without images in .*\['n0'\]")
    jpeg(root / "val" / "n0" / "b.JPEG")
    jpeg(root / "val" / "n1" / "c.JPEG")
    refused("different class folders")
    (root / "val" / "n1" / "c.JPEG").unlink()
    (root / "val" / "n1").rmdir()
    assert [len(split) for split in imagenet.imagenet_splits(root)] == [1, 1]


# ---------------------------------------------------------------------------------------------------------------
# BatchNorm


# Training mode: batch mean and biased variance normalise; the running averages take 0.1 of the batch mean and of
# the *unbiased* batch variance.
def test_bn_train_mode_statistics():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2), bn.bias.uniform_(-1, 1)
    x = 2 + 3 * torch.randn(6, 4, 3, 3)
    mean, biased, unbiased = batchnorm.batch_stats(x)
    assert torch.allclose(unbiased, x.transpose(0, 1).reshape(4, -1).var(1))
    pc = batchnorm.per_channel
    want = pc(bn.weight) * (x - pc(mean)) / torch.sqrt(pc(biased) + bn.eps) + pc(bn.bias)
    assert torch.allclose(bn(x), want, atol=1e-5)
    assert torch.allclose(bn.running_mean, 0.1 * mean) and torch.allclose(bn.running_var, 0.9 + 0.1 * unbiased)


# In eval mode an image's output does not depend on the rest of its batch; in train mode it does. `no_grad` is not
# eval mode (the buffers still move), and a batch with one value per channel is refused.
def test_bn_output_depends_on_the_batch_only_in_train_mode():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3)
    bn(torch.randn(16, 3, 4, 4))
    first, a, b = torch.randn(1, 3, 4, 4), torch.randn(5, 3, 4, 4), 3 + torch.randn(5, 3, 4, 4)
    with torch.no_grad():
        assert not torch.allclose(bn(torch.cat([first, a]))[0], bn(torch.cat([first, b]))[0], atol=1e-2)
        before = bn.running_mean.clone()
        bn(b)
        assert not torch.equal(before, bn.running_mean)
        bn.eval()
        assert torch.allclose(bn(torch.cat([first, a]))[0], bn(torch.cat([first, b]))[0])
        assert torch.allclose(bn(first)[0], bn(torch.cat([first, a]))[0])
    bn.train()
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        bn(torch.randn(1, 3, 1, 1))


# Precise BN: with momentum=None the running averages become the plain mean of the per-batch statistics (mean
# and unbiased variance) under the current weights; momentum and train/eval mode are restored afterwards.
def test_precise_bn_averages_the_batch_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=0.3), nn.ReLU())
    model.eval()
    batches = list((1 + torch.randn(40, 3, 6, 6)).split(8))
    assert batchnorm.precise_bn_(model, batches) == 5
    with torch.no_grad():
        stats = [batchnorm.batch_stats(model[0](x)) for x in batches]
    assert torch.allclose(model[1].running_mean, torch.stack([s[0] for s in stats]).mean(0), atol=1e-6)
    assert torch.allclose(model[1].running_var, torch.stack([s[2] for s in stats]).mean(0), atol=1e-5)
    assert model[1].momentum == 0.3 and not model.training


# SyncBatchNorm's global statistics: combining the parts' counts, means and variances gives exactly the statistics
# of the concatenated batch; BN applied to each part separately does not give BN of the whole.
def test_combined_stats_equal_the_stats_of_the_whole_batch():
    torch.manual_seed(0)
    whole = 2 + torch.randn(10, 3, 4, 4)
    parts = [(p.numel() // 3, *batchnorm.batch_stats(p)[:2]) for p in whole.split([3, 7])]
    mean, var = batchnorm.combine_stats(parts)
    assert torch.allclose(mean, batchnorm.batch_stats(whole)[0], atol=1e-6)
    assert torch.allclose(var, batchnorm.batch_stats(whole)[1], atol=1e-5)
    bn = nn.BatchNorm2d(3)
    assert not torch.allclose(torch.cat([bn(p) for p in whole.split(5)]), bn(whole), atol=1e-2)


# The page's statement about SyncBatchNorm in PyTorch 2.14: without a process group it is plain BN; with one, a
# training-mode forward of a CPU tensor raises ValueError. (One-process gloo group over an in-memory store.)
def test_syncbn_on_cpu_is_plain_bn_without_a_group_and_refused_with_one():
    x = torch.randn(4, 3, 2, 2)
    assert torch.equal(nn.SyncBatchNorm(3)(x), nn.BatchNorm2d(3)(x))
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        with pytest.raises(ValueError, match="GPU"):
            nn.SyncBatchNorm(3)(x)
        assert nn.SyncBatchNorm(3).eval()(x).shape == x.shape  # eval mode: no synchronisation
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------------------------
# Goyal et al.: learning rate, warm-up, zero-γ


# η = 0.1·kn/256; the warm-up is a straight line (equal steps) from 0.1 to η over 5 epochs; ÷10 at 30, 60, 80.
def test_linear_scaling_and_warmup_values():
    s, per_epoch, kn = ddp.Schedule(), 156, 256 * 32
    assert ddp.reference_lr(kn, s) == 3.2 and ddp.reference_lr(8 * 32, s) == 0.1
    lr = [ddp.goyal_lr(step, per_epoch, kn, s) for step in range(5 * per_epoch + 1)]
    assert lr[0] == 0.1 and math.isclose(lr[-1], 3.2) and math.isclose(lr[len(lr) // 2], 1.65)
    steps = [b - a for a, b in zip(lr, lr[1:])]
    assert max(steps) - min(steps) < 1e-12 and math.isclose(steps[0], 3.1 / (5 * per_epoch))
    for epoch, want in ((29.99, 3.2), (30, 0.32), (59.99, 0.32), (60, 0.032), (80, 0.0032), (89.9, 0.0032)):
        assert math.isclose(ddp.goyal_lr(round(epoch * per_epoch), per_epoch, kn, s), want, rel_tol=1e-9)
    # A total batch of 128 (< 256): no warm-up ramp, the scaled rate 0.05 from the start.
    assert ddp.goyal_lr(0, per_epoch, 128, s) == 0.05 == ddp.goyal_lr(3 * per_epoch, per_epoch, 128, s)


# γ = 0 in each block's last BN makes F(x) = 0, so every block computes relu(shortcut(x)): the identity for the
# blocks with an identity shortcut and x ≥ 0 — in training and in eval mode.
@pytest.mark.parametrize("make", [lambda: resnet(18), lambda: resnet(50), lambda: imagenet.small_resnet(4)],
                         ids=["resnet18", "resnet50", "small"])
def test_zero_gamma_makes_every_block_its_shortcut(make):
    torch.manual_seed(0)
    model = make()
    blocks = [b for stage in model.stages for b in stage]
    assert ddp.zero_init_last_bn_(model) == len(blocks)
    for mode in ("train", "eval"):
        getattr(model, mode)()
        identities = 0
        for block in blocks:
            x = torch.relu(torch.randn(2, block.F[0].in_channels, 8, 8))  # x ≥ 0, as after a ReLU
            with torch.no_grad():
                assert torch.equal(block.F(x), torch.zeros_like(block.F(x)))
                assert torch.equal(block(x), torch.relu(block.shortcut(x)))
                if isinstance(block.shortcut, nn.Identity):
                    assert torch.equal(block(x), x)
                    identities += 1
        assert identities >= 1


# ---------------------------------------------------------------------------------------------------------------
# DistributedSampler and evaluation


# Without set_epoch every epoch repeats the same order (the bug); with it the order changes.
def test_sampler_without_set_epoch_repeats_the_order():
    forgetful, careful = DistributedSampler(range(20), 2, 0, seed=0), DistributedSampler(range(20), 2, 0, seed=0)
    orders, new_orders = [], []
    for epoch in range(3):
        orders.append(list(forgetful))
        careful.set_epoch(epoch)
        new_orders.append(list(careful))
    assert orders[0] == orders[1] == orders[2]
    assert new_orders[0] != new_orders[1] != new_orders[2] and new_orders[0] == orders[0]


# One epoch gives every sample to exactly one rank, when the count divides; otherwise the sampler pads with repeats.
def test_sampler_gives_each_sample_once_per_epoch():
    for epoch in range(3):
        shards = []
        for rank in range(4):
            sampler = DistributedSampler(range(24), 4, rank, seed=1)
            sampler.set_epoch(epoch)
            shards.append(list(sampler))
        assert sorted(sum(shards, [])) == list(range(24))
    padded = sum((list(DistributedSampler(range(9), 2, r)) for r in range(2)), [])
    assert len(padded) == 10 and len(set(padded)) == 9  # one image twice: harmless in training, not in a metric


# ---------------------------------------------------------------------------------------------------------------
# DDP through the real torchrun (2 processes, gloo), against one process with twice the batch


def torchrun(*args, nproc: int = 2, expect_success: bool = True):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           str(SCRIPT), *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "NVIDIA_TF32_OVERRIDE": "0"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert (result.returncode == 0) == expect_success, f"{' '.join(cmd)}\n{result.stdout}\n{result.stderr}"
    return result


def run_args(cfg: ddp_train.RunConfig) -> list:
    return ["--data", cfg.data, "--run-dir", cfg.run_dir, "--epochs", cfg.epochs, "--batch-size", cfg.batch_size,
            "--bn", cfg.bn, "--device", cfg.device, "--die-at-step", cfg.die_at_step, "--no-progress"]


@pytest.fixture(scope="module")
def runs(patterns_root, tmp_path_factory):
    """Runs made once for the tests below: `runs(name)` -> the run's folder."""
    base, done = tmp_path_factory.mktemp("runs"), {}
    plans = {  # name -> (config, processes or 0 for this process with twice the batch)
        "frozen-2": (dict(bn="frozen", epochs=2), 2), "frozen-1": (dict(bn="frozen", epochs=2), 0),
        "train-2": (dict(bn="train", epochs=3), 2), "train-1": (dict(bn="train", epochs=3), 0),
    }

    def get(name):
        if name not in done:
            settings, nproc = plans[name]
            cfg = ddp_train.RunConfig(data=str(patterns_root), run_dir=str(base / name), batch_size=BATCH,
                                      progress=False, **settings)
            if nproc:
                torchrun(*run_args(cfg), nproc=nproc)
            else:
                ddp_train.train(replace(cfg, batch_size=2 * BATCH))
            done[name] = Path(cfg.run_dir)
        return done[name]
    return get


def metrics(run_dir) -> list:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


# The script is a single process when nothing set torchrun's variables: no process group is created.
def test_single_process_when_not_launched_by_torchrun(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    d = ddp.init_distributed("cpu")
    assert (d.rank, d.world_size, d.is_main) == (0, 1, True) and not dist.is_initialized()


# 2 processes × 4 images (DDP, gloo, launched by torchrun) end with the weights of 1 process × 8 images, when no
# layer depends on the rest of the batch (BN frozen): equal to 1e-5 (float32 sums in another order; measured
# about 1e-8), while training moved the weights by more than 0.01. It is also a test that the 2-process run took
# the same images at every step.
@pytest.mark.slow
def test_ddp_matches_one_process_with_twice_the_batch(runs):
    two, one = ddp_train.final_weights(runs("frozen-2")), ddp_train.final_weights(runs("frozen-1"))
    assert ddp_train.max_difference(one, two) < 1e-5
    torch.manual_seed(ddp_train.RunConfig().seed)  # the initial weights, made as the script makes them
    start = ddp_train.ARCHS["small"](len(PATTERNS))
    ddp.zero_init_last_bn_(start)
    assert ddp_train.max_difference(start.state_dict(), two) > 1e-2
    assert [r["step"] for r in metrics(runs("frozen-2"))] == [6, 12]


# With BN in training mode each rank normalises with its own 4 images, not the 8 of the single process: the runs
# differ by far more than rounding.
@pytest.mark.slow
def test_ddp_with_batchnorm_in_train_mode_differs(runs):
    gap = ddp_train.max_difference(ddp_train.final_weights(runs("train-1")), ddp_train.final_weights(runs("train-2")))
    assert gap > 1e-3


# The metric covers the 9 validation images exactly once (the sampler would have padded to 10), and both
# launches agree on it for the frozen-BN run, where the models are the same.
@pytest.mark.slow
def test_distributed_evaluation_counts_every_image_once(runs):
    assert len(DistributedSampler(range(9), 2, 0)) * 2 == 10
    for name in ("frozen-2", "frozen-1", "train-2"):
        assert all(row["val_images"] == 9 for row in metrics(runs(name)))
    two, one = metrics(runs("frozen-2"))[-1], metrics(runs("frozen-1"))[-1]
    assert two["val_err"] == one["val_err"] and math.isclose(two["val_loss"], one["val_loss"], rel_tol=1e-4)


# A 2-process run killed in its second epoch (every rank SIGKILLed after step 9), then started again with the same
# command, resumes from rank 0's checkpoint of epoch 1 on every rank and ends with exactly the weights of the run
# that was never interrupted.
@pytest.mark.slow
def test_killed_and_resumed_run_ends_with_the_same_weights(runs, patterns_root, tmp_path):
    cfg = ddp_train.RunConfig(data=str(patterns_root), run_dir=str(tmp_path / "killed"), batch_size=BATCH,
                              epochs=3, bn="train", progress=False)
    torchrun(*run_args(replace(cfg, die_at_step=9)), expect_success=False)
    state = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert not list((tmp_path / "killed").glob("*.tmp"))
    torchrun(*run_args(cfg))
    resumed, uninterrupted = ddp_train.final_weights(cfg.run_dir), ddp_train.final_weights(runs("train-2"))
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)
    assert metrics(cfg.run_dir) == metrics(runs("train-2"))


# A checkpoint made with other settings is refused, with the setting named, instead of being silently mixed in.
def test_checkpoint_of_a_different_run_is_refused(patterns_root, tmp_path):
    cfg = ddp_train.RunConfig(data=str(patterns_root), run_dir=str(tmp_path / "run"), batch_size=16, epochs=1,
                              progress=False)
    ddp_train.train(cfg)
    assert ddp_train.train(replace(cfg, epochs=1)) == metrics(cfg.run_dir)  # finished: nothing to do
    with pytest.raises(CheckpointError, match="batch_size"):
        ddp_train.train(replace(cfg, batch_size=8, epochs=2))
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        ddp_train.train(replace(cfg, epochs=2))


def _ddp_facts(out):
    d = ddp.init_distributed("cpu")
    torch.manual_seed(d.rank)  # different weights on each rank before DDP
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    net = DistributedDataParallel(model)

    def gathered(t):
        parts = [torch.zeros_like(t) for _ in range(d.world_size)]
        dist.all_gather(parts, t.contiguous())
        return parts

    weights = gathered(model[0].weight.detach())
    x = torch.randn(4, 3, 8, 8) + d.rank  # each rank its own data
    alone = copy.deepcopy(model)
    alone(x).square().mean().backward()  # this rank's gradient, without DDP
    net(x).square().mean().backward()  # DDP: the mean over ranks
    local, averaged = gathered(alone[0].weight.grad), gathered(model[0].weight.grad)
    net(x + 1).sum().backward()  # one more training forward: each rank updates its own BN
    before = gathered(model[1].running_mean)
    ddp.sync_buffers(model, d)
    after = gathered(model[1].running_mean)
    if d.is_main:
        torch.save(dict(weights=weights, local=local, averaged=averaged, before=before, after=after), out)
    dist.destroy_process_group()


# Three facts of DDP, in 2 forked processes with torchrun's variables: it starts every rank from rank 0's weights;
# after backward every rank holds the mean of the ranks' gradients; the BN running averages differ after training
# (each rank's last update is its own) until `sync_buffers` gives every rank rank 0's.
def test_ddp_copies_rank_0_averages_gradients_and_syncs_buffers(tmp_path):
    ddp.launch_local(_ddp_facts, 2, tmp_path / "facts.pt")
    r = torch.load(tmp_path / "facts.pt", weights_only=True)
    assert torch.equal(*r["weights"])
    assert not torch.allclose(*r["local"])
    for averaged in r["averaged"]:
        assert torch.allclose(averaged, (r["local"][0] + r["local"][1]) / 2, atol=1e-6)
    assert not torch.allclose(*r["before"])
    assert torch.equal(*r["after"]) and torch.equal(r["after"][0], r["before"][0])


# SyncBatchNorm on 2 GPUs (NCCL, torchrun) trains like one process with the whole batch. Needs two CUDA devices.
@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")
def test_syncbn_matches_one_process_on_cuda(patterns_root, tmp_path, monkeypatch):
    cfg = ddp_train.RunConfig(data=str(patterns_root), run_dir=str(tmp_path / "sync-2"), batch_size=BATCH,
                              epochs=2, bn="sync", device="cuda", progress=False)
    torchrun(*run_args(cfg))
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # full float32, as in the children
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    single = replace(cfg, run_dir=str(tmp_path / "one"), bn="train", batch_size=2 * BATCH)
    ddp_train.train(single)
    plain = replace(cfg, run_dir=str(tmp_path / "plain-2"), bn="train")
    torchrun(*run_args(plain))
    alone = ddp_train.final_weights(single.run_dir)
    gap_sync = ddp_train.max_difference(ddp_train.final_weights(cfg.run_dir), alone)
    gap_plain = ddp_train.max_difference(ddp_train.final_weights(plain.run_dir), alone)
    assert gap_sync < 1e-3 and gap_plain > 10 * gap_sync


# The command line maps onto RunConfig and Schedule.
def test_train_ddp_command_line():
    spec = importlib.util.spec_from_file_location("train_ddp", SCRIPT)
    train_ddp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_ddp)
    _, cfg = train_ddp.parse_args(["--data", "d", "--bn", "frozen", "--no-zero-gamma", "--batch-size", "7",
                                   "--base-batch", "256", "--milestones", "30", "60", "80", "--bf16"])
    assert (cfg.data, cfg.bn, cfg.zero_gamma, cfg.batch_size, cfg.bf16) == ("d", "frozen", False, 7, True)
    assert cfg.schedule == ddp.Schedule(0.1, 256, 1, (30, 60, 80))
    assert train_ddp.parse_args([])[1] == ddp_train.RunConfig()
    with pytest.raises(SystemExit):
        train_ddp.parse_args(["--bn", "group"])


# ---------------------------------------------------------------------------------------------------------------
# The exercises' checkers: a right answer passes; a wrong one raises with a hint that does not give the answer away.


def hint_hides(error, answers) -> bool:
    return not any(answer in str(error.value) for answer in answers)


def test_imagenet_checkers(capsys):
    imagenet.check_epochs(imagenet_solutions.epochs)
    with pytest.raises(AssertionError, match="divide by the number of training images") as e:
        imagenet.check_epochs(90)
    assert hint_hides(e, ["119", "120"])
    assert capsys.readouterr().out.count("correct") == 1


def test_imagenet2_checkers(capsys):
    imagenet2.check_lighting(imagenet2_solutions.my_offset)
    with pytest.raises(AssertionError, match="each eigenvector is a column") as e:
        imagenet2.check_lighting(lambda a, lam, p: sum(a[i] * lam[i] * p[i] for i in range(3)))  # rows
    alpha = torch.randn(3, generator=torch.Generator().manual_seed(0)) * 0.1
    assert hint_hides(e, [f"{v:.4f}" for v in imagenet2.Lighting().offset(alpha).tolist()])
    imagenet2.check_map_side(imagenet2_solutions.my_map_side)
    with pytest.raises(AssertionError, match="for side 33 your score map is 1 wide"):  # rounds down
        imagenet2.check_map_side(lambda side: side // 32)
    assert capsys.readouterr().out.count("correct") == 2


def test_batchnorm_checkers(capsys):
    batchnorm.check_running_stats(batchnorm_solutions.my_update)

    def biased(rm, rv, x, m):  # keeps the biased variance
        return (1 - m) * rm + m * x.mean((0, 2, 3)), (1 - m) * rv + m * x.var((0, 2, 3), unbiased=False)

    with pytest.raises(AssertionError, match="which variance does BN keep") as e:
        batchnorm.check_running_stats(biased)
    assert hint_hides(e, ["unbiased", "n - 1"])
    batchnorm.check_updates_to_99(batchnorm_solutions.updates_to_99)
    with pytest.raises(AssertionError, match="too few") as e:
        batchnorm.check_updates_to_99(22)
    assert hint_hides(e, ["44"])
    assert capsys.readouterr().out.count("correct") == 2


def test_ddp_checkers(capsys):
    ddp.check_goyal_lr(ddp_solutions.my_lr)
    with pytest.raises(AssertionError, match=r"at step 4680 \(epoch 30\)") as e:  # no ÷10 after the warm-up
        ddp.check_goyal_lr(lambda step: 0.1 + 3.1 * min(step / (5 * 156), 1))
    assert hint_hides(e, ["0.32"])
    ddp.check_shard(ddp_solutions.my_shard)
    with pytest.raises(AssertionError, match="n=10, k=4, rank 2") as e:  # no padding
        ddp.check_shard(lambda n, k, r: list(range(r, n, k)))
    assert hint_hides(e, ["[2, 6, 0]"])
    assert capsys.readouterr().out.count("correct") == 2


def test_ddp_train_checkers(capsys):
    ddp_train.check_steps_per_epoch(ddp_train_solutions.my_steps)
    with pytest.raises(AssertionError, match="10 images, 4 processes of 3"):  # forgets the padding
        ddp_train.check_steps_per_epoch(lambda n_images, k, n: n_images // (k * n))
    with pytest.raises(AssertionError, match="9 images, 2 processes of 2"):  # keeps the last batch
        ddp_train.check_steps_per_epoch(lambda n_images, k, n: -(-n_images // (k * n)))
    assert capsys.readouterr().out.count("correct") == 1
