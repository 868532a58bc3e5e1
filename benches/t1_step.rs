//! T1 (digits): one training step of the wide model (16 branches of
//! `Linear(64,64)→tanh→Linear(64,64)→tanh`, concatenated, `Linear(1024,10)`) on a batch
//! of 64: forward, cross-entropy, backward and an Adam update, timed together, per
//! scheduler and thread count. Throughput is in samples.

use backflow::nn::{cross_entropy, Adam, Module, Optimizer};
use backflow::{BackwardOptions, Scheduler};
use backflow_app::data::{digits, DIGITS_CLASSES, DIGITS_FEATURES};
use backflow_app::train::wide_model;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

const BATCH: usize = 64;

fn bench(c: &mut Criterion) {
    let (train, _) = digits().expect("digits data").split(0.8, 0);
    let batch = train.batches(BATCH, 0).next().expect("one batch");
    let mut g = c.benchmark_group("t1_step");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(20);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    let configs = [(Scheduler::Kahn, 1)]
        .into_iter()
        .chain([1, 2, 4, 8, 16].map(|p| (Scheduler::Parallel, p)));
    for (scheduler, threads) in configs {
        let model = wide_model(DIGITS_FEATURES, 16, 64, DIGITS_CLASSES, 0);
        let mut opt = Adam::new(model.parameters(), 1e-2);
        let opts = BackwardOptions::new().scheduler(scheduler).threads(threads);
        g.bench_function(BenchmarkId::new(scheduler.name(), threads), |b| {
            b.iter(|| {
                // The forward's branches and split kernels run on the executor's threads,
                // as many as the backward pass may use.
                backflow::with_threads(threads, || {
                    let logits = model.forward(&batch.x).expect("forward");
                    let loss = cross_entropy(&logits, &batch.y).expect("loss");
                    loss.backward_with(&opts).expect("backward");
                    opt.step().expect("adam step");
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
