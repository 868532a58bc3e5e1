//! Selection by index and its scatter-add adjoint: `index_select` beside `index_add`, and
//! `gather` beside `scatter_add`. Each pair is the other's backward (both are linear).

use crate::axis::axis_lanes;
use crate::shape::{numel, strides, walk};
use crate::Element;

/// The slices at `indices` along `axis` of `x` (shape `shape`), in that order; the result
/// has `shape` with `axis` of length `indices.len()`.
///
/// Precondition: `axis < shape.len()`, every index `< shape[axis]`.
pub fn index_select<T: Element>(
    x: &[T],
    shape: &[usize],
    axis: usize,
    indices: &[usize],
) -> Vec<T> {
    let (outer, len, inner) = axis_lanes(shape, axis);
    let mut y = Vec::with_capacity(outer * indices.len() * inner);
    if inner == 0 || indices.is_empty() {
        return y;
    }
    for block in x.chunks_exact(len * inner) {
        for &i in indices {
            y.extend_from_slice(&block[i * inner..(i + 1) * inner]);
        }
    }
    y
}

/// Gradient of [`index_select`]: each slice of `gy` added into the slice of a zero tensor
/// of `shape` at its index along `axis`; a repeated index sums its slices
/// (`∂y_k/∂x_i = 1` where `indices[k] == i`).
///
/// Precondition: as [`index_select`], and `gy` has `shape` with `axis` of `indices.len()`.
pub fn index_add<T: Element>(gy: &[T], shape: &[usize], axis: usize, indices: &[usize]) -> Vec<T> {
    let (outer, len, inner) = axis_lanes(shape, axis);
    let mut gx = vec![T::zero(); outer * len * inner];
    if inner == 0 || indices.is_empty() || len == 0 {
        return gx;
    }
    for (block, g) in gx
        .chunks_exact_mut(len * inner)
        .zip(gy.chunks_exact(indices.len() * inner))
    {
        for (&i, row) in indices.iter().zip(g.chunks_exact(inner)) {
            let dst = &mut block[i * inner..(i + 1) * inner];
            dst.iter_mut().zip(row).for_each(|(d, &v)| *d = *d + v);
        }
    }
    gx
}

/// Strides of `shape` read at the positions of `index_shape`, with the stride of `axis`
/// zeroed (its coordinate comes from the index), and the stride of `axis` itself.
fn gather_strides(shape: &[usize], axis: usize) -> (Vec<usize>, usize) {
    let mut s = strides(shape);
    let along = s[axis];
    s[axis] = 0;
    (s, along)
}

/// PyTorch's `gather`: `y[p] = x[p with its coordinate on axis replaced by index[p]]` for
/// every position `p` of `index_shape` (row-major).
///
/// Precondition: `index_shape` has the rank of `shape`, `index_shape[d] <= shape[d]` off
/// `axis`, `index.len() == numel(index_shape)`, every index `< shape[axis]`.
pub fn gather<T: Element>(
    x: &[T],
    shape: &[usize],
    axis: usize,
    index: &[usize],
    index_shape: &[usize],
) -> Vec<T> {
    let (read, along) = gather_strides(shape, axis);
    let mut y = Vec::with_capacity(numel(index_shape));
    walk(index_shape, [&read], |p, [o]| {
        y.push(x[o + index[p] * along])
    });
    y
}

/// Gradient of [`gather`]: each element of `gy` added into a zero tensor of `shape` at the
/// position it was read from; positions read several times sum their gradients.
///
/// Precondition: as [`gather`], and `gy.len() == index.len()`.
pub fn scatter_add<T: Element>(
    gy: &[T],
    shape: &[usize],
    axis: usize,
    index: &[usize],
    index_shape: &[usize],
) -> Vec<T> {
    let (read, along) = gather_strides(shape, axis);
    let mut gx = vec![T::zero(); numel(shape)];
    walk(index_shape, [&read], |p, [o]| {
        let at = o + index[p] * along;
        gx[at] = gx[at] + gy[p];
    });
    gx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{check_vjp, values};

    #[test]
    fn index_select_with_repeats_and_its_backward() {
        let x: Vec<f64> = (0..12).map(f64::from).collect();
        let y = index_select(&x, &[2, 3, 2], 1, &[2, 0, 2]);
        assert_eq!(
            y,
            vec![4.0, 5.0, 0.0, 1.0, 4.0, 5.0, 10.0, 11.0, 6.0, 7.0, 10.0, 11.0]
        );
        let gy = values(12, 1);
        let gx = index_add(&gy, &[2, 3, 2], 1, &[2, 0, 2]);
        check_vjp(|x| index_select(x, &[2, 3, 2], 1, &[2, 0, 2]), &x, &gy, &gx);
    }

    #[test]
    fn gather_follows_pytorch_and_its_backward() {
        // x = [[1, 2], [3, 4]], gather(1, [[0, 0], [1, 0]]) = [[1, 1], [4, 3]].
        let x = [1.0f64, 2.0, 3.0, 4.0];
        assert_eq!(
            gather(&x, &[2, 2], 1, &[0, 0, 1, 0], &[2, 2]),
            vec![1.0, 1.0, 4.0, 3.0]
        );
        // Along axis 0 with a smaller index shape: y[0][j] = x[idx][j].
        assert_eq!(gather(&x, &[2, 2], 0, &[1], &[1, 1]), vec![3.0]);
        let x = values(24, 2);
        let (index, ishape) = ([2, 0, 1, 1, 3, 0, 0, 2], [2, 2, 2]);
        let gy = values(8, 3);
        let gx = scatter_add(&gy, &[2, 3, 4], 2, &index, &ishape);
        check_vjp(|x| gather(x, &[2, 3, 4], 2, &index, &ishape), &x, &gy, &gx);
    }
}
