//! Shared by the workload benches: one criterion group per workload, one `BenchmarkId`
//! per configuration (`scheduler/threads`), throughput in graph nodes, and only the
//! backward pass inside the timer (the graph is built once and kept with `retain_graph`;
//! leaf gradients are cleared between iterations, outside the timer).

// Each bench compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use backflow::{BackwardOptions, Scheduler};
use backflow_app::workloads::Workload;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

/// Thread counts for `Parallel`; counts above the cores present are run too
/// (oversubscription is part of what is measured).
pub const THREADS: [usize; 5] = [1, 2, 4, 8, 16];

/// `Dfs` and `Kahn` (single-threaded: once each), then `Parallel` at each of `threads`.
pub fn configs(threads: &[usize]) -> Vec<(Scheduler, usize)> {
    [(Scheduler::Dfs, 1), (Scheduler::Kahn, 1)]
        .into_iter()
        .chain(threads.iter().map(|&p| (Scheduler::Parallel, p)))
        .collect()
}

/// Benches `w`'s backward pass in group `group` at each configuration.
pub fn bench_workload(
    c: &mut Criterion,
    group: &str,
    w: &Workload,
    configs: &[(Scheduler, usize)],
    sample_size: usize,
    measurement: Duration,
) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(w.nodes as u64));
    g.sample_size(sample_size);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(measurement);
    for &(scheduler, threads) in configs {
        let opts = BackwardOptions::new()
            .scheduler(scheduler)
            .threads(threads)
            .retain_graph(true);
        g.bench_with_input(
            BenchmarkId::new(scheduler.name(), threads),
            &opts,
            |b, opts| {
                b.iter_batched(
                    || w.zero_grad(),
                    |()| w.loss.backward_with(opts).expect("backward"),
                    BatchSize::PerIteration,
                )
            },
        );
    }
    g.finish();
}
