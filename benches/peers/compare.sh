#!/usr/bin/env bash
# PyTorch and backflow on the same workloads (W1-W3 by default), one after the other in
# one run, then the ratios. PyTorch comes from PyPI (`pip install torch numpy`); without
# it this script says so and exits 0.
#
# Usage: benches/peers/compare.sh [--threads 1,2,4] [--workload w1,w2,w3] [--reps 7]
# Outputs go to $OUT (default target/peers): torch.json, backflow.json, scale.svg.
set -euo pipefail
cd "$(dirname "$0")/../.."

threads="" workload="w1,w2,w3" reps=7
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) threads="$2"; shift 2 ;;
        --workload) workload="$2"; shift 2 ;;
        --reps) reps="$2"; shift 2 ;;
        *) echo "usage: $0 [--threads LIST] [--workload LIST] [--reps N]" >&2; exit 2 ;;
    esac
done

if ! python3 -c 'import torch' 2>/dev/null; then
    echo "compare.sh: skipped: PyTorch is not installed (it comes from PyPI: pip install torch numpy)"
    exit 0
fi

if [ -z "$threads" ]; then
    # Powers of two up to the cores present, plus the core count (as `backflow scale`).
    cores=$(nproc)
    threads=1
    p=2
    while [ "$p" -le "$cores" ]; do threads="$threads,$p"; p=$((p * 2)); done
    case ",$threads," in *",$cores,"*) ;; *) threads="$threads,$cores" ;; esac
fi

out="${OUT:-target/peers}"
mkdir -p "$out"
cargo build --release --quiet --bin backflow
echo "== PyTorch (threads $threads)"
python3 benches/peers/torch_workloads.py --workload "$workload" --threads "$threads" \
    --reps "$reps" --json "$out/torch.json"
echo "== backflow scale (threads $threads)"
cargo run --release --quiet --bin backflow -- scale --workload "$workload" --threads "$threads" \
    --reps "$reps" --json "$out/backflow.json" --svg "$out/scale.svg"
echo "== ratios"
python3 benches/peers/compare.py "$out/torch.json" "$out/backflow.json"
