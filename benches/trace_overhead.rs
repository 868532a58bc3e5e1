//! The cost of the backward trace on W1 (100,000 scalar ops, `Kahn`, 1 thread), in
//! ns/node:
//! - `off`: default options, no trace: the pass pays one branch on an `Option` per node,
//!   which must be indistinguishable from `w1_chain`'s `kahn` (same graph, same options);
//! - `stats`: node counting only (one relaxed atomic add per node);
//! - `on`: a trace written to a temporary file, for information (two clock reads and a
//!   lane push per node, plus writing the JSON after the pass).
//!
//! Run: `cargo bench --bench trace_overhead`.

use backflow::{BackwardOptions, BackwardStats, Scheduler, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const N: usize = 100_000;

/// W1: `y*1.0001` at odd steps, `y+0.5` at even steps; `L = y.sum()`.
fn chain(n: usize) -> (Tensor, Tensor) {
    let x = Tensor::ones(&[1]).requires_grad();
    let mut y = x.clone();
    for i in 0..n {
        y = if i % 2 == 1 { &y * 1.0001 } else { &y + 0.5 };
    }
    (x, y.sum())
}

fn bench(c: &mut Criterion) {
    let (x, loss) = chain(N);
    let base = BackwardOptions::new()
        .scheduler(Scheduler::Kahn)
        .threads(1)
        .retain_graph(true);
    let path =
        std::env::temp_dir().join(format!("backflow-trace-bench-{}.json", std::process::id()));
    let cases = [
        ("off", base.clone()),
        ("stats", base.clone().stats(BackwardStats::new())),
        ("on", base.clone().trace(&path)),
    ];
    let mut group = c.benchmark_group("trace_overhead");
    group.throughput(Throughput::Elements(N as u64 + 2));
    group.sample_size(20);
    for (name, opts) in &cases {
        group.bench_with_input(BenchmarkId::new("w1_kahn", name), opts, |b, opts| {
            b.iter(|| {
                loss.backward_with(opts).expect("backward");
                x.zero_grad();
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, bench);
criterion_main!(benches);
