"""Fidelity tests for the degradation ablation (He et al. 2015, Fig. 1, Fig. 6, Table 2)."""

import csv
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from torch.nn import functional as nnf

from labml_style_src.ablation.degradation import (
    BUILDERS,
    PlainBlock,
    check_paths,
    digits_16,
    digits_setup,
    plain_cifar,
    results_table,
    run_degradation,
)
from labml_style_src.resnet_v1.cifar import cifar_resnet
from labml_style_src.resnet_v1.residual_block import BasicBlock, n_params

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "assets" / "ablation"


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
# carry none), at both depths of the experiment.
@pytest.mark.parametrize("depth", [20, 56])
def test_plain_and_residual_nets_have_the_same_parameters(depth):
    plain, residual = plain_cifar(depth), cifar_resnet(depth)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in residual.state_dict().items()}
    blocks = [m for m in plain.modules() if isinstance(m, PlainBlock)]
    assert len(blocks) == (depth - 2) // 2
    assert all(n_params(b.shortcut) == 0 for b in blocks)


# With option B the plain net would carry projection weights that never receive a gradient.
def test_option_b_plain_net_has_unused_parameters():
    plain_b = cifar_resnet(20, shortcut="B", block=PlainBlock)
    nnf.cross_entropy(plain_b(torch.randn(2, 3, 16, 16)), torch.tensor([0, 1])).backward()
    unused = [name for name, p in plain_b.named_parameters() if p.grad is None]
    assert len(unused) == 6 and all(".shortcut." in name for name in unused)  # 2 stage changes × (conv, BN γ, β)
    plain_a = plain_cifar(20)
    nnf.cross_entropy(plain_a(torch.randn(2, 3, 16, 16)), torch.tensor([0, 1])).backward()
    assert all(p.grad is not None for p in plain_a.parameters())


def test_digits_16_is_real_normalised_data():
    x_train, y_train, x_test, y_test = digits_16()
    assert x_train.shape == (1500, 3, 16, 16) and x_test.shape == (297, 3, 16, 16)
    assert abs(x_train.mean().item()) < 1e-4 and abs(x_train.std().item() - 1) < 1e-4
    assert set(y_train.tolist()) == set(range(10))


# The experiment's schedule: lr 0.01 for the warm-up epochs, then 0.1, no drops.
def test_digits_setup_schedule():
    from labml_style_src.training.recipe import lr_at

    _, recipe = digits_setup(epochs=20, warmup_epochs=3)
    assert recipe.max_iters == 20 * 12 and recipe.warmup_iters == 3 * 12 and recipe.milestones == ()
    assert lr_at(35, recipe) == 0.01 and lr_at(36, recipe) == 0.1 and lr_at(239, recipe) == 0.1
    assert (recipe.momentum, recipe.weight_decay, recipe.batch_size) == (0.9, 1e-4, 128)


# A tiny version of the ablation (depth 8, 1 epoch, 2 minibatches) through the real code path:
# four files' worth of output, one row per model and epoch, a table computed from the CSV.
def test_tiny_ablation_code_path(tmp_path):
    batches, recipe = digits_setup(epochs=1, warmup_epochs=0, batch_size=32, max_batches=2)
    rows = run_degradation(tmp_path / "out", batches, recipe, depths=(8,), runs_dir=tmp_path / "runs",
                           device="cpu", progress=False)
    assert [r["model"] for r in rows] == ["plain-8", "ResNet-8"]
    with open(tmp_path / "out" / "degradation.csv", newline="") as f:
        from_csv = list(csv.DictReader(f))
    assert [r["model"] for r in from_csv] == ["plain-8", "ResNet-8"]
    assert json.loads((tmp_path / "out" / "degradation.json").read_text())[1]["model"] == "ResNet-8"
    assert (tmp_path / "out" / "degradation.png").read_bytes()[:4] == b"\x89PNG"
    table = results_table(tmp_path / "out" / "degradation.csv")
    assert table.count("\n") == 3 and "| plain-8 |" in table and "| ResNet-8 |" in table


# scripts/run_ablation.py, the command that made the committed results, at toy size.
def test_run_ablation_script_tiny(tmp_path):
    spec = importlib.util.spec_from_file_location("run_ablation", ROOT / "scripts" / "run_ablation.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    before = torch.get_num_threads()
    try:
        script.main(["--out", str(tmp_path), "--depths", "8", "--epochs", "1", "--max-batches", "1",
                     "--batch-size", "16", "--runs-dir", str(tmp_path / "runs"), "--threads", "1"])
    finally:
        torch.set_num_threads(before)
    assert {p.name for p in tmp_path.iterdir()} >= {"degradation.csv", "degradation.json", "degradation.png"}


def final_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows, {r["model"]: r for r in rows}


# The committed run (scripts/run_ablation.py) shows degradation: plain-56 trains much worse than
# plain-20, and with shortcuts the 56-layer net trains as well as the 20-layer one (Fig. 6's order).
def test_committed_results_show_degradation():
    rows, last = final_rows(RESULTS / "degradation.csv")
    assert set(last) == {"plain-20", "plain-56", "ResNet-20", "ResNet-56"}
    assert all(sum(r["model"] == m for r in rows) == 20 for m in last)  # 20 epochs each
    err = {m: float(r["train_err"]) for m, r in last.items()}
    assert err["plain-56"] > err["plain-20"] + 20
    assert err["ResNet-56"] < err["plain-56"] - 20
    assert err["ResNet-56"] < err["ResNet-20"] + 5
    assert all(float(r["wall_seconds"]) > 0 for r in last.values())
    assert (RESULTS / "degradation.png").stat().st_size > 10_000


def test_check_paths():
    check_paths(lambda kind, depth: 1 if kind == "plain" else 2 ** ((depth - 2) // 2))
    with pytest.raises(AssertionError, match="paths"):
        check_paths(lambda kind, depth: 2 ** (depth - 2))
    assert set(BUILDERS) == {"plain", "ResNet"}
