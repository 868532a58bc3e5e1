//! Softmax and log-softmax along the last axis, each beside its backward.
//!
//! Each row of `cols` elements is shifted by its maximum before exponentiating, so large
//! logits cannot overflow (the shift cancels in the ratio). The exponentials are the
//! vectorisable ones of `transcendental.rs` for f32.

use crate::par::Kind;
use crate::reduce::lane_sum;
use crate::{split, Element};

/// Rows of `cols` elements; an empty tensor (or `cols == 0`) has none.
fn rows<'a, T>(x: &'a [T], cols: usize, op: &str) -> std::slice::ChunksExact<'a, T> {
    assert!(
        x.is_empty() || (cols > 0 && x.len() % cols == 0),
        "{op}: length {} is not a multiple of {cols}",
        x.len()
    );
    x.chunks_exact(cols.max(1))
}

/// Largest element of a non-empty row.
fn row_max<T: Element>(row: &[T]) -> T {
    row.iter().copied().fold(T::neg_infinity(), T::max)
}

/// Fills a result of `len` elements row by row: `f(row, out)` writes row `row` of `cols`
/// elements into `out`. Rows are independent, so large inputs split into chunks of rows.
fn map_rows<T: Element>(len: usize, cols: usize, f: impl Fn(usize, &mut [T]) + Sync) -> Vec<T> {
    let cols = cols.max(1);
    let mut y = vec![T::zero(); len];
    // About a dozen flops per element (an exponential among them).
    split::for_each_rows(
        Kind::Elementwise,
        &mut y,
        cols,
        12 * cols,
        &|first, part| {
            for (k, out) in part.chunks_exact_mut(cols).enumerate() {
                f(first + k, out);
            }
        },
    );
    y
}

/// Fills a result of the first `len` elements of `x`, a block of whole rows of `cols` (at
/// least 1) at a time: `f(x_block, y_block)` with `y_block` holding a copy of `x_block` on
/// entry. Large inputs split into chunks of rows.
fn map_row_blocks<T: Element>(
    x: &[T],
    len: usize,
    cols: usize,
    f: impl Fn(&[T], &mut [T]) + Sync,
) -> Vec<T> {
    let mut y = x[..len].to_vec();
    // About a dozen flops per element (an exponential among them).
    split::for_each_rows(
        Kind::Elementwise,
        &mut y,
        cols,
        12 * cols,
        &|first, part| {
            f(&x[first * cols..first * cols + part.len()], part);
        },
    );
    y
}

/// Softmax of each row of `cols` elements: `y_i = e^(x_i - m) / Σ_j e^(x_j - m)` with `m` the
/// row maximum.
///
/// Precondition: `x.len()` is a multiple of `cols`.
pub fn softmax<T: Element>(x: &[T], cols: usize) -> Vec<T> {
    let n = rows(x, cols, "softmax").len() * cols;
    let cols = cols.max(1);
    map_row_blocks(x, n, cols, |_, y| {
        exp_shifted(y, cols);
        for row in y.chunks_exact_mut(cols) {
            let total = lane_sum(row, |v| v);
            row.iter_mut().for_each(|v| *v = *v / total);
        }
    })
}

/// Each row of `cols` elements of `y` shifted by its maximum, then every element
/// exponentiated in one pass over the block (a loop that vectorises whatever the row
/// length).
fn exp_shifted<T: Element>(y: &mut [T], cols: usize) {
    for row in y.chunks_exact_mut(cols) {
        let m = row_max(row);
        row.iter_mut().for_each(|v| *v = *v - m);
    }
    y.iter_mut().for_each(|v| *v = v.exp_vec());
}

/// Gradient of [`softmax`] from its saved output `y` and the upstream `gy`.
///
/// Precondition: `y.len() == gy.len()`, a multiple of `cols`.
pub fn softmax_backward<T: Element>(y: &[T], gy: &[T], cols: usize) -> Vec<T> {
    // ∂y_j/∂x_i = y_j(δ_ij - y_i), so dx_i = Σ_j gy_j y_j(δ_ij - y_i) = y_i(gy_i - Σ_j gy_j y_j).
    assert_eq!(
        y.len(),
        gy.len(),
        "softmax_backward: y and gy lengths differ"
    );
    let n = rows(y, cols, "softmax_backward").len() * cols;
    map_rows(n, cols, |r, gx| {
        let (yr, gr) = (&y[r * cols..(r + 1) * cols], &gy[r * cols..(r + 1) * cols]);
        let dot = yr
            .iter()
            .zip(gr)
            .fold(T::zero(), |acc, (&a, &g)| acc + a * g);
        gx.iter_mut()
            .zip(yr.iter().zip(gr))
            .for_each(|(o, (&a, &g))| *o = a * (g - dot));
    })
}

/// Log-softmax of each row of `cols` elements: `x_i - m - ln Σ_j e^(x_j - m)` with `m` the
/// row maximum.
///
/// Precondition: `x.len()` is a multiple of `cols`.
pub fn log_softmax<T: Element>(x: &[T], cols: usize) -> Vec<T> {
    let n = rows(x, cols, "log_softmax").len() * cols;
    let cols = cols.max(1);
    map_row_blocks(x, n, cols, |x, y| {
        exp_shifted(y, cols);
        for (row, out) in x.chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
            let (m, lse) = (row_max(row), lane_sum(out, |v| v).ln());
            out.iter_mut().zip(row).for_each(|(o, &v)| *o = v - m - lse);
        }
    })
}

/// Gradient of [`log_softmax`] from its saved output `y` and the upstream `gy`.
///
/// Precondition: `y.len() == gy.len()`, a multiple of `cols`.
pub fn log_softmax_backward<T: Element>(y: &[T], gy: &[T], cols: usize) -> Vec<T> {
    // ∂y_j/∂x_i = δ_ij - softmax_i = δ_ij - e^(y_i), so dx_i = gy_i - e^(y_i) Σ_j gy_j.
    assert_eq!(
        y.len(),
        gy.len(),
        "log_softmax_backward: y and gy lengths differ"
    );
    let n = rows(y, cols, "log_softmax_backward").len() * cols;
    map_rows(n, cols, |r, gx| {
        let (yr, gr) = (&y[r * cols..(r + 1) * cols], &gy[r * cols..(r + 1) * cols]);
        let total = gr.iter().fold(T::zero(), |acc, &g| acc + g);
        gx.iter_mut()
            .zip(yr.iter().zip(gr))
            .for_each(|(o, (&a, &g))| *o = g - a.exp_vec() * total);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, check_vjp, values};

    #[test]
    fn backwards_match_finite_differences() {
        let (x, gy) = (values(12, 1), values(12, 2));
        for cols in [1, 3, 4, 12] {
            let gx = softmax_backward(&softmax(&x, cols), &gy, cols);
            check_vjp(|x| softmax(x, cols), &x, &gy, &gx);
            let gx = log_softmax_backward(&log_softmax(&x, cols), &gy, cols);
            check_vjp(|x| log_softmax(x, cols), &x, &gy, &gx);
        }
    }

    #[test]
    fn rows_sum_to_one() {
        let y = softmax(&values(12, 3), 4);
        for row in y.chunks(4) {
            assert_close(&[row.iter().sum()], &[1.0], 1e-12);
        }
    }

    #[test]
    fn large_logits_stay_finite() {
        // Shifting by the row max: softmax(1000, 1000, 999) = softmax(0, 0, -1).
        let x = [1000.0f32, 1000.0, 999.0, -1000.0, -1000.0, -1001.0];
        let e = (-1.0f64).exp();
        let expect = [1.0 / (2.0 + e), 1.0 / (2.0 + e), e / (2.0 + e)];
        for row in softmax(&x, 3).chunks(3) {
            let row: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            assert_close(&row, &expect, 1e-6);
        }
        let ls = log_softmax(&x, 3);
        assert!(ls.iter().all(|v| v.is_finite()));
        assert_close(&[f64::from(ls[2])], &[expect[2].ln()], 1e-6);
        let gx = log_softmax_backward(&ls, &[1.0; 6], 3);
        assert!(gx.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn split_rows_keep_their_bits() {
        let (cols, n) = (37, 37 * 41);
        let (x, gy) = (values(n, 4), values(n, 5));
        let run = |chunks| {
            split::with_chunks(chunks, || {
                let (y, ly) = (softmax(&x, cols), log_softmax(&x, cols));
                let g = softmax_backward(&y, &gy, cols);
                let lg = log_softmax_backward(&ly, &gy, cols);
                [y, ly, g, lg].map(|v| split::bits(&v))
            })
        };
        let whole = run(1);
        for chunks in split::TEST_CHUNKS {
            assert_eq!(run(chunks), whole, "{chunks} chunks");
        }
    }

    #[test]
    fn empty_input() {
        assert!(softmax::<f32>(&[], 0).is_empty());
        assert!(log_softmax::<f64>(&[], 5).is_empty());
    }
}
