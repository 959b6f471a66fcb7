"""Fidelity tests for the degradation ablation (He et al. 2015, Fig. 1, Fig. 6, Table 2)."""

import csv
import importlib.util
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as nnf

from labml_style_src.ablation.degradation import (
    BUILDERS,
    PlainBlock,
    Settings,
    check_identity,
    digits_8,
    plain_cifar,
    precise_bn,
    random_shift,
    train_one,
)
from labml_style_src.ablation.results import (
    check_epochs_to_reach,
    final_table,
    find_results,
    load_results,
)
from labml_style_src.paper_tables import RESNET_FIG6_DEPTHS, RESNET_TABLE2_TOP1
from labml_style_src.resnet_v1.cifar import cifar_resnet
from labml_style_src.resnet_v1.residual_block import BasicBlock, n_params
from solutions.ablation.degradation import make_identity
from solutions.ablation.results import epochs_to_reach

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "assets" / "ablation"


def load_script():
    spec = importlib.util.spec_from_file_location("run_ablation", ROOT / "scripts" / "run_ablation.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


# Table 2 and Fig. 6 as the results page states them (one home: labml_style_src/paper_tables.py): deeper
# plain nets worse, deeper ResNets better; Fig. 6 plots plain nets at 20-56 layers and ResNets up to 110.
def test_paper_facts():
    assert RESNET_TABLE2_TOP1 == {"plain": {18: 27.94, 34: 28.54}, "ResNet": {18: 27.88, 34: 25.03}}
    assert RESNET_TABLE2_TOP1["plain"][34] > RESNET_TABLE2_TOP1["plain"][18]
    assert RESNET_TABLE2_TOP1["ResNet"][34] < RESNET_TABLE2_TOP1["ResNet"][18]
    assert RESNET_FIG6_DEPTHS == {"plain": (20, 32, 44, 56), "ResNet": (20, 32, 44, 56, 110)}


# The plain block is the basic block minus the addition: y = relu(F(x)), with the same F.
def test_plain_block_is_basic_block_without_the_addition():
    torch.manual_seed(0)
    block = PlainBlock(16, 16).eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        assert torch.equal(block(x), torch.relu(block.F(x)))
        residual = BasicBlock(16, 16).eval()
        residual.load_state_dict(block.state_dict())
        assert torch.equal(residual(x), torch.relu(block.F(x) + x))


# Plain nets from the same constructor have exactly the residual nets' parameters (option A shortcuts
# carry none), at every depth of the experiment.
@pytest.mark.parametrize("depth", [20, 32, 44, 56])
def test_plain_and_residual_nets_have_the_same_parameters(depth):
    plain, residual = plain_cifar(depth), cifar_resnet(depth)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in residual.state_dict().items()}
    blocks = [m for m in plain.modules() if isinstance(m, PlainBlock)]
    assert len(blocks) == (depth - 2) // 2
    assert all(n_params(b.shortcut) == 0 for b in blocks)


# With option B the plain net would carry projection weights that never receive a gradient.
def test_option_b_plain_net_has_unused_parameters():
    plain_b = cifar_resnet(20, shortcut="B", block=PlainBlock)
    nnf.cross_entropy(plain_b(torch.randn(2, 3, 8, 8)), torch.tensor([0, 1])).backward()
    unused = [name for name, p in plain_b.named_parameters() if p.grad is None]
    assert len(unused) == 6 and all(".shortcut." in name for name in unused)  # 2 stage changes × (conv, BN γ, β)
    plain_a = plain_cifar(20)
    nnf.cross_entropy(plain_a(torch.randn(2, 3, 8, 8)), torch.tensor([0, 1])).backward()
    assert all(p.grad is not None for p in plain_a.parameters())


# The same seed gives a plain and a residual net the same initial weights.
def test_same_seed_same_initial_weights():
    torch.manual_seed(3)
    plain = plain_cifar(20)
    torch.manual_seed(3)
    residual = cifar_resnet(20)
    pairs = zip(plain.state_dict().values(), residual.state_dict().values())
    assert all(torch.equal(a, b) for a, b in pairs)


def test_digits_8_is_real_normalised_data():
    x_train, y_train, x_test, y_test = digits_8()
    assert x_train.shape == (1500, 3, 8, 8) and x_test.shape == (297, 3, 8, 8)
    assert abs(x_train.mean().item()) < 1e-4 and abs(x_train.std().item() - 1) < 1e-4
    assert set(y_train.tolist()) == set(range(10)) and set(y_test.tolist()) == set(range(10))


# Each image moves by at most one pixel in each direction; what comes in at the border is background.
def test_random_shift_moves_each_image_by_at_most_one_pixel():
    x = digits_8()[0][:64]
    shifted = random_shift(x, torch.Generator().manual_seed(0))
    background = x.min().item()
    padded = nnf.pad(x, (1, 1, 1, 1), value=background)
    offsets = set()
    for i in range(len(x)):
        found = [(a, b) for a in range(3) for b in range(3) if torch.equal(shifted[i], padded[i, :, a:a + 8, b:b + 8])]
        assert found, f"image {i} is not a shift of at most one pixel"
        offsets.update(found)
    assert len(offsets) == 9  # all nine offsets occur
    assert random_shift(x, torch.Generator(), 0) is x  # shift=0: no augmentation


# The paper's schedule on our scale: lr 0.1, ÷10 at 1/2 and 3/4 of training; SGD momentum 0.9, wd 1e-4, batch 128;
# before it, the same warm-up for every net: 3 epochs at 0.01 (the paper's ResNet-110 remedy, at a fixed length).
def test_settings_follow_the_paper_schedule():
    s = Settings()
    lrs = [s.lr_at(e) for e in range(s.epochs)]
    half, three_quarters = s.epochs // 2, 3 * s.epochs // 4
    assert (s.epochs, s.warmup_epochs, s.warmup_lr) == (40, 3, 0.01)
    assert lrs[:3] == [0.01] * 3 and lrs[3:half] == [0.1] * (half - 3)
    assert lrs[half:three_quarters] == pytest.approx([0.01] * (three_quarters - half))
    assert lrs[three_quarters:] == pytest.approx([0.001] * (s.epochs - three_quarters))
    assert (s.momentum, s.weight_decay, s.batch_size) == (0.9, 1e-4, 128)
    assert Settings(warmup_epochs=0).lr_at(0) == 0.1  # no warm-up: 0.1 from the first step


# Precise BN: after it, each BN's statistics are the mean and variance of its input over the data
# the network is given now (one batch here, so exactly), and its momentum is back to 0.1.
def test_precise_bn_measures_the_current_weights():
    torch.manual_seed(0)
    model = plain_cifar(8)
    x = torch.randn(40, 3, 8, 8)
    seen = {}
    bn = model.stages[0][0].F[1]
    bn.register_forward_pre_hook(lambda m, inputs: seen.setdefault("input", inputs[0].clone()))
    precise_bn(model, x, batch_size=40)
    inputs = seen["input"]
    assert torch.allclose(bn.running_mean, inputs.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(bn.running_var, inputs.var((0, 2, 3), unbiased=True), rtol=1e-4)
    assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, nn.BatchNorm2d))


# A tiny version of the experiment through the real code path: rows per epoch, final numbers, and
# the same seed gives the same run twice.
def test_train_one_tiny_is_deterministic():
    x_train, y_train, x_test, y_test = digits_8()
    data = (x_train[:64], y_train[:64], x_test[:50], y_test[:50])
    settings = Settings(epochs=3, warmup_epochs=1, batch_size=32)
    runs = [train_one("plain", 8, 0, data, settings, "cpu") for _ in range(2)]
    rows, final = runs[0]
    assert runs[0] == runs[1]
    assert [r["epoch"] for r in rows] == [1, 2, 3] and [r["lr"] for r in rows] == [0.01, 0.1, 0.001]
    assert set(final) >= {"train_err", "train_err_full", "test_err", "test_err_running", "params"}
    assert all(0 <= final[k] <= 100 for k in ("train_err", "train_err_full", "test_err", "test_err_running"))


# scripts/run_ablation.py, the command that made the committed results, at toy size.
def test_run_ablation_script_tiny(tmp_path):
    script = load_script()
    before = torch.get_num_threads()
    try:
        script.main(["--out", str(tmp_path), "--depths", "8", "--seeds", "0", "1", "--epochs", "1",
                     "--n-train", "32", "--threads", "1"])
    finally:
        torch.set_num_threads(before)
    with open(tmp_path / "degradation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["model"], r["seed"]) for r in rows] == [("plain-8", "0"), ("plain-8", "1"), ("ResNet-8", "0"),
                                                       ("ResNet-8", "1")]
    summary = json.loads((tmp_path / "degradation.json").read_text())
    assert summary["complete"] and summary["n_train"] == 32 and len(summary["final"]) == 4
    assert summary["wall_seconds"] > 0 and summary["cpu_seconds"] >= 0
    assert final_table(summary).count("\n") == 3


# `--jobs 2` (the committed run's setting: two processes of one thread) writes the same results as one
# process: each net depends only on its seed. Run as `make ablation` runs it, in a fresh interpreter.
def test_run_ablation_two_jobs_same_results_as_one(tmp_path):
    def run(jobs):
        out = tmp_path / f"jobs{jobs}"
        subprocess.run([sys.executable, str(ROOT / "scripts" / "run_ablation.py"), "--out", str(out),
                        "--depths", "8", "--seeds", "0", "1", "--epochs", "1", "--n-train", "32",
                        "--jobs", str(jobs)], check=True, capture_output=True)
        summary = json.loads((out / "degradation.json").read_text())
        return (out / "degradation.csv").read_text(), summary

    (csv_1, one), (csv_2, two) = run(1), run(2)
    assert csv_1 == csv_2 and one["final"] == two["final"] and two["complete"]
    assert (one["jobs"], two["jobs"], two["threads"]) == (1, 2, 1) and two["cpu_seconds"] > 0


# The exercise's checker accepts a right answer and refuses wrong ones with a hint.
def test_check_identity():
    check_identity(make_identity)
    with pytest.raises(AssertionError, match="Hint"):
        check_identity(lambda block: None)
    with pytest.raises(AssertionError, match="Hint"):  # the residual trick (γ = 0) does not carry over
        check_identity(lambda block: nn.init.zeros_(block.F[-1].weight))


def test_find_results_finds_the_committed_results():
    assert find_results() == RESULTS
    assert set(BUILDERS) == {"plain", "ResNet"}


# The results page's checker accepts a right answer and refuses wrong ones with a hint.
def test_check_epochs_to_reach():
    def any_seed(rows, model, level):  # a seed reaching the level is not the mean reaching it
        return min((r["epoch"] for r in rows if r["model"] == model and r["train_err"] <= level), default=None)

    check_epochs_to_reach(epochs_to_reach)
    with pytest.raises(AssertionError, match="Hint"):
        check_epochs_to_reach(any_seed)
    with pytest.raises(AssertionError, match="Hint"):
        check_epochs_to_reach(lambda rows, model, level: epochs_to_reach(rows, "other", level))


# ---------------------------------------------------------------------------------------------------------------
# The committed results (docs/assets/ablation, made by `make ablation`) and what the results page says of them
# ---------------------------------------------------------------------------------------------------------------

MODELS = ["plain-20", "plain-56", "ResNet-20", "ResNet-56"]


def committed(name="degradation"):
    rows, summary = load_results(RESULTS, name)
    finals = {}
    for f in summary["final"]:
        finals.setdefault(f["model"], {})[f["seed"]] = f
    return rows, summary, finals


# Every net, seed and epoch the page names is there, made with the settings the pages state.
def test_committed_results_are_complete():
    rows, summary, finals = committed()
    assert summary["complete"] and summary["device"] == "cpu" and summary["threads"] == 1
    assert summary["jobs"] == 2 and summary["cpu_seconds"] > 0
    assert summary["depths"] == [20, 56] and summary["seeds"] == [0, 1, 2]
    assert summary["settings"] == {**asdict(Settings()), "drops": [0.5, 0.75]}
    assert summary["n_train"] == 1500 and summary["n_test"] == 297
    assert sorted(finals) == sorted(MODELS) and all(sorted(finals[m]) == [0, 1, 2] for m in MODELS)
    for model in MODELS:
        for seed in (0, 1, 2):
            epochs = [r["epoch"] for r in rows if r["model"] == model and r["seed"] == seed]
            assert epochs == list(range(1, 41)), (model, seed)
    for name, model in (("degradation_long", "plain-56"),):
        _, long, long_finals = committed(name)
        assert long["complete"] and list(long_finals) == [model] and list(long_finals[model]) == [0]
        assert long["settings"] == {**asdict(Settings(epochs=120)), "drops": [0.5, 0.75]}
    assert sum(p.stat().st_size for p in RESULTS.iterdir()) < 100_000  # small enough to commit


def full_pass(finals, model):
    return [finals[model][seed]["train_err_full"] for seed in (0, 1, 2)]


def curve(rows, model, seed, key="train_err"):
    return {r["epoch"]: r[key] for r in rows if r["model"] == model and r["seed"] == seed}


# What the results page says of the committed run, with the thresholds it states.
def test_committed_results_match_the_page():
    rows, summary, finals = committed()
    # "every seed of plain-20 and ResNet-20 has a training error of at most 0.2 %, and a test error between 0.6
    # and 1.7 %"
    for model in ("plain-20", "ResNet-20"):
        assert all(e <= 0.2 for e in full_pass(finals, model)), model
        assert all(0.6 <= finals[model][s]["test_err"] <= 1.7 for s in (0, 1, 2)), model
    # ResNet-56: "its full-pass training error ends at 0.07, 1.27 and 4.2 % (seeds 2, 0, 1), its test error
    # between 1 and 4.8 %"
    assert [round(e, 2) for e in full_pass(finals, "ResNet-56")] == [1.27, 4.2, 0.07]
    assert all(1 <= finals["ResNet-56"][s]["test_err"] <= 4.8 for s in (0, 1, 2))
    # "Seed 1 had reached 3.7 % on the minibatches of epoch 18, then, in epoch 20, the last at lr 0.1, jumped back
    # to 34 %"
    seed_1 = curve(rows, "ResNet-56", 1)
    assert round(seed_1[18], 1) == 3.7 and round(seed_1[20]) == 34
    assert curve(rows, "ResNet-56", 1, "lr")[20] == 0.1 and curve(rows, "ResNet-56", 1, "lr")[21] < 0.1
    # plain-56: "Its training error ends between 37 and 65 % (full pass), and its test error is as high (41 to
    # 71 %)"
    assert all(37 <= e <= 65 for e in full_pass(finals, "plain-56"))
    assert all(41 <= finals["plain-56"][s]["test_err"] <= 71 for s in (0, 1, 2))
    # "from 87–91 % in its first epoch"
    assert all(87 <= r["train_err"] <= 91 for r in rows if r["model"] == "plain-56" and r["epoch"] == 1)
    # "over its last 10 epochs (lr 0.001) its training error moves by less than 7 points in each seed: it has
    # stalled above 40 %, where every other net stays below 8 %"; "The seeds disagree by almost 30 points"
    for seed in (0, 1, 2):
        late = [e for epoch, e in curve(rows, "plain-56", seed).items() if epoch > 30]
        assert max(late) - min(late) < 7 and min(late) > 40, seed
    assert all(r["train_err"] < 8 for r in rows if r["model"] != "plain-56" and r["epoch"] > 30)
    assert all(r["lr"] == 0.001 for r in rows if r["epoch"] > 30)
    assert 25 < max(full_pass(finals, "plain-56")) - min(full_pass(finals, "plain-56")) < 30
    # The 3× check: "120 epochs, the same 3-epoch warm-up, the drops after 60 and 90. Its training error fell
    # from 64.7 % to 32.0 % (full pass)", "far above plain-20 and ResNet-56 after 40 epochs (at most 4.2 %)"
    long_rows, _, long_finals = committed("degradation_long")
    lrs = curve(long_rows, "plain-56", 0, "lr")
    assert lrs[3] == 0.01 and lrs[4] == lrs[60] == 0.1 and lrs[61] == 0.01 and lrs[91] == 0.001
    assert round(finals["plain-56"][0]["train_err_full"], 1) == 64.7
    assert round(long_finals["plain-56"][0]["train_err_full"], 1) == 32.0
    assert max(e for m in ("plain-20", "ResNet-56") for e in full_pass(finals, m)) == 4.2
    # Beside the paper: "from 20 to 56 layers, the plain net's training error rises by 47 points and the
    # ResNet's by 1.8"
    def mean(model, key="train_err_full"):
        return sum(finals[model][s][key] for s in (0, 1, 2)) / 3

    assert round(mean("plain-56") - mean("plain-20")) == 47
    assert round(mean("ResNet-56") - mean("ResNet-20"), 1) == 1.8
    # Running statistics: "up to 79.5 points higher than with precise BN (ResNet-20, seed 1, epoch 4: 90.2 %
    # against 10.8 %, while its training error that epoch was 30.1 %)"
    worst = max(rows, key=lambda r: r["test_err_running"] - r["test_err"])
    assert round(worst["test_err_running"] - worst["test_err"], 1) == 79.5
    assert (worst["model"], worst["seed"], worst["epoch"]) == ("ResNet-20", 1, 4)
    assert (round(worst["test_err_running"], 1), round(worst["test_err"], 1), round(worst["train_err"], 1)) == (
        90.2, 10.8, 30.1)
    # "at the last epoch, at lr 0.001, the two differ by at most 4.72 points in every run"
    last = [r for r in rows if r["epoch"] == 40]
    assert all(r["lr"] == 0.001 for r in last) and len(last) == 12
    assert max(abs(r["test_err_running"] - r["test_err"]) for r in last) <= 4.72
