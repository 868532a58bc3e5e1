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

/// `e^(-2u)` with `u = √(2/π) (x + 0.044715 x³)`: the tanh approximation written as a
/// logistic, `½ (1 + tanh u) = 1 / (1 + e^(-2u))`. One exponential instead of a tanh (whose
/// vectorisable form takes an `expm1` series and an exponential both), and no `1 + tanh u`
/// that cancels to nothing for negative `x`.
#[inline(always)]
fn exp_minus_2u<T: Element>(x: T) -> T {
    let (c, a) = (
        T::from_f64(-2.0 * GELU_SQRT_2_OVER_PI),
        T::from_f64(GELU_CUBIC),
    );
    (c * (x + a * x * x * x)).exp_vec()
}

/// `½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))`, elementwise: the tanh approximation,
/// computed as `x / (1 + e^(-2u))`.
pub fn gelu_tanh<T: Element>(x: &[T]) -> Vec<T> {
    map(x, |v| v / (T::one() + exp_minus_2u(v)))
}

/// Gradient of [`gelu_tanh`] given the input `x` and upstream `gy`.
pub fn gelu_tanh_backward<T: Element>(x: &[T], gy: &[T]) -> Vec<T> {
    // With t = tanh(u): d/dx = ½(1 + t) + ½ x (1 - t²) √(2/π) (1 + 3·0.044715 x²). With
    // s = ½(1 + t) = 1/(1 + e) and e = e^(-2u): ½(1 - t²) = 2 s (1 - s) and 1 - s = e·s, so
    // d/dx = s + 2 x s (e s) √(2/π) (1 + 3·0.044715 x²).
    let (c2, a3) = (
        T::from_f64(2.0 * GELU_SQRT_2_OVER_PI),
        T::from_f64(3.0 * GELU_CUBIC),
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
        let e = exp_minus_2u(v);
        let s = T::one() / (T::one() + e);
        // 1 - s; where e overflows s is 0 and 1 - s is 1 (e·s would be ∞·0).
        let rest = if s == T::zero() { T::one() } else { e * s };
        let d = s + c2 * v * s * rest * (T::one() + a3 * v * v);
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
    fn tanh_form_as_a_logistic_matches_its_closed_form() {
        // ½x(1 + tanh u) and ½(1 + t) + ½x(1 − t²)√(2/π)(1 + 3·0.044715x²), in f64, over
        // [-12, 12]: the logistic form gives the same values to rounding.
        let x: Vec<f64> = (-4800..=4800).map(|i| f64::from(i) / 400.0).collect();
        let gy = vec![1.0; x.len()];
        let (y, d) = (gelu_tanh(&x), gelu_tanh_backward(&x, &gy));
        for ((&v, &y), &d) in x.iter().zip(&y).zip(&d) {
            let t = (GELU_SQRT_2_OVER_PI * (v + GELU_CUBIC * v * v * v)).tanh();
            let want_y = 0.5 * v * (1.0 + t);
            let want_d = 0.5 * (1.0 + t)
                + 0.5 * v * (1.0 - t * t) * GELU_SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * v * v);
            let eps = f64::EPSILON;
            assert!(
                (y - want_y).abs() <= 8.0 * eps * (1.0 + v.abs()),
                "at {v}: {y} against {want_y}"
            );
            assert!(
                (d - want_d).abs() <= 64.0 * eps * (1.0 + v * v),
                "at {v}: {d} against {want_d}"
            );
        }
    }

    #[test]
    fn tanh_form_saturates_exactly_and_keeps_nan() {
        // Where e^(-2u) overflows or vanishes: gelu is x or 0, its derivative 1 or 0, exactly.
        for far in [12.0f32, 1e4, 1e6, 1e30, f32::MAX] {
            assert_eq!(gelu_tanh(&[far, -far]), [far, 0.0], "at ±{far}");
            assert_eq!(
                gelu_tanh_backward(&[far, -far], &[1.0, 1.0]),
                [1.0, 0.0],
                "at ±{far}"
            );
        }
        assert_eq!(gelu_tanh(&[f32::INFINITY]), [f32::INFINITY]);
        assert!(gelu_tanh(&[f32::NAN])[0].is_nan());
        assert!(gelu_tanh_backward(&[f32::NAN], &[1.0])[0].is_nan());
        assert!(gelu_tanh_backward(&[1.0f32], &[f32::NAN])[0].is_nan());
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
