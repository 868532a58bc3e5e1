//! W4 (deep): the W1 chain with 1,000,000 nodes. Every scheduler must complete (no stack
//! overflow), at no more ns/node than W1. A pass takes about a second, so this runs
//! `Parallel` at 1, 4 and 16 threads only, with ten samples each.

mod common;

use backflow_app::workloads::deep;
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let w = deep();
    let configs = common::configs(&[1, 4, 16]);
    common::bench_workload(c, "w4_deep", &w, &configs, 10, Duration::from_secs(10));
}

criterion_group!(benches, bench);
criterion_main!(benches);
