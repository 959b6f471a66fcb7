"""Reference solutions: resnext/three_forms."""

from solutions import Graded


# Exercise 1: `to_grouped` concatenated the paths' tensors along the output axis (dim 0), except the
# last 1×1's weights, which the paths sum over: those along the input axis (dim 1). Cutting every
# tensor into C equal chunks along the same axis undoes it; the BN after the sum stays shared.
def from_grouped(sd: dict, C: int) -> dict:
    out = {k: v for k, v in sd.items() if k.startswith("bn.")}
    for key, value in sd.items():
        if key.startswith("F."):
            _, layer, name = key.split(".")
            if name == "num_batches_tracked":  # a counter: every path has the same
                parts = [value] * C
            else:
                parts = value.chunk(C, dim=1 if layer == "6" else 0)
            for i, part in enumerate(parts):
                out[f"paths.{i}.{layer}.{name}"] = part
    return out


GRADED = [
    Graded(1, "from_grouped", "check_from_grouped(from_grouped)",
           hidden=("len(from_grouped(GroupedConv(8, 4, 2, 8).state_dict(), 4))",
                   "tuple(from_grouped(GroupedConv(8, 4, 2, 8).state_dict(), 4)['paths.3.6.weight'].shape)"),
           points=3),
]
