//! A slice along one axis (`narrow`) beside its backward, which pads the gradient back
//! with zeros.

use crate::axis::axis_lanes;
use crate::Element;

/// Elements `start..start + len` along `axis` of `x` (shape `shape`), contiguous.
///
/// Precondition: `axis < shape.len()`, `start + len <= shape[axis]`,
/// `x.len() == numel(shape)`.
pub fn narrow<T: Element>(
    x: &[T],
    shape: &[usize],
    axis: usize,
    start: usize,
    len: usize,
) -> Vec<T> {
    let (outer, full, inner) = axis_lanes(shape, axis);
    assert!(
        start + len <= full,
        "narrow: {start}+{len} past axis {axis} of {shape:?}"
    );
    let mut y = Vec::with_capacity(outer * len * inner);
    if inner == 0 || len == 0 {
        return y;
    }
    for block in x.chunks_exact(full * inner) {
        y.extend_from_slice(&block[start * inner..(start + len) * inner]);
    }
    y
}

/// Gradient of [`narrow`]: `gy` placed at `start` along `axis` of a zero tensor of `shape`
/// (narrow only picks elements, so each picked one receives its gradient, the rest 0).
///
/// Precondition: `gy` holds `shape` with `axis` of size `len`, `start + len <= shape[axis]`.
pub fn narrow_backward<T: Element>(
    gy: &[T],
    shape: &[usize],
    axis: usize,
    start: usize,
    len: usize,
) -> Vec<T> {
    let (outer, full, inner) = axis_lanes(shape, axis);
    let mut gx = vec![T::zero(); outer * full * inner];
    if inner == 0 || len == 0 {
        return gx;
    }
    for (block, g) in gx
        .chunks_exact_mut(full * inner)
        .zip(gy.chunks_exact(len * inner))
    {
        block[start * inner..(start + len) * inner].copy_from_slice(g);
    }
    gx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{check_vjp, values};

    #[test]
    fn narrow_middle_axis_and_backward() {
        let x: Vec<f64> = (0..24).map(f64::from).collect();
        let y = narrow(&x, &[2, 3, 4], 1, 1, 2);
        assert_eq!(y[..4], [4.0, 5.0, 6.0, 7.0]);
        assert_eq!(y[8..12], [16.0, 17.0, 18.0, 19.0]);
        let gy = values(16, 1);
        let gx = narrow_backward(&gy, &[2, 3, 4], 1, 1, 2);
        check_vjp(|x| narrow(x, &[2, 3, 4], 1, 1, 2), &x, &gy, &gx);
    }
}
