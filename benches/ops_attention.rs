//! The attention model's elementwise and layout kernels at its sizes (batch 64 of 8 tokens,
//! `d_model` 64 in 8 heads of 8, MLP width 128), f32, kernels alone:
//! - `gelu_tanh` forward and backward over the MLP's `[512, 128]` activations;
//! - `permute` of the heads beside the batch, `[64, 8, 8, 8]` by `[0, 2, 1, 3]` (four a
//!   layer forward, four backward);
//! - `transpose` of the keys' last two axes, `[512, 8, 8]` (one a layer each way).
//!
//! No engine pool runs here, so a kernel large enough to split runs its chunks one after
//! another on the calling thread.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

fn values(len: usize, seed: usize) -> Vec<f32> {
    // Spread over about [-4, 4], as pre-activations are.
    (0..len)
        .map(|i| ((i * 7919 + seed * 104_729) % 1601) as f32 / 200.0 - 4.0)
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("attention_kernels");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let (x, gy) = (values(512 * 128, 1), values(512 * 128, 2));
    group.throughput(Throughput::Elements(x.len() as u64));
    group.bench_function("gelu_tanh/forward", |b| {
        b.iter(|| black_box(backflow_kernels::gelu_tanh(black_box(&x))))
    });
    group.bench_function("gelu_tanh/backward", |b| {
        b.iter(|| black_box(backflow_kernels::gelu_tanh_backward(black_box(&x), &gy)))
    });
    let heads = values(64 * 8 * 8 * 8, 3);
    group.throughput(Throughput::Elements(heads.len() as u64));
    group.bench_function("permute/heads", |b| {
        b.iter(|| {
            black_box(backflow_kernels::permute(
                black_box(&heads),
                &[64, 8, 8, 8],
                &[0, 2, 1, 3],
            ))
        })
    });
    group.bench_function("transpose/keys", |b| {
        b.iter(|| {
            black_box(backflow_kernels::transpose(
                black_box(&heads),
                &[512, 8, 8],
                1,
                2,
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
