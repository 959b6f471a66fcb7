"""The papers' tables, typed once: every page that shows a figure from a paper reads it from here.

Each table is small plain data, with the paper, table and unit in a comment beside it. The fidelity
tests check these values against what the code computes (parameter counts, multiply-adds) and
against the papers' own text (differences and orderings the prose states).
"""

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
