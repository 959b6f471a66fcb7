"""The papers' tables, typed once: a page that quotes a table's number reads it here.

Each table mirrors the paper's layout (rows, columns, units) and names its paper and
table in a comment. The values are the papers' own, rounded as printed. Tests check that
the tables agree where the papers repeat a number; the pages check their measurements
against them.

He et al. 2015, "Deep Residual Learning for Image Recognition" (arXiv:1512.03385);
He et al. 2016, "Identity Mappings in Deep Residual Networks" (arXiv:1603.05027);
Xie et al. 2017, "Aggregated Residual Transformations for Deep Neural Networks"
(arXiv:1611.05431).
"""

from dataclasses import dataclass
from typing import NamedTuple

# --- He et al. 2015 (ResNet) ---


@dataclass(frozen=True)
class ImageNetColumn:
    # One column of Table 1: the block, blocks in conv2_x … conv5_x, and the "FLOPs"
    # row (multiply-adds, ×10⁹, for the paper's layout: stride on the bottleneck's 1×1).
    block: str  # "basic" (two 3×3) or "bottleneck" (1×1, 3×3, 1×1)
    blocks_per_stage: tuple
    gflops: float


# He et al. 2015, Table 1 ("Architectures for ImageNet"): depth -> column.
RESNET_TABLE_1 = {
    18: ImageNetColumn("basic", (2, 2, 2, 2), 1.8),
    34: ImageNetColumn("basic", (3, 4, 6, 3), 3.6),
    50: ImageNetColumn("bottleneck", (3, 4, 6, 3), 3.8),
    101: ImageNetColumn("bottleneck", (3, 4, 23, 3), 7.6),
    152: ImageNetColumn("bottleneck", (3, 8, 36, 3), 11.3),
}

# He et al. 2015, Table 2: top-1 error (%, 10-crop testing) on ImageNet validation.
# Its ResNets use option A (zero-padding): no more parameters than the plain nets.
RESNET_TABLE_2 = {
    ("plain", 18): 27.94, ("plain", 34): 28.54,
    ("ResNet", 18): 27.88, ("ResNet", 34): 25.03,
}


class TopErrors(NamedTuple):
    top1: float  # %
    top5: float  # %


# He et al. 2015, Table 3: error rates (%, 10-crop testing) on ImageNet validation, the
# rows of our networks. "ResNet-34 A/B/C": shortcut options; 50/101/152 use option B.
RESNET_TABLE_3 = {
    "plain-34": TopErrors(28.54, 10.02),
    "ResNet-34 A": TopErrors(25.03, 7.76),
    "ResNet-34 B": TopErrors(24.52, 7.46),
    "ResNet-34 C": TopErrors(24.19, 7.40),
    "ResNet-50": TopErrors(22.85, 6.71),
    "ResNet-101": TopErrors(21.75, 6.05),
    "ResNet-152": TopErrors(21.43, 5.71),
}

# He et al. 2015, §4.1: option C adds "many (thirteen) projection shortcuts".
RESNET_34_EXTRA_PROJECTIONS_C = 13


class CifarResult(NamedTuple):
    params_m: float  # millions, as printed ("0.27M")
    error: float  # CIFAR-10 test error (%); for ResNet-110 the best of 5 runs
    mean: float | None = None  # ResNet-110 only: "best (mean ± std)" over 5 runs
    std: float | None = None


# He et al. 2015, Table 6: option-A CIFAR-10 ResNets, depth 6n+2 -> (params, error).
# ResNet-110 is printed "6.43 (6.61±0.16)": the best of 5 runs, then their mean ± std.
RESNET_TABLE_6 = {
    20: CifarResult(0.27, 8.75),
    32: CifarResult(0.46, 7.51),
    44: CifarResult(0.66, 7.17),
    56: CifarResult(0.85, 6.97),
    110: CifarResult(1.7, 6.43, mean=6.61, std=0.16),
    1202: CifarResult(19.4, 7.93),
}

# --- He et al. 2016 (Identity Mappings) ---
# "Throughout this paper we report the median accuracy of 5 runs" (§3.1): every CIFAR
# error below is a median of 5 runs, unless marked as a mean.

# Table 1 writes "fail" when the test error is above this (%).
PREACT_FAIL_ABOVE = 20.0


@dataclass(frozen=True)
class ShortcutRow:
    # One row of Table 1: ResNet-110 on CIFAR-10, a shortcut variant on all 54 units.
    case: str
    fig: str  # panel of Fig. 2
    on_shortcut: str  # what multiplies x on the shortcut
    on_F: str  # what multiplies F(x)
    error: float | None  # test error (%); None where the paper writes "fail"
    remark: str = ""


# He et al. 2016, Table 1, in the paper's row order.
PREACT_TABLE_1 = (
    ShortcutRow("original", "2(a)", "1", "1", 6.61),
    ShortcutRow("constant scaling", "2(b)", "0", "1", None, "this is a plain net"),
    ShortcutRow("constant scaling", "2(b)", "0.5", "1", None),
    ShortcutRow("constant scaling", "2(b)", "0.5", "0.5", 12.35, "frozen gating"),
    ShortcutRow("exclusive gating", "2(c)", "1-g(x)", "g(x)", None,
                "init b_g = 0 to -5"),
    ShortcutRow("exclusive gating", "2(c)", "1-g(x)", "g(x)", 8.70, "init b_g = -6"),
    ShortcutRow("exclusive gating", "2(c)", "1-g(x)", "g(x)", 9.81, "init b_g = -7"),
    ShortcutRow("shortcut-only gating", "2(d)", "1-g(x)", "1", 12.86, "init b_g = 0"),
    ShortcutRow("shortcut-only gating", "2(d)", "1-g(x)", "1", 6.91, "init b_g = -6"),
    ShortcutRow("1x1 conv shortcut", "2(e)", "1x1 conv", "1", 12.22),
    ShortcutRow("dropout shortcut", "2(f)", "dropout 0.5", "1", None),
)


class ActivationRow(NamedTuple):
    fig: str  # panel of Fig. 4
    resnet110: float  # CIFAR-10 test error (%), two-3×3 units
    resnet164: float  # CIFAR-10 test error (%), bottleneck units


# He et al. 2016, Table 2: CIFAR-10 test error (%) by where BN and ReLU sit (Fig. 4).
PREACT_TABLE_2 = {
    "original": ActivationRow("4(a)", 6.61, 5.93),
    "bn_after_addition": ActivationRow("4(b)", 8.17, 6.50),
    "relu_before_addition": ActivationRow("4(c)", 7.84, 6.14),
    "relu_only_preact": ActivationRow("4(d)", 6.71, 5.91),
    "full_preact": ActivationRow("4(e)", 6.37, 5.46),
}


class BaselineVsPreact(NamedTuple):
    baseline: float  # error (%) with the original unit
    preact: float  # error (%) with the full pre-activation unit


# He et al. 2016, Table 3: test error (%), (data set, network) -> (original, pre-act).
PREACT_TABLE_3 = {
    ("CIFAR-10", "ResNet-110(1layer)"): BaselineVsPreact(9.90, 8.91),
    ("CIFAR-10", "ResNet-110"): BaselineVsPreact(6.61, 6.37),
    ("CIFAR-10", "ResNet-164"): BaselineVsPreact(5.93, 5.46),
    ("CIFAR-10", "ResNet-1001"): BaselineVsPreact(7.61, 4.92),
    ("CIFAR-100", "ResNet-164"): BaselineVsPreact(25.16, 24.33),
    ("CIFAR-100", "ResNet-1001"): BaselineVsPreact(27.82, 22.71),
}


class ResNetEntry(NamedTuple):
    params_m: float  # millions, as printed
    error: float  # median of 5 runs (%), or the figure quoted from He et al. 2015
    mean: float | None = None  # "(mean±std)" where printed
    std: float | None = None


# He et al. 2016, Table 4, CIFAR-10: the ResNet rows. "[1]" rows quote He et al. 2015;
# "†" was trained with mini-batches of 64 instead of 128.
PREACT_TABLE_4_CIFAR10 = {
    "ResNet-110 [1]": ResNetEntry(1.7, 6.61),
    "ResNet-1202 [1]": ResNetEntry(19.4, 7.93),
    "ResNet-164 [ours]": ResNetEntry(1.7, 5.46),
    "ResNet-1001 [ours]": ResNetEntry(10.2, 4.92, mean=4.89, std=0.14),
    "ResNet-1001 [ours] †": ResNetEntry(10.2, 4.62, mean=4.69, std=0.20),
}

# --- keras.applications (reported by `model.summary()`, not by a paper) ---

# Total parameters (BN moving mean and variance included); for ResNet50V2 the trainable.
KERAS_RESNET_V2_TOTAL = {50: 25_613_800, 101: 44_675_560, 152: 60_380_648}
KERAS_RESNET50V2_TRAINABLE = 25_568_360

# --- Xie et al. 2017 (ResNeXt) ---

# Table 1: ResNet-50 against ResNeXt-50 (32×4d) on ImageNet at 224×224. "# params" in millions,
# "FLOPs" in billions of multiply-adds (§3.1: "FLOPs (floating-point operations, in # of
# multiply-adds)"). Its ResNet-50 has the stride on the 3×3 (§4), unlike He et al. 2015's Table 1.
RESNEXT_TABLE1 = {
    "resnet50": {"params_m": 25.5, "gflops": 4.1},
    "resnext50_32x4d": {"params_m": 25.0, "gflops": 4.2},
}

# Table 2: cardinality C -> bottleneck width d for the conv2 template (256-d in and out), chosen so
# that every block costs about the same. Its caption: about 70k parameters and about 0.22 billion
# FLOPs per block ("# params×56×56 for conv2").
RESNEXT_TABLE2_WIDTH = {1: 64, 2: 40, 4: 24, 8: 14, 32: 4}
RESNEXT_TABLE2_BLOCK_PARAMS = 70_000
RESNEXT_TABLE2_BLOCK_GFLOPS = 0.22

# Table 3: ImageNet-1K top-1 error (%) "evaluated on the single crop of 224×224 pixels", by depth,
# then by cardinality C (the bottleneck width d of each C is Table 2's; C = 1 is the ResNet baseline).
RESNEXT_TABLE3_TOP1 = {
    50: {1: 23.9, 2: 23.0, 4: 22.6, 8: 22.3, 32: 22.2},
    101: {1: 22.0, 2: 21.7, 4: 21.4, 8: 21.3, 32: 21.2},
}

# Table 7: ResNeXt-29 on CIFAR, by template (C, d): parameters in millions and test error (%),
# "the average of 10 runs".
RESNEXT_TABLE7_CIFAR = {
    (8, 64): {"params_m": 34.4, "cifar10": 3.65, "cifar100": 17.77},
    (16, 64): {"params_m": 68.1, "cifar10": 3.58, "cifar100": 17.31},
}

# --- He et al. 2015 (ResNet) ---

# Table 2: top-1 error (%, 10-crop testing) on ImageNet validation of plain and residual nets of 18
# and 34 layers; the ResNets use option A shortcuts, so they have the plain nets' parameters.
RESNET_TABLE2_TOP1 = {
    "plain": {18: 27.94, 34: 28.54},
    "ResNet": {18: 27.88, 34: 25.03},
}

# Fig. 6: the depths whose CIFAR-10 training curves are plotted (left: plain nets, plain-110 being
# above 60 % error and left out; middle: ResNets).
RESNET_FIG6_DEPTHS = {"plain": (20, 32, 44, 56), "ResNet": (20, 32, 44, 56, 110)}
