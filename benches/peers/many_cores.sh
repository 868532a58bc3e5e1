#!/usr/bin/env bash
# Every figure the one-pool work is judged by on a many-core machine, in one run of about
# six minutes on 16 cores, most important first, each step under its own time limit so a
# slow step cannot take the rest with it. Built for a lent machine that has PyTorch but no
# Rust: build the binaries here, carry them, and point the script at them.
#
#   RUSTFLAGS="-C target-cpu=x86-64-v3" cargo build --release --bin backflow
#   RUSTFLAGS="-C target-cpu=x86-64-v3" cargo bench --no-run --bench split_runner
#   BACKFLOW=target/release/backflow SPLIT_BENCH=target/release/deps/split_runner-HASH \
#       OUT=/tmp/out benches/peers/many_cores.sh
#
# (`target-cpu=native` of the workspace's .cargo/config.toml would tie the binary to this
# machine's CPU; x86-64-v3 runs on any AVX2 machine.) Writes one text file per step to $OUT
# (default target/many_cores) and prints each as it goes. PyTorch steps are skipped when
# `import torch` fails.
set -uo pipefail
cd "$(dirname "$0")/../.."

bf="${BACKFLOW:-target/release/backflow}"
out="${OUT:-target/many_cores}"
cores=$(nproc)
mkdir -p "$out"
[ -x "$bf" ] || { echo "$0: no backflow binary at '$bf' (set BACKFLOW)" >&2; exit 2; }
torch=0
python3 -c 'import torch' 2>/dev/null && torch=1

# step NAME LIMIT_S COMMAND...: runs COMMAND under a time limit, its output to $out/NAME.txt.
step() {
    local name="$1" limit="$2"
    shift 2
    echo "== $name ($*)"
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.txt"
    echo "== $name: exit ${PIPESTATUS[0]}"
}

# 1. The models at all cores against PyTorch at 1, 4 and all cores (its best is the peer).
for m in inception attention t1 moe; do
    step "backflow-$m-$cores" 90 "$bf" train --model "$m" --threads "$cores"
    if [ "$torch" = 1 ]; then
        for t in 1 4 "$cores"; do
            step "torch-$m-$t" 120 python3 "benches/peers/${m}_digits.py" --threads "$t"
        done
    fi
done

# 2. The backward's scaling: T1 at all cores over Kahn; W1-W3 and W6.
step "backflow-t1-kahn" 90 "$bf" train --model t1 --scheduler kahn --threads 1
step "scale" 240 "$bf" scale --workload w1,w2,w3,w6 --threads "1,2,4,8,$cores" --reps 7 \
    --json "$out/scale.json" --svg "$out/scale.svg"

# 3. Two cores of the same machine: inception and attention against PyTorch.
for m in inception attention; do
    step "backflow-$m-2" 90 taskset -c 0,1 "$bf" train --model "$m" --threads 2
    [ "$torch" = 1 ] &&
        step "torch-$m-2" 120 taskset -c 0,1 python3 "benches/peers/${m}_digits.py" --threads 2
done

# 4. GEMM at 1 and all cores, and the cost model's estimates.
if [ -n "${SPLIT_BENCH:-}" ]; then
    step "split_gemm" 120 "$SPLIT_BENCH" --bench "split_gemm|split_small"
fi
echo "== done: $out"
