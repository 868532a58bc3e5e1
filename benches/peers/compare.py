"""Prints PyTorch against backflow, from torch_workloads.py's and `backflow scale`'s JSON.

Usage: python3 compare.py torch.json backflow.json

A ratio is PyTorch's median time over backflow's, so above 1 means backflow is faster.
"""
import json
import sys


def main():
    torch_doc = json.load(open(sys.argv[1]))
    ours = json.load(open(sys.argv[2]))["results"]
    theirs = torch_doc["results"]
    print(f"PyTorch {torch_doc['torch']} vs backflow on {torch_doc['cpus']} cpus "
          "(ratio = PyTorch time / backflow time; > 1: backflow is faster)")
    print(f"{'workload':<8} {'threads':>7} {'torch ms':>10} {'scheduler':<9} {'backflow ms':>12} {'ratio':>7}")

    def row(workload, threads, t_ms, scheduler, b_ms):
        print(f"{workload:<8} {threads:>7} {t_ms:>10.2f} {scheduler:<9} {b_ms:>12.2f} {t_ms / b_ms:>7.2f}")

    for t in theirs:
        for b in ours:
            same = b["workload"] == t["workload"]
            if same and b["scheduler"] == "parallel" and b["threads"] == t["threads"]:
                row(t["workload"], t["threads"], t["median_ms"], "parallel", b["median_ms"])
            if same and b["scheduler"] == "kahn" and t["threads"] == 1:
                row(t["workload"], 1, t["median_ms"], "kahn", b["median_ms"])
    print("best thread count of each, per workload:")
    for workload in sorted({t["workload"] for t in theirs}):
        tb = min((t for t in theirs if t["workload"] == workload), key=lambda t: t["median_ms"])
        bb = [b for b in ours if b["workload"] == workload]
        if not bb:
            continue
        bb = min(bb, key=lambda b: b["median_ms"])
        print(f"{workload:<8} torch {tb['median_ms']:.2f} ms at {tb['threads']} threads, "
              f"backflow {bb['median_ms']:.2f} ms ({bb['scheduler']} at {bb['threads']}): "
              f"ratio {tb['median_ms'] / bb['median_ms']:.2f}")


if __name__ == "__main__":
    main()
