//! conv2d at the digits model's sizes: batch 64 of 8×8 images, 16–32 channels, 3×3 and 5×5
//! kernels with "same" padding, and the inception model's 1×1 reductions (40 → 16). Forward
//! alone, and forward plus backward (input, weight and bias gradients), f32. No engine pool
//! is running here, so the kernels' chunks run one after another on the calling thread.
//!
//! `max_pool2d`: the inception model's two poolings, 3×3 stride 1 "same" over 40 channels
//! and 2×2 stride 2 over 80, forward alone and forward plus backward.

use backflow::Tensor;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

/// (input channels, output channels, kernel side).
const CASES: [(usize, usize, usize); 5] = [
    (1, 16, 3),
    (16, 32, 3),
    (16, 32, 5),
    (32, 32, 3),
    (40, 16, 1),
];

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv2d");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for (c_in, c_out, k) in CASES {
        let x = Tensor::<f32>::randn(&[64, c_in, 8, 8], 1);
        let w = Tensor::<f32>::randn(&[c_out, c_in, k, k], 2).requires_grad();
        let b = Tensor::<f32>::randn(&[c_out], 3).requires_grad();
        let id = format!("{c_in}to{c_out}_k{k}");
        // Multiply-adds of the forward: 64·8·8 outputs per channel, c_in·k² each.
        group.throughput(Throughput::Elements(
            (64 * 64 * c_out * c_in * k * k) as u64,
        ));
        group.bench_with_input(BenchmarkId::new("forward", &id), &(), |bench, _| {
            bench.iter(|| black_box(x.conv2d(&w, Some(&b), 1, k / 2, 1).unwrap()))
        });
        let xg = x.detach().requires_grad();
        group.bench_with_input(
            BenchmarkId::new("forward_backward", &id),
            &(),
            |bench, _| {
                bench.iter(|| {
                    let y = xg.conv2d(&w, Some(&b), 1, k / 2, 1).unwrap();
                    y.sum().backward().unwrap();
                    black_box(w.grad())
                })
            },
        );
    }
    group.finish();
}

fn bench_pool(c: &mut Criterion) {
    let mut group = c.benchmark_group("max_pool2d");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for (channels, k, stride, padding) in [(40, 3, 1, 1), (80, 2, 2, 0)] {
        let x = Tensor::<f32>::randn(&[64, channels, 8, 8], 4).requires_grad();
        let id = format!("c{channels}_k{k}_s{stride}");
        group.bench_with_input(BenchmarkId::new("forward", &id), &(), |bench, _| {
            bench.iter(|| black_box(x.max_pool2d(k, stride, padding).unwrap()))
        });
        group.bench_with_input(
            BenchmarkId::new("forward_backward", &id),
            &(),
            |bench, _| {
                bench.iter(|| {
                    x.max_pool2d(k, stride, padding)
                        .unwrap()
                        .sum()
                        .backward()
                        .unwrap();
                    black_box(x.grad())
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench, bench_pool);
criterion_main!(benches);
