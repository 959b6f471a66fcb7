# %% [markdown]
# # The Add-broadcast pitfall: why the residual add did not fail
#
# A Keras ResNeXt-50 tutorial from the Chinese "365-day deep learning" training camp (365天深度学习训练营,
# week J6) builds it from a `block(x, filters, strides, groups, conv_shortcut)` whose residual branch
# ends in `2 * filters` channels and whose shortcut, when `conv_shortcut=False`, is the input `x`
# itself. Its follow-up exercise (week J7) asks why `x = Add()([x, shortcut])` then raises no error
# for different channel counts. A published answer says `Add` zero-pads or broadcasts the shortcut so
# the channels "fit": wrong on both counts. This page shows, runnably, (1) that a channel mismatch is
# an error in PyTorch and in Keras, (2) why the tutorial's network never has one, and (3) the mismatch
# that *does* pass silently, broadcasting of size-1 dimensions, with a model that trains "fine".

# %%
import torch
from torch import nn
from torch.nn import functional as nnf

from labml_style_src.device import DEVICE
from labml_style_src.resnet_v1.residual_block import conv1x1, conv3x3, residual_add

# %% [markdown]
# ## 1. Different channel counts do not add
#
# Element-wise addition pairs every element of one tensor with one of the other. Broadcasting can only
# *repeat* a dimension of size 1; it never pads, crops or interpolates. 64 channels and 128 channels
# have no element-wise pairing, and PyTorch says so:

# %%
TORCH_MESSAGE = ("The size of tensor a (64) must match the size of tensor b (128) "
                 "at non-singleton dimension 1")

if __name__ == "__main__":
    fx, shortcut = torch.randn(2, 64, 8, 8), torch.randn(2, 128, 8, 8)  # [N, C, H, W]
    try:
        fx + shortcut
    except RuntimeError as e:
        print("RuntimeError:", e)
        assert str(e) == TORCH_MESSAGE
    else:
        raise AssertionError("the add must fail")

# %% [markdown]
# Keras behaves the same way. Its merge layers (`Add` among them) check shapes when the model is
# *defined*, before any data flows, in `Merge._compute_elemwise_op_output_shape`
# (`keras/src/layers/merging/base_merge.py` in the Keras 3 source). Two dimensions that differ and are
# both larger than 1 raise
# `ValueError: Inputs have incompatible shapes. Received shapes (56, 56, 64) and (56, 56, 128)`
# (Keras shapes leave out the batch and put channels last). A dimension of size 1 passes: it broadcasts
# as in PyTorch, section 3's problem. Keras is not installed: this describes its source, not a run.
#
# ## 2. Why the tutorial's network never mismatches
#
# Here is the tutorial's `block` in PyTorch (our code, same layer sequence): 1×1 to `filters`, grouped
# 3×3 (`groups` groups of `filters / groups` channels, with the stride), 1×1 to `2 * filters`, each
# followed by BN, ReLU after the first two; the shortcut is a projection to `2 * filters`
# (`conv_shortcut=True`) or `x` itself. `add` is the site's `residual_add` by default, or `torch.add`
# to reproduce Keras' `Add` (same rule as PyTorch's `+`).

# %%
class TutorialBlock(nn.Module):
    def __init__(self, c_in: int, filters: int, stride: int = 1, groups: int = 32,
                 conv_shortcut: bool = True, add=residual_add):
        super().__init__()
        # F: 1×1 → grouped 3×3 (stride) → 1×1 to `2 * filters`; BN after each, ReLU after the first two.
        self.F = nn.Sequential(
            conv1x1(c_in, filters), nn.BatchNorm2d(filters), nn.ReLU(inplace=True),
            conv3x3(filters, filters, stride, groups), nn.BatchNorm2d(filters),
            nn.ReLU(inplace=True),
            conv1x1(filters, 2 * filters), nn.BatchNorm2d(2 * filters),
        )
        # `conv_shortcut=False` means the raw input, whatever its width.
        self.shortcut = (
            nn.Sequential(conv1x1(c_in, 2 * filters, stride),
                          nn.BatchNorm2d(2 * filters))
            if conv_shortcut else nn.Identity())
        self.add, self.relu = add, nn.ReLU(inplace=True)

    def forward(self, x):  # [N, c_in, H, W] -> [N, 2 * filters, H / s, W / s]
        return self.relu(self.add(self.F(x), self.shortcut(x)))


def tutorial_stack(c_in: int, filters: int, blocks: int, stride: int, groups: int = 32,
                   add=residual_add):
    # The tutorial's `stack`: one projecting block, then `range(blocks)` identity blocks.
    layers = [TutorialBlock(c_in, filters, stride, groups, conv_shortcut=True, add=add)]
    for _ in range(blocks):
        layers.append(TutorialBlock(2 * filters, filters, 1, groups,
                                    conv_shortcut=False, add=add))
    return nn.Sequential(*layers)


# %% [markdown]
# The identity blocks get `c_in = 2 * filters` above only because that is what they will receive; the
# Keras code never states a width, it passes `x` on. So trace the shapes: the first block of a stack
# *projects* its shortcut, and its output has `2 * filters` channels, exactly the width every later
# block's $F$ produces. The identity shortcut never sees a mismatch; `Add` has nothing to pad. The
# cell runs the first two stages of the tutorial's ResNeXt-50 on a stem's 64-channel output, with
# plain `torch.add`, and records both operands of every add (on a 16×16 map instead of 56×56, for
# speed; the channel widths are the real ones).

# %%
def trace_adds(stack: nn.Sequential, x: torch.Tensor) -> list:
    # (F(x) shape, shortcut(x) shape) for each block, feeding each block the previous output.
    shapes = []
    with torch.no_grad():
        for block in stack:
            shapes.append((tuple(block.F(x).shape), tuple(block.shortcut(x).shape)))
            x = block(x)
    return shapes


if __name__ == "__main__":
    torch.manual_seed(0)
    stages = nn.Sequential(
        tutorial_stack(64, filters=128, blocks=2, stride=1, add=torch.add),
        tutorial_stack(256, filters=256, blocks=3, stride=2, add=torch.add),
    ).to(DEVICE).eval()
    x = torch.randn(1, 64, 16, 16, device=DEVICE)
    for stage in stages:
        for i, (f, s) in enumerate(trace_adds(stage, x)):
            kind = "projection" if i == 0 else "identity"
            print(f"block {i}: F(x) {f}  shortcut {s}  {kind}")
            assert f == s  # never a mismatch
        x = stage(x)
    assert len(stages[0]) == 3 and len(stages[1]) == 4

# %% [markdown]
# Note `range(blocks)`: the tutorial's `stack` builds `blocks + 1` blocks, so its `blocks` argument is the
# number of *identity* blocks; ResNeXt-50's 3, 4, 6, 3 blocks need 2, 3, 5, 2.
#
# The mismatch the exercise imagines exists only if an identity block receives a tensor of another
# width, for instance in a stack that starts with `conv_shortcut=False`. Then the add fails, with
# PyTorch's message for plain `+` and with ours, naming both shapes and the fix, for `residual_add`
# ([test](../tests/test_resnext.md#test_tutorial_stack_never_mismatches)).
#
# ## 3. What *does* pass silently: size-1 dimensions
#
# Broadcasting is real, just not what the published answer claims: a dimension of size 1 is repeated
# to match the other operand. So a residual add accepts two shapes it never should, and returns the
# right shape, so nothing downstream complains:
#
# - `[N, 1, H, W] + [N, C, H, W]`: a shortcut with one channel (say, a projection typed as
#   `conv1x1(c_in, 1)`) is copied into all $C$ channels;
# - `[N, C, 1, 1] + [N, C, H, W]`: a shortcut that was pooled to one pixel (say, `AdaptiveAvgPool2d(1)`
#   used to "downsample") is copied to every position.

# %%
if __name__ == "__main__":
    fx = torch.randn(2, 64, 8, 8)
    one_channel, one_pixel = torch.randn(2, 1, 8, 8), torch.randn(2, 64, 1, 1)
    print("[2,64,8,8] + [2,1,8,8]  ->", tuple((fx + one_channel).shape))
    print("[2,64,8,8] + [2,64,1,1] ->", tuple((fx + one_pixel).shape))
    assert (fx + one_channel).shape == (fx + one_pixel).shape == fx.shape

# %% [markdown]
# ### A model that trains "fine" with this bug
#
# A downsampling block whose shortcut pools to one pixel and projects: `[N, C, 1, 1]`. With a plain
# add it runs, and 20 SGD steps on a tiny task (is the left half of the image brighter?) bring the
# loss down. No error, no warning.

# %%
class PooledShortcutBlock(nn.Module):
    # The bug: shortcut = global average pool + 1×1 → `[N, c_out, 1, 1]`, broadcast over H and W.
    def __init__(self, c_in: int, c_out: int, stride: int = 2, add=residual_add):
        super().__init__()
        self.F = nn.Sequential(
            conv3x3(c_in, c_out, stride), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            conv3x3(c_out, c_out), nn.BatchNorm2d(c_out))
        self.shortcut = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv1x1(c_in, c_out))
        self.add, self.relu = add, nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.add(self.F(x), self.shortcut(x)))


def tiny_task(n: int = 256, seed: int = 0):
    # Images [n, 3, 16, 16]; label 1 when the left half is brighter than the right half.
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 16, 16, generator=g)
    x[:, :, :, :8] += 0.3 * torch.randn(n, 1, 1, 1, generator=g)
    y = (x[:, :, :, :8].mean(dim=(1, 2, 3)) > x[:, :, :, 8:].mean(dim=(1, 2, 3))).long()
    return x, y


def buggy_model(add=torch.add) -> nn.Sequential:
    return nn.Sequential(conv3x3(3, 16), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
                         PooledShortcutBlock(16, 32, add=add),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 2))


if __name__ == "__main__":
    torch.manual_seed(0)
    x, y = tiny_task()
    x, y = x.to(DEVICE), y.to(DEVICE)
    model = buggy_model(add=torch.add).to(DEVICE)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _step in range(20):
        idx = torch.randint(0, len(x), (32,), device=DEVICE)
        loss = nnf.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(f"loss: first 5 steps {sum(losses[:5]) / 5:.3f} -> "
          f"last 5 steps {sum(losses[-5:]) / 5:.3f}, no error")
    assert sum(losses[-5:]) < sum(losses[:5])

# %% [markdown]
# Yet the block is wrong. A residual block must be able to *pass its input on*: with the last BN's
# $\gamma = 0$ its output should be (the projection of) $x$, position by position. This one returns the
# same value at every position — the spatial content of $x$ never reaches the output through the
# shortcut, and every later layer has to rebuild it through $F$. The `residual_add` guard catches the bug
# at the first forward pass instead
# ([test](../tests/test_resnext.md#test_silent_broadcast_trains_and_guard_refuses)).

# %%
if __name__ == "__main__":
    block = model[3].eval()
    nn.init.zeros_(block.F[-1].weight)
    with torch.no_grad():
        h = model[:3](x[:4])  # the block's input, [4, 16, 16, 16]
        out = block(h)        # [4, 32, 8, 8]
    spread = out.flatten(2).std(dim=2).max().item()
    print(f"γ = 0: largest spatial std of the block's output = {spread:.1e} "
          f"(a correct block keeps x's structure)")
    assert spread < 1e-6 and h.flatten(2).std(dim=2).max().item() > 0.1

# %% [markdown]
# ## 4. The guard, everywhere
#
# So the fix is not "be careful": it is an add that refuses every shape difference, broadcasting
# included: `residual_add`, defined on the [first page](../resnet_v1/residual_block.md) and used by
# every residual block on the site (`BasicBlock`, `Bottleneck` and so every ResNet and ResNeXt,
# `AggregatedBlock`, and this page's blocks unless given `torch.add`). Its message names both shapes
# and the two ways to make them equal:

# %%
if __name__ == "__main__":
    a = (2, 64, 8, 8)
    for b in ((2, 128, 8, 8), (2, 1, 8, 8), (2, 64, 1, 1)):
        try:
            residual_add(torch.zeros(a), torch.zeros(b))
        except ValueError as e:
            print(e)
            assert str(a) in str(e) and str(b) in str(e)
        else:
            raise AssertionError(f"{b} must be refused")
    # Equal shapes: a plain sum.
    u, v = torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4)
    assert torch.equal(residual_add(u, v), u + v)

# %% [markdown]
# What the [fidelity tests](../tests/test_resnext.md#test_pitfall_facts) pin down: PyTorch's exact
# message for 64 against 128 channels, the two silent broadcast shapes, and the guard's message.
#
# ## Exercises
#
# 1. **Predict the shapes (auto-checked).** For each pair of shapes in `PAIRS` (none of them is on
#    this page), predict the shape of `a + b` (a tuple) or `None` if PyTorch raises — on paper,
#    before running anything. Run `check_add_shapes(answers)` with your list. Two pairs are traps:
#    look at which dimension a 1-D tensor lines up with.
# 2. Change `PooledShortcutBlock`'s shortcut to the correct option B projection
#    (`identity_or_projection` from the first page) and train again. Is the loss curve very different
#    after 20 steps? What does that tell you about using "the loss goes down" as a test?
# 3. The published answer also says the zero padding does not affect training (the padded values get
#    no gradient). Option A of the ResNet paper *does* zero-pad the shortcut, on purpose. Where, and
#    how (see [shortcuts](../resnet_v1/shortcuts.md))? Why must it be explicit?

# %%
PAIRS = [
    ((2, 64, 8, 8), (2, 64, 8)),
    ((2, 1, 8, 8), (1, 64, 1, 1)),
    ((2, 64, 8, 8), (8, 1)),
    ((2, 64, 8, 8), (2, 64, 4, 4)),
    ((64, 1, 1), (2, 64, 8, 8)),
    ((1, 64, 8, 8), (2, 1, 8, 1)),
    ((2, 64, 8, 8), (64,)),
    ((2, 8, 8, 8), (8,)),
]


def check_add_shapes(answers: list) -> None:
    # Compares your predictions with what `a + b` really does for each pair.
    if len(answers) != len(PAIRS):
        raise AssertionError(f"give one answer per pair: {len(PAIRS)} answers, "
                             f"got {len(answers)}")
    for i, ((a, b), guess) in enumerate(zip(PAIRS, answers)):
        try:
            truth = tuple((torch.zeros(a) + torch.zeros(b)).shape)
        except RuntimeError:
            truth = None
        if (tuple(guess) if guess is not None else None) != truth:
            raise AssertionError(
                f"pair {i}: {a} + {b} — not {guess}. Hint: line the two shapes up from "
                f"the right; each pair of sizes must be equal or contain a 1, and a "
                f"missing dimension counts as 1.")
    print("correct: you predicted every add, including the silent broadcasts")
