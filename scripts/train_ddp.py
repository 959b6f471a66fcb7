"""Data-parallel training of a ResNet on an ImageNet-format folder: the `train` function of
labml_style_src/scale/ddp_train.py behind a command line.

    python scripts/train_ddp.py --write-demo-data data/patterns-imagenet      # generated JPEGs
    python scripts/train_ddp.py --data data/patterns-imagenet                  # one process
    torchrun --standalone --nproc_per_node 2 scripts/train_ddp.py --data data/patterns-imagenet

Not launched by torchrun it is one process; under torchrun every process runs it (gloo on the
CPU, NCCL with --device cuda). Running the same command again resumes from
<run-dir>/checkpoint.pt. See the page for multi-node and SLURM command lines.
"""

import argparse
import sys
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labml_style_src.scale.ddp import BN_MODES, Schedule  # noqa: E402
from labml_style_src.scale.ddp_train import ARCHS, RunConfig, train  # noqa: E402
from labml_style_src.scale.imagenet import write_imagenet_folder  # noqa: E402


def parse_args(argv=None) -> tuple:
    default, schedule = RunConfig(), RunConfig().schedule
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write-demo-data", metavar="FOLDER",
                   help="write generated ImageNet-format JPEGs to FOLDER and exit")
    p.add_argument("--demo-images", type=int, default=256,
                   help="training images per class for --write-demo-data")
    for f in fields(RunConfig):
        if f.name == "schedule":
            continue
        flag = "--" + f.name.replace("_", "-")
        value = getattr(default, f.name)
        if isinstance(value, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            choices = {"arch": sorted(ARCHS), "bn": sorted(BN_MODES)}.get(f.name)
            p.add_argument(flag, type=type(value), default=value, choices=choices)
    p.add_argument("--base-lr", type=float, default=schedule.base_lr)
    p.add_argument("--base-batch", type=int, default=schedule.base_batch,
                   help="total batch for which --base-lr is meant (linear scaling rule)")
    p.add_argument("--warmup-epochs", type=float, default=schedule.warmup_epochs)
    p.add_argument("--milestones", type=float, nargs="*", default=list(schedule.milestones))
    args = p.parse_args(argv)
    schedule = Schedule(args.base_lr, args.base_batch, args.warmup_epochs,
                        tuple(args.milestones))
    cfg = RunConfig(**{f.name: getattr(args, f.name) for f in fields(RunConfig)
                       if f.name != "schedule"}, schedule=schedule)
    return args, cfg


def main(argv=None):
    args, cfg = parse_args(argv)
    if args.write_demo_data:
        root = write_imagenet_folder(args.write_demo_data, n_train=args.demo_images)
        print(f"wrote generated ImageNet-format JPEGs to {root}/train and {root}/val")
        return
    train(cfg)


if __name__ == "__main__":
    main()
