//! GELU, `x·Φ(x)`, beside its backward, in both of PyTorch's forms:
//! - exact (PyTorch's default): `gelu(x) = ½ x (1 + erf(x/√2))`;
//! - the tanh approximation (`approximate='tanh'`): `gelu_tanh(x) = ½ x (1 + tanh(u))` with
//!   `u = √(2/π) (x + 0.044715 x³)`.

use crate::par::Kind;
use crate::{split, Element};

/// Flops one element of a GELU kernel is taken to cost, for sizing its chunks.
const FLOPS: usize = 30;

/// `f(x)` for every element of `x`, split into chunks when large.
fn map<T: Element>(x: &[T], f: impl Fn(T) -> T + Sync) -> Vec<T> {
    let mut y = vec![T::zero(); x.len()];
    split::for_each_block(Kind::Elementwise, &mut y, FLOPS, &|start, part| {
        let x = &x[start..start + part.len()];
        part.iter_mut().zip(x).for_each(|(o, &v)| *o = f(v));
    });
    y
}

/// `f(x, gy)` for every pair of elements of `x` and `gy`, split into chunks when large.
fn map2<T: Element>(x: &[T], gy: &[T], f: impl Fn(T, T) -> T + Sync) -> Vec<T> {
    assert_eq!(x.len(), gy.len(), "gelu backward: x and gy lengths differ");
    let mut g = vec![T::zero(); x.len()];
    split::for_each_block(Kind::Elementwise, &mut g, FLOPS, &|start, part| {
        let end = start + part.len();
        let pairs = x[start..end].iter().zip(&gy[start..end]);
        part.iter_mut()
            .zip(pairs)
            .for_each(|(o, (&v, &g))| *o = f(v, g));
    });
    g
}

/// `√(2/π)`.
pub const GELU_SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of the tanh approximation.
pub const GELU_CUBIC: f64 = 0.044_715;
/// `1/√(2π)`, the standard normal density at 0.
pub const GELU_INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
/// Where the tanh approximation's derivative is taken at `±` this bound instead of `x`:
/// past it `tanh(u)` is ±1 exactly in f32 and f64 (`u > 3·10¹⁰`), so the derivative is the
/// same (1 or 0), and `x²` and `x³` stay finite where `(1 − tanh²u)·(1 + 3·0.044715·x²)`
/// would be `0·∞ = NaN`.
pub const GELU_TANH_SATURATED: f64 = 1e4;

/// `½ x (1 + erf(x/√2))`, elementwise: the exact GELU.
pub fn gelu<T: Element>(x: &[T]) -> Vec<T> {
    let (half, r) = (
        T::from_f64(0.5),
        T::from_f64(std::f64::consts::FRAC_1_SQRT_2),
    );
    map(x, |v| half * v * (T::one() + (v * r).erf()))
}

/// Gradient of [`gelu`] given the input `x` and upstream `gy`.
pub fn gelu_backward<T: Element>(x: &[T], gy: &[T]) -> Vec<T> {
    // d/dx x·Φ(x) = Φ(x) + x·φ(x), with Φ(x) = ½(1 + erf(x/√2)) and φ(x) = e^(-x²/2)/√(2π)
    let (half, r, c) = (
        T::from_f64(0.5),
        T::from_f64(std::f64::consts::FRAC_1_SQRT_2),
        T::from_f64(GELU_INV_SQRT_2PI),
    );
    map2(x, gy, |v, g| {
        let d = half * (T::one() + (v * r).erf()) + v * c * (-half * v * v).exp_vec();
        g * d
    })
}

#[inline(always)]
fn tanh_u<T: Element>(x: T) -> T {
    let (c, a) = (T::from_f64(GELU_SQRT_2_OVER_PI), T::from_f64(GELU_CUBIC));
    (c * (x + a * x * x * x)).tanh_vec()
}

/// `½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))`, elementwise: the tanh approximation.
pub fn gelu_tanh<T: Element>(x: &[T]) -> Vec<T> {
    let half = T::from_f64(0.5);
    map(x, |v| half * v * (T::one() + tanh_u(v)))
}

/// Gradient of [`gelu_tanh`] given the input `x` and upstream `gy`.
pub fn gelu_tanh_backward<T: Element>(x: &[T], gy: &[T]) -> Vec<T> {
    // With t = tanh(u): d/dx = ½(1 + t) + ½ x (1 - t²) √(2/π) (1 + 3·0.044715 x²)
    let (c, a3, half) = (
        T::from_f64(GELU_SQRT_2_OVER_PI),
        T::from_f64(3.0 * GELU_CUBIC),
        T::from_f64(0.5),
    );
    map2(x, gy, |v, g| {
        // the same derivative past the bound, without overflow (NaN stays NaN)
        let bound = T::from_f64(GELU_TANH_SATURATED);
        let v = if v > bound {
            bound
        } else if v < -bound {
            -bound
        } else {
            v
        };
        let t = tanh_u(v);
        let d = half * (T::one() + t) + half * v * (T::one() - t * t) * c * (T::one() + a3 * v * v);
        g * d
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, check_vjp, values};

    #[test]
    fn exact_known_values_and_backward() {
        // torch.nn.functional.gelu(torch.tensor([-3., -1., 0., 1., 3.], dtype=torch.float64))
        let y = gelu(&[-3.0f64, -1.0, 0.0, 1.0, 3.0]);
        let want = [
            -0.004_049_694_094_890_284,
            -0.158_655_253_931_457_05,
            0.0,
            0.841_344_746_068_542_9,
            2.995_950_305_905_11,
        ];
        assert_close(&y, &want, 1e-15);
        // d/dx gelu(1) = Φ(1) + φ(1)
        assert_close(
            &gelu_backward(&[1.0f64], &[1.0]),
            &[1.083_315_470_587_686_3],
            1e-15,
        );
        let (x, gy) = (
            values(10, 1).iter().map(|v| 3.0 * v).collect::<Vec<_>>(),
            values(10, 2),
        );
        check_vjp(gelu, &x, &gy, &gelu_backward(&x, &gy));
    }

    #[test]
    fn tanh_known_values_and_backward() {
        // torch.nn.functional.gelu(torch.tensor([-1., 0., 1., 3.]), approximate='tanh')
        let y = gelu_tanh(&[-1.0f64, 0.0, 1.0, 3.0]);
        assert_close(&y, &[-0.158_808, 0.0, 0.841_192, 2.996_363], 1e-6);
        let (x, gy) = (
            values(10, 1).iter().map(|v| 3.0 * v).collect::<Vec<_>>(),
            values(10, 2),
        );
        check_vjp(gelu_tanh, &x, &gy, &gelu_tanh_backward(&x, &gy));
    }

    #[test]
    fn split_keeps_its_bits() {
        let n = 8 * 4096 + 123;
        let x: Vec<f32> = values(n, 31).iter().map(|&v| 4.0 * v as f32).collect();
        let gy: Vec<f32> = values(n, 32).iter().map(|&v| v as f32).collect();
        let run = |chunks| {
            split::with_chunks(chunks, || {
                [
                    gelu(&x),
                    gelu_backward(&x, &gy),
                    gelu_tanh(&x),
                    gelu_tanh_backward(&x, &gy),
                ]
                .map(|v| split::bits(&v))
            })
        };
        let whole = run(1);
        for chunks in split::TEST_CHUNKS {
            assert!(run(chunks) == whole, "{chunks} chunks");
        }
    }

    #[test]
    fn f32_kernels_follow_the_f64_ones() {
        // The f32 kernels use the vectorisable tanh and exp: within a few ε of the f64 values.
        let x64: Vec<f64> = values(4000, 33).iter().map(|v| 8.0 * v).collect();
        let gy64 = vec![1.0f64; x64.len()];
        let x32: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
        let gy32 = vec![1.0f32; x32.len()];
        let pairs = [
            (gelu_tanh(&x32), gelu_tanh(&x64)),
            (
                gelu_tanh_backward(&x32, &gy32),
                gelu_tanh_backward(&x64, &gy64),
            ),
            (gelu_backward(&x32, &gy32), gelu_backward(&x64, &gy64)),
        ];
        for (got, want) in pairs {
            for ((&g, &w), &x) in got.iter().zip(&want).zip(&x64) {
                let tol = 8.0 * f32::EPSILON as f64 * (1.0 + w.abs().max(x.abs()));
                assert!((g as f64 - w).abs() <= tol, "at {x}: {g} against {w}");
            }
        }
    }
}
