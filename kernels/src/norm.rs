//! Layer normalisation over rows of `d` trailing elements, beside its backward.
//!
//! Per row: `μ = mean(x)`, `σ² = mean((x - μ)²)` (biased, as PyTorch), `x̂ = (x - μ)/√(σ² + ε)`,
//! `y = x̂ ⊙ w + b`. The forward keeps `x̂` and `1/√(σ² + ε)` for the backward. Row sums
//! (the means) run in 8 lanes added as a fixed tree, so they vectorise and their order
//! depends on the row length alone.

use crate::par::Kind;
use crate::reduce::{lane_sum, lane_sum2};
use crate::{split, Element};

/// What the forward of [`layer_norm`] saves for its backward.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerNormSaved<T> {
    /// `x̂`, the normalised input, of the input's length.
    pub x_hat: Vec<T>,
    /// `1/√(σ² + ε)`, one per row.
    pub rstd: Vec<T>,
}

/// Layer norm of each row of `d` elements of `x`, scaled by `weight` and shifted by `bias`
/// (each of `d` elements) when given. Returns the output and what the backward needs.
///
/// Precondition: `d > 0`, `x.len()` a multiple of `d`, `weight` and `bias` of length `d`.
pub fn layer_norm<T: Element>(
    x: &[T],
    d: usize,
    weight: Option<&[T]>,
    bias: Option<&[T]>,
    eps: T,
) -> (Vec<T>, LayerNormSaved<T>) {
    assert!(
        d > 0 && x.len() % d == 0,
        "layer_norm: length {} is not rows of {d}",
        x.len()
    );
    let n = T::from_f64(d as f64);
    let rows = x.len() / d;
    let (mut y, mut x_hat, mut rstd) = (
        vec![T::zero(); x.len()],
        vec![T::zero(); x.len()],
        vec![T::zero(); rows],
    );
    // Rows are independent: large inputs split into chunks of rows.
    let parts: Vec<_> = y
        .chunks_exact_mut(d)
        .zip(x_hat.chunks_exact_mut(d))
        .zip(rstd.iter_mut())
        .collect();
    let chunks = split::chunks_for(Kind::Elementwise, rows, rows.saturating_mul(8 * d));
    split::for_each_part(parts, chunks, &|i, ((y, x_hat), rstd)| {
        let row = &x[i * d..(i + 1) * d];
        let mean = lane_sum(row, |v| v) / n;
        let var = lane_sum(row, |v| (v - mean) * (v - mean)) / n;
        let r = T::one() / (var + eps).sqrt();
        **rstd = r;
        x_hat
            .iter_mut()
            .zip(row)
            .for_each(|(h, &v)| *h = (v - mean) * r);
        y.copy_from_slice(x_hat);
        if let Some(w) = weight {
            y.iter_mut().zip(w).for_each(|(v, &w)| *v = *v * w);
        }
        if let Some(b) = bias {
            y.iter_mut().zip(b).for_each(|(v, &b)| *v = *v + b);
        }
    });
    (y, LayerNormSaved { x_hat, rstd })
}

/// Gradients of [`layer_norm`] with respect to the input, the weight and the bias (the last
/// two summed over rows; each only if asked for), from the saved values and upstream `gy`.
///
/// Precondition: as [`layer_norm`], and `gy.len() == saved.x_hat.len()`.
#[allow(clippy::type_complexity)]
pub fn layer_norm_backward<T: Element>(
    saved: &LayerNormSaved<T>,
    gy: &[T],
    d: usize,
    weight: Option<&[T]>,
    (need_x, need_w, need_b): (bool, bool, bool),
) -> (Option<Vec<T>>, Option<Vec<T>>, Option<Vec<T>>) {
    // With g = gy ⊙ w (the gradient reaching x̂) and x̂ = (x - μ)·r:
    // ∂L/∂x = r · (g - mean(g) - x̂ ⊙ mean(g ⊙ x̂)), ∂L/∂w = Σ_rows gy ⊙ x̂, ∂L/∂b = Σ_rows gy.
    let n = T::from_f64(d as f64);
    let rows = || saved.x_hat.chunks_exact(d).zip(gy.chunks_exact(d));
    let gx = need_x.then(|| {
        // Rows are independent: large inputs split into chunks of rows.
        let mut gx = vec![T::zero(); gy.len()];
        split::for_each_rows(Kind::Elementwise, &mut gx, d, 8 * d, &|first, part| {
            let mut g = vec![T::zero(); d];
            for (k, out) in part.chunks_exact_mut(d).enumerate() {
                let row = first + k;
                let (xh, r) = (&saved.x_hat[row * d..(row + 1) * d], saved.rstd[row]);
                g.copy_from_slice(&gy[row * d..(row + 1) * d]);
                if let Some(w) = weight {
                    g.iter_mut().zip(w).for_each(|(g, &w)| *g = *g * w);
                }
                let mean_g = lane_sum(&g, |v| v) / n;
                let mean_gx = lane_sum2(&g, xh, |a, b| a * b) / n;
                out.iter_mut()
                    .zip(g.iter().zip(xh))
                    .for_each(|(o, (&g, &xh))| *o = r * (g - mean_g - xh * mean_gx));
            }
        });
        gx
    });
    let gw = need_w.then(|| {
        let mut gw = vec![T::zero(); d];
        for (xh, gr) in rows() {
            for ((acc, &a), &b) in gw.iter_mut().zip(xh).zip(gr) {
                *acc = *acc + a * b;
            }
        }
        gw
    });
    let gb = need_b.then(|| {
        let mut gb = vec![T::zero(); d];
        for gr in gy.chunks_exact(d) {
            gb.iter_mut().zip(gr).for_each(|(acc, &g)| *acc = *acc + g);
        }
        gb
    });
    (gx, gw, gb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, check_vjp, values};

    #[test]
    fn rows_are_normalised() {
        let (y, _) = layer_norm(&[1.0f64, 2.0, 3.0, 4.0, 4.0, 4.0], 3, None, None, 0.0);
        let s = (2.0f64 / 3.0).sqrt();
        assert_close(&y[..3], &[-1.0 / s, 0.0, 1.0 / s], 1e-12);
        assert!(y[3..].iter().all(|v| v.is_nan())); // constant row, ε = 0
    }

    #[test]
    fn split_forward_and_input_gradient_keep_their_bits() {
        let (d, n) = (33, 33 * 40);
        let (x, w, b, gy) = (values(n, 5), values(d, 6), values(d, 8), values(n, 7));
        let run = |chunks| {
            split::with_chunks(chunks, || {
                let (y, saved) = layer_norm(&x, d, Some(&w), Some(&b), 1e-5);
                let (gx, _, _) =
                    layer_norm_backward(&saved, &gy, d, Some(&w), (true, false, false));
                [y, saved.x_hat, saved.rstd, gx.unwrap()].map(|v| split::bits(&v))
            })
        };
        let whole = run(1);
        for chunks in split::TEST_CHUNKS {
            assert_eq!(run(chunks), whole, "{chunks} chunks");
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        let (x, w, b, gy) = (values(12, 1), values(4, 2), values(4, 3), values(12, 4));
        let f = |x: &[f64], w: &[f64], b: &[f64]| layer_norm(x, 4, Some(w), Some(b), 1e-5).0;
        let (_, saved) = layer_norm(&x, 4, Some(&w), Some(&b), 1e-5);
        let (gx, gw, gb) = layer_norm_backward(&saved, &gy, 4, Some(&w), (true, true, true));
        check_vjp(|x| f(x, &w, &b), &x, &gy, &gx.unwrap());
        check_vjp(|w| f(&x, w, &b), &w, &gy, &gw.unwrap());
        check_vjp(|b| f(&x, &w, b), &b, &gy, &gb.unwrap());
    }
}
