"""Time one training step of our ResNet-50 against torchvision's, in the same process, interleaved.

A step is forward + cross-entropy + backward + SGD update on a batch of random images. Both models start from the
same weights (torchvision's state dict loaded into ours), run in the same memory format and precision, and are timed
in alternating rounds (ABAB…, with the order flipped every round) so that drifting machine load hits both equally.
We report per-step medians and the ratio ours / torchvision (goal: <= 1.03), by wall clock and, on a CPU, also by
the CPU time of this process: on a machine shared with other jobs the wall clock mostly measures the neighbours,
while CPU time counts only the cycles our step got.

    python scripts/bench_resnet50.py                       # CPU, batch 32, 224×224
    python scripts/bench_resnet50.py --steps 2 --rounds 3  # fewer steps on a slow machine
    python scripts/bench_resnet50.py --device cuda --bf16  # GPU with bf16 autocast
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision
from torch.nn import functional as nnf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from labml_style_src.resnet_v1.against_torchvision import from_torchvision  # noqa: E402
from labml_style_src.resnet_v1.resnet import resnet  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default: cpu)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for forward and loss")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=224, help="image side in pixels")
    p.add_argument("--steps", type=int, default=5, help="timed steps per model per round")
    p.add_argument("--rounds", type=int, default=4, help="alternating rounds (A then B, B then A, ...)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per model before timing")
    p.add_argument("--memory-format", choices=["channels_last", "contiguous"], default="channels_last")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads on CPU (0: leave as is)")
    return p.parse_args(argv)


def make_step(model, images, labels, device, bf16):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def step():
        with autocast:
            loss = nnf.cross_entropy(model(images), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


def timed(step, n):
    # (wall seconds, process CPU seconds) per step.
    times = []
    for _ in range(n):
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.threads and device.type == "cpu":
        torch.set_num_threads(args.threads)
    fmt = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    torch.manual_seed(0)
    theirs = torchvision.models.resnet50(weights=None)
    ours = resnet(50)
    ours.load_state_dict(from_torchvision(theirs.state_dict()), strict=True)
    images = torch.randn(args.batch, 3, args.size, args.size, device=device).contiguous(memory_format=fmt)
    labels = torch.randint(0, 1000, (args.batch,), device=device)
    steps = {}
    for name, model in (("ours", ours), ("torchvision", theirs)):
        model.to(device=device, memory_format=fmt).train()
        steps[name] = make_step(model, images, labels, device, args.bf16)
        timed(steps[name], args.warmup)

    results = {"ours": [], "torchvision": []}
    order = ["ours", "torchvision"]
    for r in range(args.rounds):
        for name in order:
            results[name] += timed(steps[name], args.steps)
        order.reverse()
        print(f"round {r + 1}/{args.rounds} (wall / cpu, this round): " + "  ".join(
            f"{n} {results[n][-1][0] * 1e3:.0f} / {results[n][-1][1] * 1e3:.0f} ms" for n in results), flush=True)

    med = {n: [statistics.median(t[k] for t in results[n]) for k in (0, 1)] for n in results}
    ratio = med["ours"][0] / med["torchvision"][0]
    print(f"\nResNet-50 training step, batch {args.batch}, {args.size}×{args.size}, {device}, "
          f"{'bf16 autocast' if args.bf16 else 'fp32'}, {args.memory_format}, threads {torch.get_num_threads()}, "
          f"{args.rounds}×{args.steps} steps per model")
    print(f"median wall  ours {med['ours'][0] * 1e3:.1f} ms   torchvision {med['torchvision'][0] * 1e3:.1f} ms")
    print(f"ratio ours/torchvision (wall) = {ratio:.3f}  (goal <= 1.03)")
    if device.type == "cpu":
        print(f"median CPU   ours {med['ours'][1] * 1e3:.1f} ms   torchvision {med['torchvision'][1] * 1e3:.1f} ms")
        print(f"ratio ours/torchvision (CPU time) = {med['ours'][1] / med['torchvision'][1]:.3f}")
    return ratio


if __name__ == "__main__":
    main()
