"""The degradation experiment: plain vs residual nets, two depths, three seeds, on 8×8 digits.

    make ablation        # the two commands below, side by side, niced

    python scripts/run_ablation.py --jobs 2
    python scripts/run_ablation.py --name degradation_long --kinds plain --depths 56 --seeds 0 --epochs 180

The first trains plain and residual CIFAR-style nets of 20 and 56 layers, seeds 0, 1 and 2, with the
settings of labml_style_src/ablation/degradation.py (`Settings`: 60 epochs, the first 5 a gradual
warm-up to lr 0.1, then ÷10 at 1/2 and 3/4), two nets at a time in two processes of one thread each,
and writes docs/assets/ablation/degradation.csv (one row per net, seed and epoch) and degradation.json
(settings, final numbers per net and seed, wall and CPU seconds, load average). The second is the
paper's "3× more iterations" check for plain-56. `--depths 20 32 44 56` gives all of Fig. 6's depths;
`--device cuda --jobs 1` runs on a GPU.

Measured for the committed files, torch 2.14.1, on an idle 2-core machine: `make ablation` took
1004 s of wall time (17 minutes). The first command used 1403 s of CPU in 988 s, the second 516 s
of CPU in 788 s, both measured with time.process_time in each process and written to the JSON files.
"""

import argparse
import csv
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labml_style_src.ablation.degradation import BUILDERS, Settings, digits_8, train_one  # noqa: E402
from labml_style_src.ablation.results import final_table  # noqa: E402


def train_timed(kind, depth, seed, data, settings, device, threads):
    """One net, in whichever process runs it: (curve, final, CPU seconds of this process)."""
    torch.set_num_threads(threads)
    start = time.process_time()
    curve, final = train_one(kind, depth, seed, data, settings, device)
    return curve, final, time.process_time() - start


def run_degradation(out_dir, data, settings, depths, seeds, device="cpu", name="degradation",
                    kinds=tuple(BUILDERS), jobs=1, log=print):
    """Train every kind × depth × seed; write `name`.csv and `name`.json after each net
    (so an interrupted run keeps what it finished: `complete` is false then); return the summary.
    jobs > 1 trains that many nets at once, one process each, with the caller's thread count:
    every net depends only on its seed, so the files are the same as with jobs=1."""
    start_wall, load = time.perf_counter(), os.getloadavg()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = [(kind, depth, seed) for kind in kinds for depth in depths for seed in seeds]
    done, cpu = {}, 0.0  # run -> (curve, final); CPU seconds of all processes
    args = dict(data=data, settings=settings, device=device, threads=torch.get_num_threads())
    log(f"{name}: {len(runs)} nets of {settings.epochs} epochs, {jobs} at a time on {device}; "
        "a line as each one ends (the committed run's times are in this script's docstring)")
    if jobs == 1:
        results = (((run, train_timed(*run, **args))) for run in runs)
    else:  # deepest first, so that no process is left alone with a long net at the end
        # Each worker starts its own session: on Linux (autogroup) its own share of a shared CPU.
        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=os.setsid)
        futures = {pool.submit(train_timed, *run, **args): run
                   for run in sorted(runs, key=lambda run: -run[1])}
        results = ((futures[f], f.result()) for f in as_completed(futures))
    for run, (curve, final, seconds) in results:
        done[run], cpu = (curve, final), cpu + seconds
        log(f"{final['model']:>9} seed {run[2]}: train err {final['train_err']:6.2f} % (last epoch), "
            f"{final['train_err_full']:6.2f} % (full pass); test err {final['test_err']:6.2f} %  "
            f"[{time.perf_counter() - start_wall:.0f} s]")
        finished = [r for r in runs if r in done]  # always in the order of `runs`
        rows = [row for r in finished for row in done[r][0]]
        with open(out_dir / f"{name}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        summary = dict(
            complete=len(done) == len(runs), settings=asdict(settings), depths=list(depths),
            seeds=list(seeds), n_train=len(data[0]), n_test=len(data[2]), device=str(device),
            threads=args["threads"], jobs=jobs, torch=torch.__version__,
            wall_seconds=round(time.perf_counter() - start_wall, 1),
            cpu_seconds=round(cpu, 1),  # summed over the nets, each in the process that trained it
            load_average_1min=[round(load[0], 2), round(os.getloadavg()[0], 2)],  # at start, now
            final=[done[r][1] for r in finished])
        (out_dir / f"{name}.json").write_text(json.dumps(summary, indent=1) + "\n")
    if jobs > 1:
        pool.shutdown()
    return summary


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "docs" / "assets" / "ablation"), help="where CSV/JSON go")
    p.add_argument("--name", default="degradation", help="file names: NAME.csv and NAME.json")
    p.add_argument("--kinds", nargs="+", default=list(BUILDERS), choices=list(BUILDERS))
    p.add_argument("--depths", type=int, nargs="+", default=[20, 56], help="CIFAR depths 6n+2: 20 32 44 56 ...")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=Settings.epochs)
    p.add_argument("--n-train", type=int, default=None, help="use only the first N training images (smoke tests)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process; the committed run used 1")
    p.add_argument("--jobs", type=int, default=1, help="nets trained at once, one process each (CPU cores)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    x_train, y_train, x_test, y_test = digits_8()
    data = (x_train[:args.n_train], y_train[:args.n_train], x_test, y_test)
    summary = run_degradation(args.out, data, Settings(epochs=args.epochs), args.depths, args.seeds,
                              torch.device(args.device), args.name, args.kinds, args.jobs)
    print(final_table(summary))
    print(f"{args.jobs} × {args.threads} threads on {args.device}: {summary['wall_seconds']:.0f} s wall, "
          f"{summary['cpu_seconds']:.0f} s CPU; results in {args.out}")


if __name__ == "__main__":
    main()
