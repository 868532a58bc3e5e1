//! Kernel splitting on the executor's threads, at 1 and 2 threads (same-run ratios only):
//!
//! - `split_gemm`: a 256×256×256 product (`Tensor::matmul`, 33.5 Mflop, split into row
//!   blocks) under `with_threads(1)`, `with_threads(2)` and, on a larger machine, every core;
//! - `split_small`: products from 48×48×48 (0.2 Mflop) to 192×192×192 (14 Mflop) at 1
//!   and 2 threads: a kernel the cost model leaves whole (its helpers would join too late)
//!   must take no longer at 2 threads than at 1;
//! - `split_runner`: 8 chunks of about 0.2 ms each through the executor (`parallel_for`,
//!   which borrows the chunk function across threads by erasing its lifetime: the one
//!   `unsafe` of `engine/src/exec/split.rs`), against the safe alternative that needs no
//!   `unsafe` of ours (`std::thread::scope`, a thread started per chunk, as a per-call pool
//!   would), and against running them in order on one thread.

use backflow::{no_grad, parallel_for, with_threads, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use std::time::Duration;

fn split_gemm(c: &mut Criterion) {
    let a = Tensor::<f32>::randn(&[256, 256], 1);
    let mut group = c.benchmark_group("split_gemm");
    let mut counts = vec![1, 2];
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores > 2 {
        counts.push(cores);
    }
    for threads in counts {
        group.bench_with_input(
            BenchmarkId::new("matmul_256", threads),
            &threads,
            |b, &t| {
                b.iter(|| with_threads(t, || no_grad(|| black_box(a.matmul(&a).unwrap()))));
            },
        );
    }
    group.finish();
}

fn split_small(c: &mut Criterion) {
    let mut group = c.benchmark_group("split_small");
    // Some splits first, so the cost model has measured this machine's helpers.
    let warm = Tensor::<f32>::randn(&[256, 256], 2);
    for _ in 0..50 {
        with_threads(2, || no_grad(|| black_box(warm.matmul(&warm).unwrap())));
    }
    for n in [48, 64, 96, 128, 192] {
        let a = Tensor::<f32>::randn(&[n, n], 1);
        for threads in [1, 2] {
            group.bench_with_input(
                BenchmarkId::new(format!("matmul_{n}"), threads),
                &threads,
                |b, &t| {
                    b.iter(|| with_threads(t, || no_grad(|| black_box(a.matmul(&a).unwrap()))));
                },
            );
        }
    }
    println!("split_small: {}", backflow::split_estimate());
    group.finish();
}

/// One chunk's work: a dependent chain of float operations (about 0.2 ms).
fn chunk_work(i: usize) -> f64 {
    let mut v = i as f64;
    for _ in 0..20_000 {
        v = (v * 1.000_001 + 0.5).sqrt();
    }
    v
}

fn split_runner(c: &mut Criterion) {
    const CHUNKS: usize = 8;
    let mut group = c.benchmark_group("split_runner");
    group.bench_function("in_order", |b| {
        b.iter(|| (0..CHUNKS).map(chunk_work).sum::<f64>());
    });
    group.bench_function("executor_2_threads", |b| {
        b.iter(|| {
            with_threads(2, || {
                parallel_for(CHUNKS, &|i| {
                    black_box(chunk_work(i));
                })
            })
        });
    });
    group.bench_function("thread_scope", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for i in 0..CHUNKS {
                    s.spawn(move || black_box(chunk_work(i)));
                }
            })
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = split_gemm, split_small, split_runner
}
criterion_main!(benches);
