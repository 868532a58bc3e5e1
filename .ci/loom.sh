#!/usr/bin/env bash
# Runs the loom models of the executor (engine/tests/loom/, one test binary `loom`) against the real release,
# accumulation, queue and completion code, compiled with `--cfg loom`.
#
# One process per test: a deadlock that loom finds aborts its whole process. cargo-nextest
# gives that by default; without it, each test runs as its own `cargo test --exact`.
# Exits non-zero if any model fails, aborts or is not found.
#
# LOOM_MAX_PREEMPTIONS may be raised for a deeper (much slower) local run.
set -euo pipefail

cd "$(dirname "$0")/.."

export RUSTFLAGS="--cfg loom"
# Changing RUSTFLAGS rebuilds everything: keep loom's build apart from the normal one.
export CARGO_TARGET_DIR="target-loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-0}"

tests=(loom)
if [ ! -f engine/tests/loom/main.rs ]; then
    echo "loom.sh: engine/tests/loom/main.rs not found" >&2
    exit 1
fi

start=$SECONDS
echo "loom.sh: LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS, targets: ${tests[*]}"

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run -p backflow-engine --release --test loom --no-fail-fast
else
    cargo test -p backflow-engine --release --test loom --no-run
    failed=()
    ran=0
    for target in "${tests[@]}"; do
        names=$(cargo test -q -p backflow-engine --release --test "$target" -- --list --format terse |
            sed -n 's/: test$//p')
        for name in $names; do
            ran=$((ran + 1))
            if ! cargo test -q -p backflow-engine --release --test "$target" -- --exact "$name"; then
                failed+=("$target::$name")
            fi
        done
    done
    if [ "$ran" -eq 0 ]; then
        echo "loom.sh: no loom test found (is each file gated on cfg(loom)?)" >&2
        exit 1
    fi
    if [ "${#failed[@]}" -gt 0 ]; then
        echo "loom.sh: ${#failed[@]} of $ran loom tests failed:" >&2
        printf '  %s\n' "${failed[@]}" >&2
        exit 1
    fi
    echo "loom.sh: $ran loom tests passed"
fi

echo "loom.sh: done in $((SECONDS - start)) s"
