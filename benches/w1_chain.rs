//! W1 (chain): `y*1.0001` at odd steps, `y+0.5` at even steps, 100,000 ops, `L = y.sum()`.
//! Measures the engine's per-node overhead in ns/node for each scheduler (throughput is in
//! nodes). The graph is built outside the timer and kept with `retain_graph`.

use backflow::{BackwardOptions, Scheduler, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const N: usize = 100_000;

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
    let mut group = c.benchmark_group("w1_chain");
    group.throughput(Throughput::Elements(N as u64 + 2));
    group.sample_size(20);
    for scheduler in Scheduler::ALL {
        let opts = BackwardOptions::new()
            .scheduler(scheduler)
            .threads(1)
            .retain_graph(true);
        group.bench_with_input(BenchmarkId::new(scheduler.name(), 1), &opts, |b, opts| {
            b.iter(|| {
                loss.backward_with(opts).expect("backward");
                x.zero_grad();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
