//! Kernels along one axis of a row-major tensor: softmax and log-softmax, and the extremum
//! (max or min with its index), each beside its backward.
//!
//! A tensor of shape `[.., len, ..]` is viewed as `outer × len × inner`. Each lane (`len`
//! elements `inner` apart) is processed as whole rows of `inner` elements, so the inner loop
//! runs over contiguous memory; with `inner == 1` softmax uses the last-axis kernels.

use crate::shape::numel;
use crate::softmax::{log_softmax, log_softmax_backward, softmax, softmax_backward};
use crate::Element;

/// Splits `shape` around `axis` into (elements before it, its size, elements after it).
///
/// Precondition: `axis < shape.len()`.
pub fn axis_lanes(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    assert!(axis < shape.len(), "axis {axis} out of range for {shape:?}");
    (
        numel(&shape[..axis]),
        shape[axis],
        numel(&shape[axis + 1..]),
    )
}

/// Calls `f(block)` for each `len × inner` block of `x`.
fn blocks<T>(x: &[T], len: usize, inner: usize) -> std::slice::ChunksExact<'_, T> {
    x.chunks_exact((len * inner).max(1))
}

/// Softmax of `x` (shape `shape`) along `axis`, shifted by each lane's maximum.
///
/// Precondition: `axis < shape.len()` and `x.len() == numel(shape)`.
pub fn softmax_axis<T: Element>(x: &[T], shape: &[usize], axis: usize) -> Vec<T> {
    let (_, len, inner) = axis_lanes(shape, axis);
    if inner == 1 {
        return softmax(x, len);
    }
    lanes_exp_normalised(x, len, inner, false)
}

/// Log-softmax of `x` (shape `shape`) along `axis`, shifted by each lane's maximum.
///
/// Precondition: as [`softmax_axis`].
pub fn log_softmax_axis<T: Element>(x: &[T], shape: &[usize], axis: usize) -> Vec<T> {
    let (_, len, inner) = axis_lanes(shape, axis);
    if inner == 1 {
        return log_softmax(x, len);
    }
    lanes_exp_normalised(x, len, inner, true)
}

/// `e^(x - m) / Σ e^(x - m)` (or its logarithm `x - m - ln Σ e^(x - m)`) per lane.
fn lanes_exp_normalised<T: Element>(x: &[T], len: usize, inner: usize, log: bool) -> Vec<T> {
    let mut y = Vec::with_capacity(x.len());
    let (mut m, mut s) = (vec![T::zero(); inner], vec![T::zero(); inner]);
    for block in blocks(x, len, inner) {
        m.iter_mut().for_each(|v| *v = T::neg_infinity());
        s.iter_mut().for_each(|v| *v = T::zero());
        for row in block.chunks_exact(inner) {
            m.iter_mut().zip(row).for_each(|(m, &v)| *m = m.max(v));
        }
        for row in block.chunks_exact(inner) {
            for ((s, &m), &v) in s.iter_mut().zip(&m).zip(row) {
                *s = *s + (v - m).exp_vec();
            }
        }
        if log {
            s.iter_mut().for_each(|v| *v = v.ln());
        }
        for row in block.chunks_exact(inner) {
            y.extend(row.iter().zip(&m).zip(&s).map(|((&v, &m), &s)| {
                if log {
                    v - m - s
                } else {
                    (v - m).exp_vec() / s
                }
            }));
        }
    }
    y
}

/// Gradient of [`softmax_axis`] from its saved output `y` and the upstream `gy`.
///
/// Precondition: `y.len() == gy.len() == numel(shape)`, `axis < shape.len()`.
pub fn softmax_axis_backward<T: Element>(
    y: &[T],
    gy: &[T],
    shape: &[usize],
    axis: usize,
) -> Vec<T> {
    // gx = y ⊙ (gy - Σ_lane gy ⊙ y), as in the last-axis kernel.
    let (_, len, inner) = axis_lanes(shape, axis);
    if inner == 1 {
        return softmax_backward(y, gy, len);
    }
    lanes_backward(
        y,
        gy,
        len,
        inner,
        |yv, g, dot| yv * (g - dot),
        |yv, g| yv * g,
    )
}

/// Gradient of [`log_softmax_axis`] from its saved output `y` and the upstream `gy`.
///
/// Precondition: as [`softmax_axis_backward`].
pub fn log_softmax_axis_backward<T: Element>(
    y: &[T],
    gy: &[T],
    shape: &[usize],
    axis: usize,
) -> Vec<T> {
    // gx = gy - e^y ⊙ Σ_lane gy, as in the last-axis kernel.
    let (_, len, inner) = axis_lanes(shape, axis);
    if inner == 1 {
        return log_softmax_backward(y, gy, len);
    }
    lanes_backward(
        y,
        gy,
        len,
        inner,
        |yv, g, total| g - yv.exp_vec() * total,
        |_, g| g,
    )
}

/// `gx = combine(y, gy, Σ_lane reduce(y, gy))` per lane.
fn lanes_backward<T: Element>(
    y: &[T],
    gy: &[T],
    len: usize,
    inner: usize,
    combine: impl Fn(T, T, T) -> T,
    reduce: impl Fn(T, T) -> T,
) -> Vec<T> {
    assert_eq!(
        y.len(),
        gy.len(),
        "softmax backward: y and gy lengths differ"
    );
    let mut gx = Vec::with_capacity(y.len());
    let mut acc = vec![T::zero(); inner];
    for (yb, gb) in blocks(y, len, inner).zip(blocks(gy, len, inner)) {
        acc.iter_mut().for_each(|v| *v = T::zero());
        for (yr, gr) in yb.chunks_exact(inner).zip(gb.chunks_exact(inner)) {
            for ((a, &yv), &g) in acc.iter_mut().zip(yr).zip(gr) {
                *a = *a + reduce(yv, g);
            }
        }
        for (yr, gr) in yb.chunks_exact(inner).zip(gb.chunks_exact(inner)) {
            gx.extend(
                yr.iter()
                    .zip(gr)
                    .zip(&acc)
                    .map(|((&yv, &g), &a)| combine(yv, g, a)),
            );
        }
    }
    gx
}

/// The maximum (`max == true`) or minimum of each lane of `x` along `axis`, and the index
/// along `axis` of its first occurrence; a NaN counts as the extremum, as in PyTorch. Both
/// results have `shape` without `axis`.
///
/// Precondition: `shape[axis] > 0` and `x.len() == numel(shape)`.
pub fn extremum_axis<T: Element>(
    x: &[T],
    shape: &[usize],
    axis: usize,
    max: bool,
) -> (Vec<T>, Vec<usize>) {
    let (outer, len, inner) = axis_lanes(shape, axis);
    assert!(len > 0, "extremum along the empty axis {axis} of {shape:?}");
    let mut values = Vec::with_capacity(outer * inner);
    let mut index = Vec::with_capacity(outer * inner);
    for block in blocks(x, len, inner) {
        let start = values.len();
        values.extend_from_slice(&block[..inner]);
        index.resize(start + inner, 0);
        for (j, row) in block.chunks_exact(inner).enumerate().skip(1) {
            let (best, at) = (&mut values[start..], &mut index[start..]);
            for ((b, a), &v) in best.iter_mut().zip(at).zip(row) {
                // Strict comparison keeps the first extremum; a NaN replaces a number.
                let better = if max { v > *b } else { v < *b };
                if better || (v.is_nan() && !b.is_nan()) {
                    *b = v;
                    *a = j;
                }
            }
        }
    }
    (values, index)
}

/// Gradient of [`extremum_axis`]: each lane's upstream gradient goes to the element at its
/// index, the others get 0 (`∂ max(x)/∂x_j = 1` at the chosen `j`, 0 elsewhere).
///
/// Precondition: `gy.len() == index.len()`, the lane count of `shape` without `axis`.
pub fn extremum_axis_backward<T: Element>(
    gy: &[T],
    index: &[usize],
    shape: &[usize],
    axis: usize,
) -> Vec<T> {
    let (_, len, inner) = axis_lanes(shape, axis);
    let mut gx = vec![T::zero(); numel(shape)];
    if inner == 0 {
        return gx;
    }
    for (lane, (&g, &j)) in gy.iter().zip(index).enumerate() {
        let (o, i) = (lane / inner, lane % inner);
        gx[(o * len + j) * inner + i] = g;
    }
    gx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, check_vjp, values};
    use crate::transpose;

    #[test]
    fn softmax_along_a_middle_axis_equals_the_last_axis_of_the_transpose() {
        let shape = [2, 3, 4];
        let x = values(24, 1);
        let xt = transpose(&x, &shape, 1, 2);
        let want = transpose(&softmax(&xt, 3), &[2, 4, 3], 1, 2);
        assert_close(&softmax_axis(&x, &shape, 1), &want, 1e-12);
        let want = transpose(&log_softmax(&xt, 3), &[2, 4, 3], 1, 2);
        assert_close(&log_softmax_axis(&x, &shape, 1), &want, 1e-12);
    }

    #[test]
    fn backwards_match_finite_differences() {
        let shape = [2, 3, 4];
        let (x, gy) = (values(24, 2), values(24, 3));
        for axis in 0..3 {
            let y = softmax_axis(&x, &shape, axis);
            let gx = softmax_axis_backward(&y, &gy, &shape, axis);
            check_vjp(|x| softmax_axis(x, &shape, axis), &x, &gy, &gx);
            let y = log_softmax_axis(&x, &shape, axis);
            let gx = log_softmax_axis_backward(&y, &gy, &shape, axis);
            check_vjp(|x| log_softmax_axis(x, &shape, axis), &x, &gy, &gx);
            let (_, index) = extremum_axis(&x, &shape, axis, true);
            let gm = values(24 / shape[axis], 4);
            let gx = extremum_axis_backward(&gm, &index, &shape, axis);
            check_vjp(|x| extremum_axis(x, &shape, axis, true).0, &x, &gm, &gx);
        }
    }

    #[test]
    fn extremum_takes_the_first_and_lets_nan_win() {
        let x = [1.0f64, 3.0, 3.0, 0.0, -1.0, -1.0];
        assert_eq!(
            extremum_axis(&x, &[2, 3], 1, true),
            (vec![3.0, 0.0], vec![1, 0])
        );
        assert_eq!(
            extremum_axis(&x, &[2, 3], 1, false),
            (vec![1.0, -1.0], vec![0, 1])
        );
        let (v, i) = extremum_axis(&[1.0f64, f64::NAN, 5.0], &[3], 0, true);
        assert!(v[0].is_nan() && i == vec![1]);
    }
}
