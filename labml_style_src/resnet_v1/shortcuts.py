# %% [markdown]
# # Shortcut options A, B and C
#
# When a block halves the feature map and widens the channels, $x$ no longer has the shape of $F(x)$
# and the shortcut must do something. The paper tries three answers, called A, B and C. This page
# writes each as a small function with one signature, `(c_in, c_out, stride) -> nn.Module`, and
# compares them on parameters and outputs.

# %%
import torch
import torch.nn.functional as Fn
from torch import nn

from labml_style_src.device import DEVICE
from labml_style_src.resnet_v1.residual_block import conv1x1, identity_or_projection

# %% [markdown]
# ## Option A: identity, subsampled and zero-padded
#
# Option A keeps the shortcut free of parameters. Where the map halves, it keeps every second row and
# column, `x[:, :, ::2, ::2]`; where the channels grow, it appends zero channels. For an odd size $H$
# a 3×3 convolution with padding 1 and stride 2 gives $\lceil H/2 \rceil$ rows, and so does `::2`,
# so the shapes agree for odd maps too.

# %%
class ZeroPadShortcut(nn.Module):
    # Option A: $x$ subsampled by `stride`, then `c_out - c_in` zero channels appended. No parameters.
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        if c_out < c_in:
            raise ValueError(f"option A can only add channels, got c_in={c_in} > c_out={c_out}")
        self.extra, self.stride = c_out - c_in, stride

    def forward(self, x):  # [B, C_in, H, W] -> [B, C_out, ceil(H / s), ceil(W / s)]
        x = x[:, :, ::self.stride, ::self.stride]
        # Pad the channel dimension at its end: `(W_left, W_right, H_top, H_bottom, C_front, C_back)`.
        return Fn.pad(x, (0, 0, 0, 0, 0, self.extra))

    def extra_repr(self):
        return f"extra_channels={self.extra}, stride={self.stride}"


def shortcut_A(c_in: int, c_out: int, stride: int) -> nn.Module:
    # Identity where the shape is unchanged, else subsample + zero-pad.
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return ZeroPadShortcut(c_in, c_out, stride)


# %% [markdown]
# ## Option B: project only where the shape changes
#
# This is the shortcut the [basic block page](residual_block.md) already uses, `identity_or_projection`:
# a 1×1 convolution with the block's stride, followed by BN, where the shape changes, and the identity
# everywhere else. It is torchvision's default.

# %%
shortcut_B = identity_or_projection


# %% [markdown]
# ## Option C: project everywhere
#
# Every block gets its own $W_s$, even where the shape is unchanged.

# %%
def shortcut_C(c_in: int, c_out: int, stride: int) -> nn.Module:
    # $W_s$ = 1×1 conv + BN in every block.
    return nn.Sequential(conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))


SHORTCUTS = {"A": shortcut_A, "B": shortcut_B, "C": shortcut_C}


def get_shortcut(option):
    # Accepts "A" / "B" / "C" or a function with the shortcut signature.
    if callable(option):
        return option
    if option not in SHORTCUTS:
        raise ValueError(f"unknown shortcut option {option!r}; choose one of {sorted(SHORTCUTS)} or pass a function")
    return SHORTCUTS[option]


# %%
if __name__ == "__main__":
    torch.manual_seed(0)
    x = torch.randn(2, 16, 32, 32, device=DEVICE)
    for name, make in SHORTCUTS.items():
        s = make(16, 32, 2).to(DEVICE)
        n = sum(p.numel() for p in s.parameters())
        print(name, tuple(s(x).shape), "params:", n)
