//! W6 (fine-grained wide): 1,000 branches of 100 scalar ops, summed as a balanced tree.
//! Measures whether the parallel scheduler wins when each node costs tens of nanoseconds
//! (throughput is in nodes) for every scheduler and thread count.

mod common;

use backflow_app::workloads::{fine_wide, W6_BRANCHES, W6_STEPS};
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let w = fine_wide(W6_BRANCHES, W6_STEPS);
    let configs = common::configs(&common::THREADS);
    common::bench_workload(c, "w6_fine", &w, &configs, 20, Duration::from_secs(3));
}

criterion_group!(benches, bench);
criterion_main!(benches);
