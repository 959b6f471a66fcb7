"""Reference solutions: training/fast_gpu."""


from labml_style_src.training.fast_gpu import crop_flip
from solutions import Graded


# Exercise 1: adding the mean back gives the raw images; `crop_flip` pads them with zeros (black) and
# crops and flips them as our pipeline does; subtracting the mean again gives the other pipeline's crops.
def crop_black(x, mean, dy, dx, flip):
    return crop_flip(x + mean, dy, dx, flip) - mean


# Images equal to their mean (zeros after the mean is subtracted), so only the black border is negative:
# how many border pixels each column of a crop holds tells where the border went.
BORDER = ("(crop_black(torch.zeros(2, 3, 32, 32), torch.full((3, 1, 1), 0.5), torch.tensor({dy}), "
          "torch.tensor({dx}), torch.tensor({flip}))[:, 0] < 0).sum(1).tolist()")

GRADED = [
    Graded(1, "crop_black", "check_black_padding(crop_black)",
           hidden=(BORDER.format(dy=[0, 8], dx=[8, 3], flip=[False, True]),
                   BORDER.format(dy=[5, 1], dx=[0, 4], flip=[True, False]))),
]
