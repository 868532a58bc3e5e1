//! `exp`, `tanh` and the sigmoid over W2's `[32,128]` and T1's `[64,64]` activations, f32:
//! std's scalar (libm) calls against the vectorisable kernels behind `Element::exp_vec` and
//! `Element::tanh_vec`, each writing a fresh `Vec` as the unary forward does.
//!
//! With `TRANSCENDENTAL_ROUNDS=N` set the two are timed alternately instead (N rounds) and
//! the medians and their ratio printed, as `gemm_sizes` does.

use backflow::Element;
use criterion::{BenchmarkId, Criterion};
use std::hint::black_box;
use std::time::Duration;

type Map = fn(&[f32]) -> Vec<f32>;

/// (op, std, vectorised)
const OPS: [(&str, Map, Map); 3] = [
    (
        "tanh",
        |x| x.iter().map(|v| v.tanh()).collect(),
        |x| x.iter().map(|v| v.tanh_vec()).collect(),
    ),
    (
        "exp",
        |x| x.iter().map(|v| v.exp()).collect(),
        |x| x.iter().map(|v| v.exp_vec()).collect(),
    ),
    (
        "sigmoid",
        |x| x.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect(),
        |x| x.iter().map(|v| 1.0 / (1.0 + (-v).exp_vec())).collect(),
    ),
];

const SHAPES: [(&str, usize); 2] = [("32x128", 32 * 128), ("64x64", 64 * 64)];

fn input(len: usize) -> Vec<f32> {
    // Pre-activations of the size a tanh layer sees: spread over about [-4, 4].
    (0..len)
        .map(|i| ((i * 7919) % 1601) as f32 / 200.0 - 4.0)
        .collect()
}

fn criterion_runs() {
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("transcendental");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (shape, len) in SHAPES {
        let x = input(len);
        for (op, std_map, vec_map) in OPS {
            for (name, f) in [("std", std_map), ("vec", vec_map)] {
                group.bench_function(BenchmarkId::new(format!("{op}_{shape}"), name), |b| {
                    b.iter(|| f(black_box(&x)))
                });
            }
        }
    }
    group.finish();
    c.final_summary();
}

fn interleaved(rounds: usize) {
    for (shape, len) in SHAPES {
        let x = input(len);
        for (op, std_map, vec_map) in OPS {
            let mut times = [Vec::new(), Vec::new()];
            for _ in 0..rounds {
                for (t, f) in times.iter_mut().zip([std_map, vec_map]) {
                    let start = std::time::Instant::now();
                    for _ in 0..200 {
                        black_box(f(black_box(&x)));
                    }
                    t.push(start.elapsed().as_secs_f64() * 1e6 / 200.0);
                }
            }
            let [s, v] = times.map(|mut t| {
                t.sort_by(f64::total_cmp);
                t[t.len() / 2]
            });
            println!(
                "{op:<8} {shape:<7} std {s:.2} us  vec {v:.2} us  ({:.2}x)",
                v / s
            );
        }
    }
}

fn main() {
    match std::env::var("TRANSCENDENTAL_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
    {
        Some(rounds) => interleaved(rounds),
        None => criterion_runs(),
    }
}
