# %% [markdown]
# # Plain vs residual: the degradation problem
#
# Add layers to a plain network and, past some depth, it gets *worse*, and not only on the test set:
# its training error goes up too. That is not overfitting, it is an optimisation failure, and it is
# the problem residual learning was designed to solve. This page builds plain networks with the
# same constructor as the ResNets and a short training loop that trains either kind on real data;
# [the next page](results.md) shows what it measured at 20 and 56 layers, three seeds each.
#
# > "When deeper networks are able to start converging, a degradation problem has been exposed: with
# > the network depth increasing, accuracy gets saturated (which might be unsurprising) and then
# > degrades rapidly." — He et al. 2015, §1
#
# The paper's evidence: Fig. 1 shows a 56-layer plain net on CIFAR-10 with higher training and test
# error than a 20-layer one; Fig. 6 (left) plots plain nets of 20, 32, 44 and 56 layers (plain-110,
# above 60 % error, is left out of the plot), Fig. 6 (middle) the ResNets of those depths and 110;
# on ImageNet, Fig. 4 and Table 2 compare 18 and 34 layers.

# %%
import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as nnf

from labml_style_src.device import DEVICE
from labml_style_src.resnet_v1.cifar import cifar_resnet
from labml_style_src.resnet_v1.residual_block import BasicBlock, n_params

# %% [markdown]
# ## A plain block is a basic block without its shortcut
#
# The fairest plain network is the residual network with the additions removed: same layers, same
# widths, same initialisation, same constructor. So the plain block *is* a `BasicBlock` whose
# `forward` drops the shortcut: $y = \sigma(F(x))$ instead of $y = \sigma(F(x) + x)$.
# The block still builds its shortcut module, so we pick **option A**, whose shortcuts have no
# parameters: the plain net has exactly the residual net's parameters
# ([test](../tests/test_ablation.md#test_plain_and_residual_nets_have_the_same_parameters)).
# With option B, the two 1×1 projections would be counted but never used: their gradient stays
# `None` ([test](../tests/test_ablation.md#test_option_b_plain_net_has_unused_parameters)).

# %%
class PlainBlock(BasicBlock):
    # Same $F$ as `BasicBlock`; the shortcut is built (option A: no parameters) but never used.
    def forward(self, x):  # [B, C_in, H, W] -> [B, C_out, H / stride, W / stride]
        # $y = \sigma(F(x))$: no addition.
        return self.relu(self.F(x))


def plain_cifar(depth: int, num_classes: int = 10) -> nn.Module:
    return cifar_resnet(depth, num_classes, shortcut="A", block=PlainBlock)


BUILDERS = {"plain": plain_cifar, "ResNet": cifar_resnet}

# %%
if __name__ == "__main__":
    for kind, build in BUILDERS.items():
        print(f"{kind}-56:", n_params(build(56)), "parameters")

# %% [markdown]
# ## Real data that ships offline: 8×8 digits
#
# CIFAR-10 needs a download and hours of CPU. scikit-learn ships 1,797 handwritten digits of 8×8
# pixels. We keep them at that size (the three stages then see 8×8, 4×4 and 2×2 maps), repeat the
# grey channel three times, hold out 297 images as a test set and normalise with the training set's
# mean and standard deviation. The paper's augmentation (pad 4 pixels of 32, crop at random) becomes
# a shift of up to one pixel; digits are not flipped, since a mirrored digit is another symbol.

# %%
def digits_8(n_test: int = 297, seed: int = 0):
    from sklearn.datasets import load_digits  # ships with scikit-learn: no download

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32)  # [1797, 8, 8], values 0..16
    x = x[:, None].repeat(1, 3, 1, 1)  # [1797, 3, 8, 8]: the grey channel three times
    y = torch.tensor(digits.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    test, train = order[:n_test], order[n_test:]
    mean, std = x[train].mean(), x[train].std()
    return (x[train] - mean) / std, y[train], (x[test] - mean) / std, y[test]


def random_shift(x, generator, pad: int = 1):
    # Pad with the background value, then crop each image at its own random offset.
    if pad == 0:
        return x
    n, _, h, w = x.shape
    padded = nnf.pad(x, (pad,) * 4, value=x.min().item())
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).tolist()
    offsets = enumerate(zip(dy, dx))
    crops = [padded[i, :, a:a + h, b:b + w] for i, (a, b) in offsets]
    return torch.stack(crops)


# %% [markdown]
# ## A short training loop
#
# The paper's CIFAR optimiser (§4.2) at our scale: SGD with momentum 0.9, weight decay $10^{-4}$,
# minibatches of 128, learning rate 0.1 divided by 10 at 1/2 and 3/4 of training (32k and 48k of
# 64k iterations in the paper). One frozen dataclass holds it all. The loop is written here, not
# imported from the [training chapter](../training/loop.md): that chapter comes later, and a
# downloaded notebook carries a copy of every module of the site it imports.
#
# **Warm-up, for every net.** The paper found 0.1 too large a start for its 110-layer CIFAR net:
#
# > "So we use 0.01 to warm up the training until the training error is below 80% (about 400
# > iterations), and then go back to 0.1 and continue training." — He et al. 2015, §4.2
#
# The paper does this for ResNet-110 only. We give *every* net, plain or residual, of every depth,
# the same warm-up, and make it gradual: over the first 5 epochs (60 steps) the learning rate
# climbs in equal steps, 1/6, 2/6, ... 5/6 of 0.1, and from the sixth epoch on it is 0.1 (the
# "gradual warmup" of Goyal et al. 2017, §2.2); exercise 3 shows what a jump straight from 0.01
# to 0.1 does to a 56-layer net. One schedule for all nets keeps the comparison between them
# fair.
#
# **Training error.** The paper does not say how its training curves were measured. We record
# the kind a training log gives for free: the error on the (shifted) minibatches of an epoch, each
# judged in train mode by the network at the step that trained on it, averaged over the epoch.
# At the end we also make one full pass over the unshifted training set in eval mode.
#
# !!! note "Where we differ from the paper"
#     8×8 digits, not CIFAR-10; 60 epochs of 12 steps (720 steps), not 64k; shifts of one pixel
#     and no flips; a gradual 5-epoch warm-up for every net (the paper warms up only ResNet-110,
#     at 0.01); three seeds per net; test error with precise BN (below); one CPU thread per net.

# %%
@dataclass(frozen=True)
class Settings:
    epochs: int = 60
    lr: float = 0.1
    drops: tuple = (0.5, 0.75)  # fractions of training after which lr ÷ 10
    warmup_epochs: int = 5  # lr rises in equal steps to 0.1, for every net alike
    batch_size: int = 128
    momentum: float = 0.9
    weight_decay: float = 1e-4
    shift: int = 1  # augmentation: random shifts of up to this many pixels (0: none)
    bn_images: int = 500  # training images that precise BN measures

    def lr_at(self, epoch: int) -> float:  # epoch counts from 0
        if epoch < self.warmup_epochs:  # 1/6, 2/6, ... 5/6 of lr with 5 epochs
            return self.lr * (epoch + 1) / (self.warmup_epochs + 1)
        return self.lr * 0.1 ** sum(epoch >= round(f * self.epochs) for f in self.drops)


def train_epoch(model, optimizer, x, y, settings, generator):
    model.train()
    loss_sum, wrong = 0.0, 0
    order = torch.randperm(len(x), generator=generator).to(x.device)
    for idx in order.split(settings.batch_size):
        logits = model(random_shift(x[idx], generator, settings.shift))
        loss = nnf.cross_entropy(logits, y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(idx)
        wrong += (logits.argmax(1) != y[idx]).sum().item()
    return loss_sum / len(x), 100 * wrong / len(x)


@torch.no_grad()
def error_rate(model, x, y, batch_size: int = 500) -> float:
    model.eval()  # BN uses its stored statistics
    wrong = sum((model(xb).argmax(1) != yb).sum().item()
                for xb, yb in zip(x.split(batch_size), y.split(batch_size)))
    return 100 * wrong / len(x)


# %% [markdown]
# ## Precise BN: statistics that belong to the weights
#
# In eval mode a BN layer normalises with running averages of the batch means and variances it
# saw in training, updated with momentum 0.1: a mix of the last ten or so minibatches, each
# computed with *different* weights. While the weights still move fast (lr 0.1, and only 12 steps
# per epoch here), those averages describe none of the networks they were measured on, and a deep
# stack compounds the mismatch layer after layer. `precise_bn` measures every BN's mean and
# variance again with the current weights, on 500 training images (an equal-weight average over
# batches: `momentum=None`); the test error we report uses those statistics
# ([test](../tests/test_ablation.md#test_precise_bn_measures_the_current_weights)). We also
# record the test error with the raw running statistics, to see how far off they are.

# %%
@torch.no_grad()
def precise_bn(model, x, batch_size: int = 500):
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # None: a cumulative average, every batch counts the same
    model.train()  # BN measures each batch and updates its running statistics
    for xb in x.split(batch_size):
        model(xb)
    for bn in bns:
        bn.momentum = 0.1
    return model


# %% [markdown]
# ## The experiment
#
# `train_one` trains one network and returns one row per epoch, plus its final numbers. The same
# seed gives a plain and a residual net the same initial weights
# ([test](../tests/test_ablation.md#test_same_seed_same_initial_weights)) and the same minibatches.
# `scripts/run_ablation.py` in the repository calls it for every kind, depth and seed.

# %%
def train_one(kind, depth, seed, data, settings, device=DEVICE):
    x_train, y_train, x_test, y_test = (t.to(device) for t in data)
    torch.manual_seed(seed)
    model = BUILDERS[kind](depth).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr,
                                momentum=settings.momentum,
                                weight_decay=settings.weight_decay)
    generator = torch.Generator().manual_seed(seed)  # minibatch order and shifts
    rows = []
    for epoch in range(settings.epochs):
        for group in optimizer.param_groups:
            group["lr"] = settings.lr_at(epoch)
        loss, train_err = train_epoch(model, optimizer, x_train, y_train, settings,
                                      generator)
        # Test error with the BN statistics as training left them ...
        test_err_running = error_rate(model, x_test, y_test)
        # ... and with precise BN, on a copy: training goes on untouched.
        precise = precise_bn(copy.deepcopy(model), x_train[:settings.bn_images])
        rows.append(dict(model=f"{kind}-{depth}", seed=seed, epoch=epoch + 1,
                         lr=round(settings.lr_at(epoch), 6), train_loss=round(loss, 4),
                         train_err=round(train_err, 2),
                         test_err=round(error_rate(precise, x_test, y_test), 2),
                         test_err_running=round(test_err_running, 2)))
    # The last epoch's numbers, plus one full pass over the unshifted training set.
    full_pass = error_rate(precise, x_train, y_train)
    final = dict(rows[-1], train_err_full=round(full_pass, 2),
                 params=n_params(model))
    return rows, final




# %% [markdown]
# A tiny version runs here in seconds (depth 8, 2 epochs, 200 training images): the code path,
# not the claim: for that, see [what the run shows](results.md).

# %%
if __name__ == "__main__":
    x_train, y_train, x_test, y_test = digits_8()
    tiny = (x_train[:200], y_train[:200], x_test, y_test)
    for kind in BUILDERS:
        print(train_one(kind, 8, 0, tiny, Settings(epochs=2))[1])


# %% [markdown]
# [What the run shows](results.md) reads the results of the full experiment.
#
# ## Exercises
#
# 1. **The constructed solution (auto-checked).** §1 of the paper argues that a deeper net can do
#    at least as well as a shallower one: copy the shallow net and let the extra layers compute the
#    identity. A residual block gets there by zeroing one $\gamma$; a plain block cannot. Write
#    `make_identity(block)` that sets the weights and BN statistics of a `PlainBlock(c, c)` so
#    that, in eval mode, it returns every input $x \ge 0$ unchanged, and run
#    `check_identity(make_identity)`. How many numbers must be exactly right, against one for a
#    residual block?
# 2. Train plain-56 with `Settings(shift=0)` (no augmentation) for twice as long. What happens to
#    its training error, and what does that say about "training error at convergence" on a
#    training set a network can memorise?
# 3. **The paper's warm-up.** Replace the gradual warm-up by the paper's step: a subclass of
#    `Settings` whose `lr_at` gives 0.01 for the first 3 epochs, then the usual schedule. Train
#    ResNet-56 and plain-56 (seed 1) with it, then with `Settings(warmup_epochs=0)`. What does
#    the jump to 0.1 do to each net's training error? Which still ends near 0 %?
# 4. Set the last BN $\gamma$ of every block to zero (`nn.init.zeros_(block.F[-1].weight)`) in the
#    *plain* net before training. Why does that break it completely, while it helps a ResNet?

# %%
def check_identity(make_identity) -> None:
    torch.manual_seed(0)
    for c in (1, 4, 16):
        block = PlainBlock(c, c)
        for bn in (m for m in block.modules() if isinstance(m, nn.BatchNorm2d)):
            # Start far from the answer: BN parameters and statistics that are not 0 or 1.
            nn.init.uniform_(bn.weight, 0.5, 2.0), nn.init.normal_(bn.bias)
            bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2.0)
        make_identity(block)
        x = 3 * torch.rand(2, c, 6, 6)  # x ≥ 0, as after a ReLU
        with torch.no_grad():
            gap = (block.eval()(x) - x).abs().max().item()
        if not gap < 1e-5:
            raise AssertionError(
                f"PlainBlock({c}, {c}) in eval mode changes its input by up to "
                f"{gap:.3g}. Hint: follow x through F = conv, BN, ReLU, conv, BN. "
                "Which 3×3 kernel copies its input? What does BN compute in eval "
                "mode, with its stored statistics?")
    print("correct: this plain block computes the identity, so a deeper plain net can "
          "copy a shallower one")
