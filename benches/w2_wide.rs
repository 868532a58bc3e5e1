//! W2 (wide): 64 branches × 8 layers of `h = tanh(h @ W)` on a shared `[32,128]` input.
//! Measures inter-branch parallelism: `Parallel` at 1, 2, 4, 8 and 16 threads against the
//! single-threaded `Kahn` and `Dfs`.

mod common;

use backflow_app::workloads::WorkloadId;
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let w = WorkloadId::W2.build().expect("W2 builds");
    let configs = common::configs(&common::THREADS);
    common::bench_workload(c, "w2_wide", &w, &configs, 20, Duration::from_secs(3));
}

criterion_group!(benches, bench);
criterion_main!(benches);
