//! W3 (fan-in): 10,000 consumers `(t2 * k).sin().sum()` of one `[64]` tensor, summed.
//! Measures contention on one shared node: `Parallel` must be no slower than `Kahn`.

mod common;

use backflow_app::workloads::WorkloadId;
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let w = WorkloadId::W3.build().expect("W3 builds");
    let configs = common::configs(&common::THREADS);
    common::bench_workload(c, "w3_fan_in", &w, &configs, 10, Duration::from_secs(3));
}

criterion_group!(benches, bench);
criterion_main!(benches);
