"""Training throughput with DistributedDataParallel: images/s with 1 and with 2 processes started by torchrun,
the same model and the same batch per process (weak scaling, as in Goyal et al.: n images per worker).

Synthetic data already in memory: this measures the training step (forward, backward, gradient all-reduce,
SGD), not JPEG decoding. On the CPU the processes share the machine's cores: by default each of N processes
gets cores / N threads, so both settings use the whole CPU. Not a test: the numbers depend on the machine and
on what else runs on it, so the script prints the load average before and after each measurement, and the CPU
time per image (less sensitive to other load than images/s). On a busy machine, OpenMP threads that wait for
each other make multi-threaded processes very slow: `--threads 1` then compares the processes alone.

    python scripts/bench_ddp.py                                                 # CPU (gloo): 1 vs 2 processes
    python scripts/bench_ddp.py --device cuda --nprocs 1 --arch 50 --image-size 224 --batch-size 128 \\
        --bf16 --channels-last                                                  # one GPU: ResNet-50 steps/s
    python scripts/bench_ddp.py --device cuda --nprocs 1 2 --arch 50 --image-size 224 --bf16 --channels-last
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def worker(args):
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from labml_style_src.scale.ddp import init_distributed
    from labml_style_src.scale.ddp_train import ARCHS
    from labml_style_src.training.loop import train_step

    torch.set_num_threads(args.threads)
    d = init_distributed(args.device)
    torch.manual_seed(0)
    model = ARCHS[args.arch](1000).to(d.device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    net = DistributedDataParallel(model, [d.local_rank] if d.device.type == "cuda" else None) \
        if d.world_size > 1 else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=d.device)
    x = x.contiguous(memory_format=memory_format)
    y = torch.randint(0, 1000, (args.batch_size,), device=d.device)
    autocast = torch.bfloat16 if args.bf16 else None

    def steps(n):
        for _ in range(n):
            train_step(net, optimizer, x, y, autocast)
        if d.device.type == "cuda":
            torch.cuda.synchronize()
        if d.world_size > 1:
            dist.barrier()

    steps(args.warmup)
    cpu0, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    steps(args.steps)
    seconds, cpu1 = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    cpu = torch.tensor([cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime])
    if d.world_size > 1:
        dist.all_reduce(cpu)  # CPU seconds of all processes
        dist.destroy_process_group()
    if d.is_main:
        images = args.steps * args.batch_size * d.world_size
        Path(args.worker).write_text(json.dumps(dict(
            processes=d.world_size, images_per_s=images / seconds, steps_per_s=args.steps / seconds,
            seconds=seconds, cpu_seconds=cpu.item())))


def measure(args, nprocs: int) -> dict:
    threads = args.threads or max(1, (os.cpu_count() or 1) // nprocs)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nprocs),
               __file__, "--worker", str(out), "--threads", str(threads)] + args.passthrough
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        load_before = os.getloadavg()[0]
        subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        result = json.loads(out.read_text())
    return dict(result, threads=threads, load_before=load_before, load_after=os.getloadavg()[0])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--arch", default="small", help="'small' (ResNet-10, widths 16-128), '18' or '50'")
    p.add_argument("--image-size", type=int, default=56)
    p.add_argument("--batch-size", type=int, default=32, help="per process")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--nprocs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=3, help="the settings alternate, round after round")
    p.add_argument("--threads", type=int, default=0, help="per process; 0: cores / processes")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--json", help="also write the measurements to this file")
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    args.passthrough = [f"--device={args.device}", f"--arch={args.arch}", f"--image-size={args.image_size}",
                        f"--batch-size={args.batch_size}", f"--steps={args.steps}", f"--warmup={args.warmup}"]
    args.passthrough += ["--bf16"] * args.bf16 + ["--channels-last"] * args.channels_last
    print(f"{os.cpu_count()} CPU cores; device {args.device}; arch {args.arch}; {args.image_size}px; "
          f"batch {args.batch_size} per process; {args.steps} timed steps after {args.warmup}")
    rows = []
    for round_ in range(args.rounds):
        for n in args.nprocs:
            rows.append(dict(measure(args, n), round=round_))
            r = rows[-1]
            cpu_ms = 1000 * r["cpu_seconds"] / (r["images_per_s"] * r["seconds"])
            print(f"round {round_}: {n} process(es) × {r['threads']} thread(s): {r['images_per_s']:8.1f} images/s "
                  f"({r['steps_per_s']:.2f} steps/s; {cpu_ms:.2f} CPU ms per image; "
                  f"load average {r['load_before']:.1f} -> {r['load_after']:.1f})", flush=True)
    for n in args.nprocs:
        ips = [r["images_per_s"] for r in rows if r["processes"] == n]
        print(f"{n} process(es): median {statistics.median(ips):.1f} images/s over {len(ips)} rounds")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
