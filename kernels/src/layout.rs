//! Ops that move data without arithmetic: transposing two axes, permuting all of them, and
//! concatenating along one.
//!
//! Reshape needs no kernel: the row-major data of a reshaped tensor is unchanged.

use crate::shape::{numel, strides, walk};
use crate::Element;

/// Swaps axes `d0` and `d1` of `x` (shape `shape`), returning contiguous row-major data of
/// the swapped shape.
///
/// Its backward is the same transpose applied to the upstream gradient, since swapping two
/// axes is its own inverse (a permutation matrix whose transpose is itself).
///
/// Precondition: `d0, d1 < shape.len()` and `x.len() == numel(shape)`.
pub fn transpose<T: Element>(x: &[T], shape: &[usize], d0: usize, d1: usize) -> Vec<T> {
    assert!(
        d0 < shape.len() && d1 < shape.len(),
        "transpose: axes ({d0}, {d1}) out of range for {shape:?}"
    );
    assert_eq!(
        x.len(),
        numel(shape),
        "transpose: data does not match {shape:?}"
    );
    if d0 == d1 {
        return x.to_vec();
    }
    let mut dims: Vec<usize> = (0..shape.len()).collect();
    dims.swap(d0, d1);
    gather_axes(x, shape, &dims)
}

/// Reorders the axes of `x` (shape `shape`): axis `i` of the result is axis `dims[i]` of
/// `x`. Returns contiguous row-major data of shape `dims.map(|d| shape[d])`.
///
/// Its backward is the permute by the inverse permutation applied to the upstream gradient.
///
/// Precondition: `dims` is a permutation of `0..shape.len()` and `x.len() == numel(shape)`.
pub fn permute<T: Element>(x: &[T], shape: &[usize], dims: &[usize]) -> Vec<T> {
    let mut seen = vec![false; shape.len()];
    assert!(
        dims.len() == shape.len()
            && dims
                .iter()
                .all(|&d| d < shape.len() && !std::mem::replace(&mut seen[d], true)),
        "permute: {dims:?} is not a permutation of the axes of {shape:?}"
    );
    assert_eq!(
        x.len(),
        numel(shape),
        "permute: data does not match {shape:?}"
    );
    gather_axes(x, shape, dims)
}

/// The data of `x` (contiguous, shape `shape`) with its axes reordered by `dims`, a valid
/// permutation. Output axes that stay neighbours in `x` are walked as one, and where the
/// last of them is contiguous in `x` whole runs are copied instead of single elements.
fn gather_axes<T: Element>(x: &[T], shape: &[usize], dims: &[usize]) -> Vec<T> {
    // Nothing to move; and the other axes may still be huge (`[2^64 - 1, 0, 1]`), which a
    // walk over the outer axes of an empty run would step through one by one.
    if x.is_empty() {
        return Vec::new();
    }
    let from = strides(shape);
    // (size, stride in x) of each output axis, neighbours in x merged.
    let mut axes: Vec<(usize, usize)> = Vec::with_capacity(dims.len());
    for (i, &d) in dims.iter().enumerate() {
        match axes.last_mut() {
            Some(last) if i > 0 && dims[i - 1] + 1 == d => *last = (last.0 * shape[d], from[d]),
            _ => axes.push((shape[d], from[d])),
        }
    }
    let mut y = Vec::with_capacity(x.len());
    let Some((&(run, step), outer)) = axes.split_last() else {
        // A scalar: nothing to reorder.
        y.extend_from_slice(x);
        return y;
    };
    // The last output axis is walked as a run: copied whole where it is contiguous in `x`
    // (with a fixed length for the short runs of attention's heads, where a `memcpy` call
    // a run cost more than the copy), gathered with its stride where it is not.
    let (sizes, read): (Vec<usize>, Vec<usize>) = outer.iter().copied().unzip();
    match (run, step) {
        (2, 1) => copy_runs::<T, 2>(x, &sizes, &read, &mut y),
        (4, 1) => copy_runs::<T, 4>(x, &sizes, &read, &mut y),
        (8, 1) => copy_runs::<T, 8>(x, &sizes, &read, &mut y),
        (16, 1) => copy_runs::<T, 16>(x, &sizes, &read, &mut y),
        (_, 1) => walk(&sizes, [&read], |_, [o]| {
            y.extend_from_slice(&x[o..o + run])
        }),
        _ => walk(&sizes, [&read], |_, [o]| {
            y.extend((0..run).map(|j| x[o + j * step]))
        }),
    }
    y
}

/// Appends to `y` the run of `R` elements of `x` at every offset of the walk over `sizes`
/// with strides `read`.
fn copy_runs<T: Element, const R: usize>(x: &[T], sizes: &[usize], read: &[usize], y: &mut Vec<T>) {
    let start = y.len();
    y.resize(start + numel(sizes) * R, T::zero());
    let out = &mut y[start..];
    walk(sizes, [read], |i, [o]| {
        let run: &[T; R] = x[o..o + R].try_into().expect("a run of R elements");
        let to: &mut [T; R] = (&mut out[i * R..i * R + R]).try_into().expect("R elements");
        *to = *run;
    });
}

/// Splits `shape` around `axis` into (elements before it, elements after it).
fn outer_inner(shape: &[usize], axis: usize) -> (usize, usize) {
    assert!(
        axis < shape.len(),
        "concat: axis {axis} out of range for {shape:?}"
    );
    (numel(&shape[..axis]), numel(&shape[axis + 1..]))
}

/// Concatenates `parts` (each `(data, shape)`) along `axis`; returns the data and its shape.
///
/// Precondition: `parts` is non-empty, every shape has the same rank greater than `axis`
/// and agrees with the others off `axis`, and each slice matches its shape.
pub fn concat<T: Element>(parts: &[(&[T], &[usize])], axis: usize) -> (Vec<T>, Vec<usize>) {
    let (_, first) = parts.first().expect("concat: no parts");
    let mut out_shape = first.to_vec();
    out_shape[axis] = 0;
    for (data, shape) in parts {
        assert!(
            shape.len() == first.len()
                && (0..shape.len()).all(|d| d == axis || shape[d] == first[d]),
            "concat: shape {shape:?} does not match {first:?} off axis {axis}"
        );
        assert_eq!(
            data.len(),
            numel(shape),
            "concat: data does not match {shape:?}"
        );
        out_shape[axis] = out_shape[axis]
            .checked_add(shape[axis])
            .unwrap_or_else(|| panic!("concat: the lengths along axis {axis} overflow usize"));
    }
    let len = numel(&out_shape);
    // With no elements, `outer` may still be huge (a shape like [usize::MAX, 0]): nothing
    // to copy, and no loop over it.
    if len == 0 {
        return (Vec::new(), out_shape);
    }
    let (outer, inner) = outer_inner(first, axis);
    let mut y = Vec::with_capacity(len);
    for o in 0..outer {
        for (data, shape) in parts {
            let run = shape[axis] * inner;
            y.extend_from_slice(&data[o * run..(o + 1) * run]);
        }
    }
    (y, out_shape)
}

/// Gradient of [`concat()`]: splits `gy` (shape `out_shape`) along `axis` into pieces whose
/// sizes along `axis` are `sizes`, one per original part.
///
/// Precondition: `sizes` sum to `out_shape[axis]` and `gy.len() == numel(out_shape)`.
pub fn concat_backward<T: Element>(
    gy: &[T],
    out_shape: &[usize],
    axis: usize,
    sizes: &[usize],
) -> Vec<Vec<T>> {
    // Concatenation only moves elements, so each part's gradient is its slice of gy.
    if gy.is_empty() && numel(out_shape) == 0 {
        // No elements (though `outer` may be huge, as in [usize::MAX, 0]): empty pieces.
        assert_eq!(
            sizes.iter().try_fold(0usize, |n, &s| n.checked_add(s)),
            Some(out_shape[axis]),
            "concat_backward: sizes {sizes:?} do not fill axis {axis} of {out_shape:?}"
        );
        return vec![Vec::new(); sizes.len()];
    }
    let (outer, inner) = outer_inner(out_shape, axis);
    assert_eq!(
        sizes.iter().sum::<usize>(),
        out_shape[axis],
        "concat_backward: sizes {sizes:?} do not fill axis {axis} of {out_shape:?}"
    );
    assert_eq!(
        gy.len(),
        numel(out_shape),
        "concat_backward: gy does not match {out_shape:?}"
    );
    let mut pieces: Vec<Vec<T>> = sizes
        .iter()
        .map(|s| Vec::with_capacity(outer * s * inner))
        .collect();
    let mut at = 0;
    for _ in 0..outer {
        for (piece, size) in pieces.iter_mut().zip(sizes) {
            let run = size * inner;
            piece.extend_from_slice(&gy[at..at + run]);
            at += run;
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concat_of_empty_parts_with_a_huge_outer_size_returns_at_once() {
        // outer = usize::MAX rows of nothing: used to loop 2^64 times.
        let parts: [(&[f32], &[usize]); 2] =
            [(&[], &[usize::MAX, 1, 0]), (&[], &[usize::MAX, 2, 0])];
        let (y, shape) = concat(&parts, 1);
        assert!(y.is_empty());
        assert_eq!(shape, vec![usize::MAX, 3, 0]);
        let pieces = concat_backward::<f32>(&[], &shape, 1, &[1, 2]);
        assert_eq!(pieces, vec![Vec::<f32>::new(), Vec::new()]);
    }
    use crate::gradcheck::{check_vjp, values};

    #[test]
    fn permute_moves_every_axis_and_its_inverse_restores() {
        let x: Vec<f64> = (0..24).map(f64::from).collect();
        // y[k][i][j] = x[i][j][k] = 12i + 4j + k; y has shape [4, 2, 3].
        let y = permute(&x, &[2, 3, 4], &[2, 0, 1]);
        assert_eq!(y[..7], [0.0, 4.0, 8.0, 12.0, 16.0, 20.0, 1.0]);
        // The inverse of [2, 0, 1] is [1, 2, 0].
        assert_eq!(permute(&y, &[4, 2, 3], &[1, 2, 0]), x);
        // Two axes swapped is the transpose; the identity copies.
        assert_eq!(
            permute(&x, &[2, 3, 4], &[2, 1, 0]),
            transpose(&x, &[2, 3, 4], 0, 2)
        );
        assert_eq!(permute(&x, &[2, 3, 4], &[0, 1, 2]), x);
        assert_eq!(permute(&[7.0f32], &[], &[]), vec![7.0]);
    }

    #[test]
    fn every_permutation_matches_an_element_by_element_walk() {
        // Merged neighbour axes and copied runs must give what visiting each index does:
        // runs of every fixed length (2, 4, 8, 16, also merged: 2·8), of others, and strided.
        for shape in [
            [2, 3, 4, 5],
            [1, 3, 1, 2],
            [2, 0, 3, 1],
            [3, 2, 2, 8],
            [2, 3, 4, 16],
            [3, 1, 5, 4],
        ] {
            let x: Vec<f64> = (0..numel(&shape)).map(|v| v as f64).collect();
            let from = strides(&shape);
            for p in 0..24 {
                let mut rest = vec![0, 1, 2, 3];
                let dims: Vec<usize> = [6, 2, 1, 1]
                    .iter()
                    .scan(p, |p, &f| {
                        let i = *p / f;
                        *p %= f;
                        Some(rest.remove(i))
                    })
                    .collect();
                let out: Vec<usize> = dims.iter().map(|&d| shape[d]).collect();
                let read: Vec<usize> = dims.iter().map(|&d| from[d]).collect();
                let mut want = Vec::new();
                walk(&out, [&read], |_, [o]| want.push(x[o]));
                assert_eq!(permute(&x, &shape, &dims), want, "{shape:?} by {dims:?}");
            }
        }
    }

    #[test]
    fn scalars_and_vectors_permute_to_themselves() {
        assert_eq!(permute(&[7.0f32], &[], &[]), [7.0]);
        let x: Vec<f32> = (0..9).map(|v| v as f32).collect();
        assert_eq!(permute(&x, &[9], &[0]), x);
        assert_eq!(permute(&x[..8], &[8], &[0]), x[..8]);
    }

    #[test]
    fn an_empty_tensor_with_huge_axes_permutes_at_once() {
        // The run (the last axis) is empty but the axes before it count 2^64 - 1: this
        // looped over every one of them (found by the API fuzzer).
        let shape = [usize::MAX, 0, 1];
        assert!(transpose::<f32>(&[], &shape, 2, 1).is_empty());
        assert!(permute::<f32>(&[], &shape, &[0, 2, 1]).is_empty());
    }

    #[test]
    #[should_panic(expected = "not a permutation")]
    fn permute_rejects_a_repeated_axis() {
        permute(&[0.0f32; 6], &[2, 3], &[1, 1]);
    }

    #[test]
    fn transpose_matrix_and_middle_axes() {
        let x: Vec<f64> = (0..6).map(f64::from).collect();
        assert_eq!(
            transpose(&x, &[2, 3], 0, 1),
            vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
        );
        let x: Vec<f64> = (0..24).map(f64::from).collect();
        let y = transpose(&x, &[2, 3, 4], 0, 2);
        // y[k][j][i] = x[i][j][k] = 12i + 4j + k; y has shape [4, 3, 2].
        assert_eq!(y[..4], [0.0, 12.0, 4.0, 16.0]);
        assert_eq!(y[6], 1.0);
        assert_eq!(transpose(&y, &[4, 3, 2], 2, 0), x);
    }

    #[test]
    fn transpose_backward_is_the_same_transpose() {
        let (shape, x, gy) = ([2, 3, 4], values(24, 1), values(24, 2));
        let gx = transpose(&gy, &[2, 4, 3], 1, 2);
        check_vjp(|x| transpose(x, &shape, 1, 2), &x, &gy, &gx);
    }

    #[test]
    fn concat_along_each_axis() {
        let a = [1.0f32, 2.0, 3.0, 4.0];
        let b = [5.0f32, 6.0];
        let (y, shape) = concat(&[(&a, &[2, 2]), (&b, &[1, 2])], 0);
        assert_eq!((y, shape), (vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], vec![3, 2]));
        let (y, shape) = concat(&[(&a, &[2, 2]), (&b, &[2, 1])], 1);
        assert_eq!((y, shape), (vec![1.0, 2.0, 5.0, 3.0, 4.0, 6.0], vec![2, 3]));
    }

    #[test]
    fn concat_backward_matches_finite_differences() {
        let (a, b) = (values(6, 3), values(4, 4));
        let (sa, sb) = ([2, 3], [2, 2]);
        let gy = values(10, 5);
        let pieces = concat_backward(&gy, &[2, 5], 1, &[3, 2]);
        check_vjp(|a| concat(&[(a, &sa), (&b, &sb)], 1).0, &a, &gy, &pieces[0]);
        check_vjp(|b| concat(&[(&a, &sa), (b, &sb)], 1).0, &b, &gy, &pieces[1]);
    }
}
