//! W1 (chain): `y*1.0001` at odd steps, `y+0.5` at even steps, 100,000 ops, `L = y.sum()`.
//! Measures the engine's per-node overhead in ns/node (throughput is in nodes) for every
//! scheduler and thread count.

mod common;

use backflow_app::workloads::{chain, W1_OPS};
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let w = chain(W1_OPS);
    let configs = common::configs(&common::THREADS);
    common::bench_workload(c, "w1_chain", &w, &configs, 20, Duration::from_secs(3));
}

criterion_group!(benches, bench);
criterion_main!(benches);
