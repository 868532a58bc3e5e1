#!/usr/bin/env bash
# PyTorch and backflow on the same workloads (W1-W3 by default), one after the other in
# one run, then the ratios. PyTorch comes from PyPI (`pip install torch numpy`); without
# it this script says so and exits 0.
#
# Usage: benches/peers/compare.sh [--threads 1,2,4] [--workload w1,w2,w3] [--reps 7]
#        benches/peers/compare.sh --t1 [--threads N] [--epochs 30]
#        benches/peers/compare.sh --model inception|attention|moe [--threads N] [--epochs E]
# The first form times W1-W4 (benches/WORKLOADS.md) with torch_workloads.py and
# `backflow scale`; --t1 trains T1 with t1_digits.py and `backflow train` instead
# (--threads is then one count, default 0: all cores, for both); --model trains that model
# with `backflow train --model NAME` (Parallel, then Kahn for the backward ratio) and with
# NAME_digits.py, each with the model's default recipe unless --epochs is given.
# Outputs go to $OUT (default target/peers): torch.json, backflow.json, scale.svg, or
# torch-t1.json, backflow-t1.txt, or torch-NAME.json, backflow-NAME.txt,
# backflow-NAME-kahn.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."

threads="" workload="w1,w2,w3" reps=7 t1=0 epochs="" model=""
usage() {
    echo "usage: $0 [--threads LIST] [--workload LIST] [--reps N] | --t1 [--threads N] [--epochs N]" \
        "| --model inception|attention|moe [--threads N] [--epochs N]" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
        --threads) [ $# -ge 2 ] || usage; threads="$2"; shift 2 ;;
        --workload) [ $# -ge 2 ] || usage; workload="$2"; shift 2 ;;
        --reps) [ $# -ge 2 ] || usage; reps="$2"; shift 2 ;;
        --epochs) [ $# -ge 2 ] || usage; epochs="$2"; shift 2 ;;
        --t1) t1=1; shift ;;
        --model) [ $# -ge 2 ] || usage; model="$2"; shift 2 ;;
        *) usage ;;
    esac
done

if ! python3 -c 'import torch' 2>/dev/null; then
    echo "compare.sh: skipped: PyTorch is not installed (it comes from PyPI: pip install torch numpy)"
    exit 0
fi

out="${OUT:-target/peers}"
mkdir -p "$out"

if [ "$t1" = 1 ]; then
    # T1: one after the other, on the same thread count (0: all cores, for both).
    t="${threads:-0}"
    epochs="${epochs:-30}"
    cargo build --release --quiet --bin backflow
    echo "== backflow train (threads $t, $epochs epochs)"
    cargo run --release --quiet --bin backflow -- train --threads "$t" --epochs "$epochs" \
        | tee "$out/backflow-t1.txt"
    echo "== PyTorch T1 (threads $t, $epochs epochs)"
    python3 benches/peers/t1_digits.py --threads "$t" --epochs "$epochs" --json "$out/torch-t1.json"
    exit 0
fi

if [ -n "$model" ]; then
    case "$model" in inception|attention|moe) ;; *)
        echo "$0: invalid value '$model' for '--model': not inception, attention or moe" >&2
        exit 2 ;;
    esac
    # One model: backflow (Parallel, then Kahn) and PyTorch, on the same thread count.
    t="${threads:-0}"
    extra=()
    [ -n "$epochs" ] && extra=(--epochs "$epochs")
    cargo build --release --quiet --bin backflow
    for scheduler in parallel kahn; do
        echo "== backflow train --model $model --scheduler $scheduler (threads $t)"
        suffix=""
        [ "$scheduler" = kahn ] && suffix="-kahn"
        ./target/release/backflow train --model "$model" --scheduler "$scheduler" \
            --threads "$t" "${extra[@]}" | tee "$out/backflow-$model$suffix.txt"
    done
    echo "== PyTorch $model (threads $t)"
    python3 "benches/peers/${model}_digits.py" --threads "$t" "${extra[@]}" \
        --json "$out/torch-$model.json"
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

cargo build --release --quiet --bin backflow
echo "== PyTorch (threads $threads)"
python3 benches/peers/torch_workloads.py --workload "$workload" --threads "$threads" \
    --reps "$reps" --json "$out/torch.json"
echo "== backflow scale (threads $threads)"
cargo run --release --quiet --bin backflow -- scale --workload "$workload" --threads "$threads" \
    --reps "$reps" --json "$out/backflow.json" --svg "$out/scale.svg"
echo "== ratios"
python3 benches/peers/compare.py "$out/torch.json" "$out/backflow.json"
