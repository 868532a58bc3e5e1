//! Shapes, row-major strides and NumPy broadcasting.
//!
//! Broadcasting aligns shapes from the right; a dimension of size 1 (or a missing leading
//! one) stretches to match the other. A broadcast input is read through strides that are zero
//! on its stretched dimensions, so no index vectors are built per element.

use crate::Element;

/// Number of elements of `shape`; the empty shape is a scalar with one element.
///
/// # Panics
///
/// If the product overflows `usize` (see [`checked_numel`] for the fallible form). A shape
/// with a zero dimension has zero elements, whatever its other dimensions.
///
/// ```
/// assert_eq!(backflow_kernels::numel(&[2, 3]), 6);
/// assert_eq!(backflow_kernels::numel(&[usize::MAX, 2, 0]), 0);
/// ```
#[track_caller]
#[inline]
pub fn numel(shape: &[usize]) -> usize {
    checked_numel(shape)
        .unwrap_or_else(|| panic!("shape {shape:?} has more elements than usize can count"))
}

/// Number of elements of `shape`, or `None` when the product overflows `usize`. A shape with
/// a zero dimension has zero elements, whatever its other dimensions.
///
/// ```
/// use backflow_kernels::checked_numel;
/// assert_eq!(checked_numel(&[]), Some(1));
/// assert_eq!(checked_numel(&[1 << 32, 1 << 32]), None);
/// assert_eq!(checked_numel(&[1 << 32, 1 << 32, 0]), Some(0));
/// ```
#[inline]
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    match shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) {
        Some(n) => Some(n),
        // The product overflowed before reaching a zero dimension: the count is still 0.
        None if shape.contains(&0) => Some(0),
        None => None,
    }
}

/// Row-major strides (in elements) of a contiguous tensor of `shape`.
///
/// Strides never overflow where they can be used: they are at most the element count of a
/// shape whose element count fits `usize`. For a shape with zero elements they saturate
/// (no index reaches them).
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut out = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        out[d] = out[d + 1].saturating_mul(shape[d + 1]);
    }
    out
}

/// The shape both `a` and `b` broadcast to under NumPy rules, or `None` if they are
/// incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        if i + s.len() < rank {
            1
        } else {
            s[i + s.len() - rank]
        }
    };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// Strides that read a contiguous tensor of shape `from` as if it had shape `to`: one per
/// dimension of `to`, zero where `from` is stretched.
///
/// Panics if `from` does not broadcast to `to`.
pub(crate) fn broadcast_strides(from: &[usize], to: &[usize]) -> Vec<usize> {
    assert!(
        from.len() <= to.len(),
        "broadcast: shape {from:?} has more dimensions than {to:?}"
    );
    let lead = to.len() - from.len();
    let own = strides(from);
    let mut out = vec![0; to.len()];
    for (i, (&f, &s)) in from.iter().zip(&own).enumerate() {
        assert!(
            f == to[lead + i] || f == 1,
            "broadcast: shape {from:?} does not broadcast to {to:?}"
        );
        out[lead + i] = if f == 1 { 0 } else { s };
    }
    out
}

/// Visits every index of `shape` in row-major order, calling `f` with the flat index and,
/// for each of the `N` stride vectors (one entry per dimension of `shape`), the offset that
/// index maps to.
pub(crate) fn walk<const N: usize>(
    shape: &[usize],
    strides: [&[usize]; N],
    mut f: impl FnMut(usize, [usize; N]),
) {
    let rank = shape.len();
    if numel(shape) == 0 {
        return;
    }
    if rank == 0 {
        f(0, [0; N]);
        return;
    }
    let inner = shape[rank - 1];
    let inner_strides: [usize; N] = std::array::from_fn(|s| strides[s][rank - 1]);
    // Odometer over the outer dimensions; `base` holds each view's offset of index[..] + 0.
    let mut index = vec![0; rank - 1];
    let mut base = [0; N];
    let mut flat = 0;
    loop {
        for j in 0..inner {
            f(
                flat,
                std::array::from_fn(|s| base[s] + j * inner_strides[s]),
            );
            flat += 1;
        }
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            for s in 0..N {
                base[s] += strides[s][d];
            }
            if index[d] < shape[d] {
                break;
            }
            for s in 0..N {
                base[s] -= strides[s][d] * shape[d];
            }
            index[d] = 0;
        }
    }
}

/// Materialises `x` (shape `from`) broadcast to shape `to`.
///
/// Precondition: `from` broadcasts to `to` and `x.len() == numel(from)`.
pub fn broadcast_to<T: Element>(x: &[T], from: &[usize], to: &[usize]) -> Vec<T> {
    assert_eq!(
        x.len(),
        numel(from),
        "broadcast_to: data does not match {from:?}"
    );
    if from == to {
        return x.to_vec();
    }
    let bs = broadcast_strides(from, to);
    let mut out = Vec::with_capacity(numel(to));
    walk(to, [&bs], |_, [o]| out.push(x[o]));
    out
}

/// Sums `g` (shape `from`) over the dimensions that broadcasting stretched, giving shape
/// `to`: the adjoint of [`broadcast_to`].
///
/// Elements are accumulated in row-major order of `from`, so the result is deterministic.
/// Precondition: `to` broadcasts to `from` and `g.len() == numel(from)`.
pub fn reduce_to<T: Element>(g: &[T], from: &[usize], to: &[usize]) -> Vec<T> {
    if from == to {
        assert_eq!(
            g.len(),
            numel(from),
            "reduce_to: data does not match {from:?}"
        );
        return g.to_vec();
    }
    reduce_strided(g, from, to)
}

/// [`reduce_to`] that hands `g` back without copying when no dimension was broadcast.
pub(crate) fn reduce_owned<T: Element>(g: Vec<T>, from: &[usize], to: &[usize]) -> Vec<T> {
    if from == to {
        return g;
    }
    reduce_strided(&g, from, to)
}

fn reduce_strided<T: Element>(g: &[T], from: &[usize], to: &[usize]) -> Vec<T> {
    assert_eq!(
        g.len(),
        numel(from),
        "reduce_to: data does not match {from:?}"
    );
    let bs = broadcast_strides(to, from);
    let mut out = vec![T::zero(); numel(to)];
    walk(from, [&bs], |i, [o]| out[o] = out[o] + g[i]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, check_vjp, values};

    #[test]
    fn numel_and_strides() {
        assert_eq!(numel(&[]), 1);
        assert_eq!(numel(&[2, 0, 3]), 0);
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(strides(&[]), Vec::<usize>::new());
    }

    #[test]
    fn numel_overflow_is_detected() {
        assert_eq!(checked_numel(&[1 << 32, 1 << 32]), None);
        assert_eq!(checked_numel(&[274_177, 67_280_421_310_721]), None);
        assert_eq!(checked_numel(&[usize::MAX, 2]), None);
        assert_eq!(checked_numel(&[usize::MAX, 1]), Some(usize::MAX));
        assert_eq!(checked_numel(&[1 << 32, 1 << 32, 0]), Some(0));
        assert_eq!(
            strides(&[0, 1 << 40, 1 << 40]),
            vec![usize::MAX, 1 << 40, 1]
        );
        let caught = std::panic::catch_unwind(|| numel(&[1 << 32, 1 << 32]));
        assert!(caught.is_err());
    }

    #[test]
    fn broadcast_shapes_follows_numpy() {
        assert_eq!(broadcast_shapes(&[3, 1], &[1, 4]), Some(vec![3, 4]));
        assert_eq!(broadcast_shapes(&[], &[2, 3]), Some(vec![2, 3]));
        assert_eq!(broadcast_shapes(&[5, 1, 4], &[3, 1]), Some(vec![5, 3, 4]));
        assert_eq!(broadcast_shapes(&[1, 4], &[3, 4]), Some(vec![3, 4]));
        assert_eq!(broadcast_shapes(&[2, 0], &[1, 0]), Some(vec![2, 0]));
        assert_eq!(broadcast_shapes(&[3, 2], &[3, 4]), None);
    }

    #[test]
    fn broadcast_to_column_and_row() {
        let col = broadcast_to(&[1.0, 2.0, 3.0], &[3, 1], &[3, 2]);
        assert_eq!(col, vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        let row = broadcast_to(&[1.0, 2.0], &[2], &[2, 2]);
        assert_eq!(row, vec![1.0, 2.0, 1.0, 2.0]);
        assert_eq!(broadcast_to(&[7.0f32], &[], &[2]), vec![7.0, 7.0]);
    }

    #[test]
    fn reduce_to_sums_stretched_dims() {
        let g: Vec<f64> = (0..12).map(f64::from).collect();
        assert_eq!(
            reduce_to(&g, &[3, 4], &[1, 4]),
            vec![12.0, 15.0, 18.0, 21.0]
        );
        assert_eq!(reduce_to(&g, &[3, 4], &[3, 1]), vec![6.0, 22.0, 38.0]);
        assert_eq!(reduce_to(&g, &[3, 4], &[4]), vec![12.0, 15.0, 18.0, 21.0]);
        assert_eq!(reduce_to(&g, &[3, 4], &[]), vec![66.0]);
        assert_eq!(reduce_to(&g, &[3, 4], &[3, 4]), g);
    }

    #[test]
    fn reduce_to_of_broadcast_to_scales_by_copies() {
        // reduce_to(broadcast_to(x)) = x * (numel(to) / numel(from)).
        let x = values(6, 1);
        for (from, to) in [(vec![2, 1, 3], vec![4, 2, 5, 3]), (vec![6], vec![2, 6])] {
            let copies = (numel(&to) / numel(&from)) as f64;
            let back = reduce_to(&broadcast_to(&x, &from, &to), &to, &from);
            let expect: Vec<f64> = x.iter().map(|v| v * copies).collect();
            assert_close(&back, &expect, 1e-12);
        }
    }

    #[test]
    fn reduce_to_is_adjoint_of_broadcast_to() {
        let (from, to) = ([3, 1], [2, 3, 4]);
        let x = values(3, 2);
        let gy = values(24, 3);
        let gx = reduce_to(&gy, &to, &from);
        check_vjp(|x| broadcast_to(x, &from, &to), &x, &gy, &gx);
    }
}
