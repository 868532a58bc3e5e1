//! GEMM at the sizes the workloads run, one thread: matrixmultiply, the `gemm` crate and
//! faer on each product of W2's layer (forward `h·W`, backward `gy·Wᵀ` and `hᵀ·gy`), of
//! T1's `Linear` layers, of attention's per-head scores and of the inception model's
//! convolutions (one tile of 4 images of 8×8, as `conv2d` multiplies them), in f32. Every
//! candidate reads the transposed operands through strides, as `matmul_backward` does, and
//! overwrites its output (`beta = 0`). Each product's rate is printed in GFLOP/s (criterion's
//! `Gelem/s`: one element is one flop) beside the machine's peak, printed first.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

/// One product `c (m×n) = a (m×k) · b (k×n)` with the operands' (row, column) strides.
struct Case {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    a_strides: (usize, usize),
    b_strides: (usize, usize),
}

const fn case(name: &'static str, m: usize, k: usize, n: usize, at: bool, bt: bool) -> Case {
    Case {
        name,
        m,
        k,
        n,
        // A transposed operand is stored row-major as its transpose.
        a_strides: if at { (1, m) } else { (k, 1) },
        b_strides: if bt { (1, k) } else { (n, 1) },
    }
}

/// W2's layer is `h·W`; T1's layers are `Linear`s, `x·Wᵀ` (`src/nn/linear.rs`), with
/// backward `gy·W` and `gyᵀ·x`. Hidden layers are 64×64, the head 1024 → 10, batch 64.
/// Attention's heads are 8 wide over 8 tokens (`q·kᵀ`, one batch entry). conv2d multiplies
/// `W·cols` (forward), `Wᵀ·gy` (input gradient) and `gy·colsᵀ` (weight gradient) per tile of
/// 4 images (256 output positions): 32→32 channels 3×3 (k = 288), and a 1×1 convolution of
/// 40→16 channels on one image (64 positions).
const CASES: [Case; 15] = [
    case("w2_fwd_32x128x128", 32, 128, 128, false, false),
    case("w2_ga_32x128x128_bT", 32, 128, 128, false, true),
    case("w2_gb_128x32x128_aT", 128, 32, 128, true, false),
    case("t1_fwd_64x64x64_bT", 64, 64, 64, false, true),
    case("t1_gx_64x64x64", 64, 64, 64, false, false),
    case("t1_gw_64x64x64_aT", 64, 64, 64, true, false),
    case("t1_head_64x1024x10_bT", 64, 1024, 10, false, true),
    case("t1_gx_64x10x1024", 64, 10, 1024, false, false),
    case("t1_gw_10x64x1024_aT", 10, 64, 1024, true, false),
    case("attn_scores_8x8x8", 8, 8, 8, false, false),
    case("conv3_fwd_32x288x256", 32, 288, 256, false, false),
    case("conv3_gx_288x32x256_aT", 288, 32, 256, true, false),
    case("conv3_gw_32x256x288_bT", 32, 256, 288, false, true),
    case("conv1_fwd_16x40x64", 16, 40, 64, false, false),
    case("conv1_gx_40x16x64_aT", 40, 16, 64, true, false),
];

/// The machine's peak f32 rate in GFLOP/s, one core and all: clock × f32 lanes per vector
/// (16 with AVX-512, 8 with AVX2, else 4) × 2 flops per FMA × 2 FMA units per core (an
/// assumption: true of recent x86 server cores), and the line that says how it was found.
/// The clock is the one `/proc/cpuinfo` reports, often the base clock: a core that boosts
/// above it can beat this figure.
fn peak() -> (f64, f64, String) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mhz = info
        .lines()
        .find(|l| l.starts_with("cpu MHz"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse::<f64>().ok());
    let flags = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let lanes = if has("avx512f") {
        16.0
    } else if has("avx2") && has("fma") {
        8.0
    } else {
        4.0
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let ghz = mhz.map_or(2.0, |m| m / 1000.0);
    let one = ghz * lanes * 2.0 * 2.0;
    let how = format!(
        "peak f32: {one:.0} GFLOP/s per core, {:.0} on {cores} cores ({ghz:.2} GHz{} × {lanes} lanes × 2 (FMA) × 2 FMA units, assumed; boost clocks can exceed it)",
        one * cores as f64,
        if mhz.is_some() { "" } else { " assumed" },
    );
    (one, one * cores as f64, how)
}

/// The flops of one product: `2·m·k·n`.
fn flops(c: &Case) -> usize {
    2 * c.m * c.k * c.n
}

fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32 / 500.0 - 1.0
        })
        .collect()
}

fn matrixmultiply(c: &Case, a: &[f32], b: &[f32], y: &mut [f32]) {
    let s = |x: usize| x as isize;
    // SAFETY: the strides address a dense m×k `a`, k×n `b` and m×n `y` (checked by the
    // agreement test in `bench`).
    unsafe {
        matrixmultiply::sgemm(
            c.m,
            c.k,
            c.n,
            1.0,
            a.as_ptr(),
            s(c.a_strides.0),
            s(c.a_strides.1),
            b.as_ptr(),
            s(c.b_strides.0),
            s(c.b_strides.1),
            0.0,
            y.as_mut_ptr(),
            s(c.n),
            1,
        )
    }
}

fn gemm_crate(c: &Case, a: &[f32], b: &[f32], y: &mut [f32]) {
    let s = |x: usize| x as isize;
    // SAFETY: as in `matrixmultiply`; `gemm` takes (column, row) strides and computes
    // dst = alpha·dst + beta·lhs·rhs, and with `read_dst` false ignores dst's old values.
    unsafe {
        gemm::gemm(
            c.m,
            c.n,
            c.k,
            y.as_mut_ptr(),
            1,
            s(c.n),
            false,
            a.as_ptr(),
            s(c.a_strides.1),
            s(c.a_strides.0),
            b.as_ptr(),
            s(c.b_strides.1),
            s(c.b_strides.0),
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// A dense `rows×cols` view of `data`, row-major or (with strides `(1, rows)`) transposed.
fn view(data: &[f32], rows: usize, cols: usize, (_, cs): (usize, usize)) -> faer::MatRef<'_, f32> {
    if cs == 1 {
        faer::MatRef::from_row_major_slice(&data[..rows * cols], rows, cols)
    } else {
        faer::MatRef::from_row_major_slice(&data[..rows * cols], cols, rows).transpose()
    }
}

fn faer(c: &Case, a: &[f32], b: &[f32], y: &mut [f32]) {
    use faer::MatMut;
    let a = view(a, c.m, c.k, c.a_strides);
    let b = view(b, c.k, c.n, c.b_strides);
    let y = MatMut::from_row_major_slice_mut(y, c.m, c.n);
    faer::linalg::matmul::matmul(y, faer::Accum::Replace, a, b, 1.0, faer::Par::Seq);
}

type Gemm = fn(&Case, &[f32], &[f32], &mut [f32]);
const CANDIDATES: [(&str, Gemm); 3] = [
    ("matrixmultiply", matrixmultiply),
    ("gemm", gemm_crate),
    ("faer", faer),
];

fn bench(cr: &mut Criterion) {
    let mut group = cr.benchmark_group("gemm_sizes");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for c in &CASES {
        let (a, b) = (values(c.m * c.k, 1), values(c.k * c.n, 2));
        let mut want = vec![0.0; c.m * c.n];
        matrixmultiply(c, &a, &b, &mut want);
        for (name, f) in CANDIDATES {
            let mut y = vec![f32::NAN; c.m * c.n];
            f(c, &a, &b, &mut y);
            let worst = y
                .iter()
                .zip(&want)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-3, "{name} disagrees on {} by {worst}", c.name);
            group.throughput(Throughput::Elements(flops(c) as u64));
            group.bench_function(BenchmarkId::new(c.name, name), |bch| {
                bch.iter(|| f(c, black_box(&a), black_box(&b), black_box(&mut y)))
            });
        }
    }
    group.finish();
}

/// With `GEMM_SIZES_ROUNDS=N` set, times the candidates alternately instead (N rounds, each
/// timing every candidate on a batch of calls in turn) and prints each one's median time per
/// call, its ratio to matrixmultiply's and its rate: on a shared machine the interleaving keeps the
/// comparison fair where criterion's one-after-the-other runs drift.
fn interleaved(rounds: usize) {
    for c in &CASES {
        let (a, b) = (values(c.m * c.k, 1), values(c.k * c.n, 2));
        let mut y = vec![0.0; c.m * c.n];
        let calls = (20_000_000 / (c.m * c.k * c.n)).max(1);
        let mut times = vec![Vec::with_capacity(rounds); CANDIDATES.len()];
        for _ in 0..rounds {
            for (t, (_, f)) in times.iter_mut().zip(CANDIDATES) {
                let start = std::time::Instant::now();
                for _ in 0..calls {
                    f(c, black_box(&a), black_box(&b), black_box(&mut y));
                }
                t.push(start.elapsed().as_secs_f64() * 1e6 / calls as f64);
            }
        }
        let medians: Vec<f64> = times
            .iter_mut()
            .map(|t| {
                t.sort_by(f64::total_cmp);
                t[t.len() / 2]
            })
            .collect();
        let line: Vec<String> = CANDIDATES
            .iter()
            .zip(&medians)
            .map(|((name, _), us)| {
                let gflops = flops(c) as f64 / us / 1e3;
                format!(
                    "{name} {us:.2} us ({:.2}x, {gflops:.1} GFLOP/s)",
                    us / medians[0]
                )
            })
            .collect();
        println!("{:<22} {}", c.name, line.join("  "));
    }
}

fn main() {
    let (one, _, how) = peak();
    println!("{how}; one thread runs each product here, so compare with {one:.0}");
    match std::env::var("GEMM_SIZES_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
    {
        Some(rounds) => interleaved(rounds),
        None => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}

criterion_group!(benches, bench);
