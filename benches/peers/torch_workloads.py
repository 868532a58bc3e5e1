"""PyTorch on backflow's standard workloads W1-W4 and W6 (see benches/WORKLOADS.md), for compare.sh.

Builds each graph once, then times `loss.backward(retain_graph=True)` alone: one warm-up,
then --reps timed passes, the leaves' .grad cleared between passes outside the timer, as
`backflow scale` does. Writes JSON (--json) in the shape compare.py reads and prints one
line per measurement.

Needs PyTorch from PyPI (`pip install torch numpy`); the CPU build is enough.
"""
import argparse
import json
import os
import statistics
import time

import torch


def chain(n):
    """W1/W4: y*1.0001 at odd steps, y+0.5 at even steps; L = y.sum()."""
    x = torch.ones(1, requires_grad=True)
    y = x
    for i in range(n):
        y = y * 1.0001 if i % 2 == 1 else y + 0.5
    return [x], y.sum()


def wide(branches=64, depth=8, hidden=128, batch=32, seed=0):
    """W2: x [batch, hidden] shared; per branch depth layers h = tanh(h @ W), W randn/sqrt(hidden)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, hidden, generator=gen)
    leaves, sums = [], []
    for _ in range(branches):
        h = x
        for _ in range(depth):
            w = (torch.randn(hidden, hidden, generator=gen) / hidden ** 0.5).requires_grad_()
            leaves.append(w)
            h = torch.tanh(h @ w)
        sums.append(h.sum())
    return leaves, torch.stack(sums).sum()


def fan_in(consumers=10_000, n=64):
    """W3: one [n] tensor read by `consumers` terms (t2 * k).sin().sum(), summed."""
    t2 = torch.randn(n, generator=torch.Generator().manual_seed(0), requires_grad=True)
    return [t2], torch.stack([(t2 * float(k)).sin().sum() for k in range(consumers)]).sum()


def fine_wide(branches=1_000, steps=100):
    """W6: branch b starts at x * (1 + b/branches), then steps ops as W1; balanced-tree sum."""
    x = torch.ones(1, requires_grad=True)
    ends = []
    for b in range(branches):
        y = x * (1.0 + b / branches)
        for i in range(steps):
            y = y * 1.0001 if i % 2 == 1 else y + 0.5
        ends.append(y)
    while len(ends) > 1:
        ends = [ends[i] + ends[i + 1] if i + 1 < len(ends) else ends[i] for i in range(0, len(ends), 2)]
    return [x], ends[0].sum()


BUILDERS = {
    "w1": lambda: chain(100_000),
    "w2": wide,
    "w3": fan_in,
    "w4": lambda: chain(1_000_000),
    "w6": fine_wide,
}


def time_backward(leaves, loss, reps):
    """Median and all timings (seconds) of `reps` backward passes after one warm-up."""
    times = []
    for rep in range(reps + 1):
        for leaf in leaves:
            leaf.grad = None
        start = time.perf_counter()
        loss.backward(retain_graph=True)
        elapsed = time.perf_counter() - start
        if rep > 0:
            times.append(elapsed)
    return statistics.median(times), sorted(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="w1,w2,w3", help="comma-separated: w1,w2,w3,w4,w6")
    ap.add_argument("--threads", default="1", help="comma-separated torch.set_num_threads values")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--json", default="", help="write the results here")
    args = ap.parse_args()
    workloads = [w.strip().lower() for w in args.workload.split(",") if w.strip()]
    threads = sorted({int(t) for t in args.threads.split(",") if t.strip()})
    results = []
    for name in workloads:
        leaves, loss = BUILDERS[name]()
        # W1 and W4 are scalar chains: intra-op threads cannot matter, so one thread only.
        for th in threads if name in ("w2", "w3") else [1]:
            torch.set_num_threads(th)
            median, times = time_backward(leaves, loss, args.reps)
            results.append({"workload": name, "threads": th, "median_ms": median * 1e3,
                            "times_ms": [t * 1e3 for t in times]})
            print(f"torch {name} threads={th} median_ms={median * 1e3:.3f}", flush=True)
        del leaves, loss
    doc = {"torch": torch.__version__, "cpus": os.cpu_count(), "reps": args.reps,
           "results": results}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
