//! Sums over all elements or along one axis, each beside its backward.
//!
//! Summation order is fixed by the data layout alone, so results are bit-for-bit
//! reproducible across runs and thread counts.

use crate::par::Kind;
use crate::shape::numel;
use crate::{split, Element};

/// Below this many elements [`sum_all`] adds left to right; above, it splits in halves.
const PAIRWISE_BLOCK: usize = 64;

/// Levels at the top of a large sum's tree whose subtrees run as chunks: `2^TOP_LEVELS`.
const TOP_LEVELS: u32 = 3;

/// Sum of every element of `x`, by pairwise summation in a fixed order (error grows with
/// `log n`, not `n`). A large sum computes the subtrees below the tree's top levels as
/// chunks, then adds them up as the tree does: the same additions, so the same bits.
pub fn sum_all<T: Element>(x: &[T]) -> T {
    if x.len() < 2 * split::UNIT_FLOPS {
        return pairwise(x);
    }
    let mut ranges: Vec<std::ops::Range<usize>> = std::iter::once(0..x.len()).collect();
    for _ in 0..TOP_LEVELS {
        ranges = ranges
            .into_iter()
            .flat_map(|r| {
                let mid = r.start + r.len() / 2;
                [r.start..mid, mid..r.end]
            })
            .collect();
    }
    let mut sums = vec![T::zero(); ranges.len()];
    let chunks = split::chunks_for(Kind::Product, ranges.len(), x.len());
    split::for_each_part(sums.iter_mut().collect(), chunks, &|i, s| {
        **s = pairwise(&x[ranges[i].clone()]);
    });
    while sums.len() > 1 {
        sums = sums.chunks_exact(2).map(|p| p[0] + p[1]).collect();
    }
    sums[0]
}

/// [`sum_all`] on the calling thread: halves until [`PAIRWISE_BLOCK`], then left to right.
fn pairwise<T: Element>(x: &[T]) -> T {
    if x.len() <= PAIRWISE_BLOCK {
        return x.iter().fold(T::zero(), |acc, &v| acc + v);
    }
    let (lo, hi) = x.split_at(x.len() / 2);
    pairwise(lo) + pairwise(hi)
}

/// Splits `shape` around `axis` into (elements before it, its size, elements after it).
fn split_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    assert!(
        axis < shape.len(),
        "sum_axis: axis {axis} out of range for {shape:?}"
    );
    (
        numel(&shape[..axis]),
        shape[axis],
        numel(&shape[axis + 1..]),
    )
}

/// Lanes of a row sum: element `i` goes to running sum `i mod LANES`.
pub(crate) const LANES: usize = 8;

/// `Σ f(x_i)` in a fixed order that a loop vectorises (a single running sum is a chain of
/// dependent additions): [`LANES`] running sums, then added as a fixed tree. The order
/// depends on the length alone.
#[inline]
pub(crate) fn lane_sum<T: Element>(x: &[T], f: impl Fn(T) -> T) -> T {
    lane_sum2(x, x, |a, _| f(a))
}

/// [`lane_sum`] of `f(a_i, b_i)` over two rows of the same length.
#[inline]
pub(crate) fn lane_sum2<T: Element>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    let mut acc = [T::zero(); LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (ca, cb) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] = acc[i] + f(ca[i], cb[i]);
        }
    }
    for (i, (&x, &y)) in ra.iter().zip(rb).enumerate() {
        acc[i] = acc[i] + f(x, y);
    }
    let half = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    (half[0] + half[2]) + (half[1] + half[3])
}

/// Sums `x` (shape `shape`) along `axis`; the result has `shape` with `axis` removed.
///
/// Precondition: `axis < shape.len()` and `x.len() == numel(shape)`.
pub fn sum_axis<T: Element>(x: &[T], shape: &[usize], axis: usize) -> Vec<T> {
    let (outer, len, inner) = split_axis(shape, axis);
    assert_eq!(
        x.len(),
        numel(shape),
        "sum_axis: data does not match {shape:?}"
    );
    let out_len = outer.checked_mul(inner).unwrap_or_else(|| {
        panic!("sum_axis: the output of {shape:?} without axis {axis} overflows usize")
    });
    let mut out = vec![T::zero(); out_len];
    // With no input elements the sums are all 0; the dimensions may still be huge, so
    // `len * inner` below could overflow (a shape like [0, 2^32, 2^32]).
    if x.is_empty() {
        return out;
    }
    // Rows are added in axis order, the same for every output element, so a large output
    // splits into chunks of output elements: each chunk adds the rows over its own range.
    split::for_each_block(Kind::Product, &mut out, len, &|start, part| {
        let mut o = start;
        while o < start + part.len() {
            // The outputs of one outer block from `o` on that this part holds.
            let (b, j) = (o / inner, o % inner);
            let end = (start + part.len()).min((b + 1) * inner);
            let acc = &mut part[o - start..end - start];
            let block = &x[b * len * inner..(b + 1) * len * inner];
            for row in block.chunks_exact(inner) {
                let row = &row[j..j + acc.len()];
                acc.iter_mut().zip(row).for_each(|(a, &v)| *a = *a + v);
            }
            o = end;
        }
    });
    out
}

/// Gradient of [`sum_axis`]: `gy` (shape `shape` without `axis`) copied along `axis`.
pub fn sum_axis_backward<T: Element>(gy: &[T], shape: &[usize], axis: usize) -> Vec<T> {
    // ∂(Σ_j x_j)/∂x_j = 1, so every summed element receives the upstream gradient.
    let (outer, len, inner) = split_axis(shape, axis);
    assert_eq!(
        Some(gy.len()),
        outer.checked_mul(inner),
        "sum_axis_backward: gy does not match {shape:?}"
    );
    let mut out = Vec::with_capacity(numel(shape));
    if inner == 0 {
        return out;
    }
    for row in gy.chunks_exact(inner) {
        for _ in 0..len {
            out.extend_from_slice(row);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sums_add_every_element_once_in_a_fixed_tree() {
        for len in [0, 1, 7, 8, 9, 64, 67] {
            let x: Vec<f64> = (0..len).map(|i| (i * i) as f64).collect();
            let want: f64 = x.iter().sum();
            assert_eq!(lane_sum(&x, |v| v), want, "length {len}");
        }
        // The tree is ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)): here (2 + -1e8) + 1e8 = 0 in
        // f32 (the 2 is lost beside 1e8), where left to right ((1 + 1e8) - 1e8) + 1 = 1.
        let x: Vec<f32> = [1.0, 1e8, -1e8, 0.0, 1.0, 0.0, 0.0, 0.0].to_vec();
        assert_eq!(lane_sum(&x, |v| v), 0.0);
        assert_eq!(x.iter().fold(0.0f32, |s, &v| s + v), 1.0);
    }

    #[test]
    fn split_sum_axis_keeps_its_bits() {
        // Output blocks of 4096 elements that start inside an outer block, for every axis.
        let shape = [3, 5, 4099];
        let x = crate::gradcheck::values(numel(&shape), 9);
        for axis in 0..3 {
            let run =
                |chunks| split::with_chunks(chunks, || split::bits(&sum_axis(&x, &shape, axis)));
            let whole = run(1);
            for chunks in split::TEST_CHUNKS {
                assert_eq!(run(chunks), whole, "axis {axis}, {chunks} chunks");
            }
            // Each output element is its lane's sum in axis order.
            let (outer, len, inner) = split_axis(&shape, axis);
            let got = sum_axis(&x, &shape, axis);
            for (o, &g) in got.iter().enumerate().step_by(97) {
                let (b, j) = (o / inner, o % inner);
                let want = (0..len).fold(0.0, |s, r| s + x[(b * len + r) * inner + j]);
                assert_eq!(g.to_bits(), f64::to_bits(want), "axis {axis}, output {o}");
                assert!(b < outer);
            }
        }
    }

    #[test]
    fn a_split_sum_adds_as_the_whole_tree_does() {
        let x = crate::gradcheck::values(300_001, 9);
        let whole = pairwise(&x).to_bits();
        for chunks in split::TEST_CHUNKS {
            let got = split::with_chunks(chunks, || sum_all(&x));
            assert_eq!(got.to_bits(), whole, "{chunks} chunks");
        }
    }
    use crate::gradcheck::{assert_close, check_vjp, values};

    #[test]
    fn sum_all_is_exact_on_integers() {
        let x: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(sum_all(&x), 500_500.0);
        assert_eq!(sum_all::<f32>(&[]), 0.0);
    }

    #[test]
    fn sum_axis_of_each_axis() {
        let x: Vec<f64> = (0..24).map(f64::from).collect();
        let shape = [2, 3, 4];
        assert_eq!(
            sum_axis(&x, &shape, 0),
            (12..36).step_by(2).map(f64::from).collect::<Vec<_>>()
        );
        assert_eq!(sum_axis(&x, &shape, 1)[..4], [12.0, 15.0, 18.0, 21.0]);
        assert_eq!(sum_axis(&x, &shape, 2)[..2], [6.0, 22.0]);
        assert_eq!(sum_axis(&x, &[24], 0), vec![276.0]);
    }

    #[test]
    fn sum_axis_backward_matches_finite_differences() {
        let shape = [2, 3, 4];
        let x = values(24, 5);
        for axis in 0..3 {
            let gy = values(24 / shape[axis], 6);
            let gx = sum_axis_backward(&gy, &shape, axis);
            check_vjp(|x| sum_axis(x, &shape, axis), &x, &gy, &gx);
        }
    }

    #[test]
    fn empty_axes() {
        assert!(sum_axis::<f32>(&[], &[2, 0], 1).iter().all(|&v| v == 0.0));
        assert_eq!(sum_axis::<f32>(&[], &[2, 0], 1).len(), 2);
        assert_eq!(sum_axis::<f32>(&[], &[0, 2], 1).len(), 0);
        assert_eq!(sum_axis::<f32>(&[], &[2, 0, 3], 1), vec![0.0; 6]);
        // No elements, but the dimensions around the axis are huge.
        assert!(sum_axis::<f32>(&[], &[usize::MAX, 2, 0], 1).is_empty());
        assert!(sum_axis_backward::<f32>(&[], &[usize::MAX, 2, 0], 1).is_empty());
        assert!(sum_axis::<f32>(&[], &[0, 1 << 32, 1 << 32], 1).is_empty());
        assert_eq!(sum_axis::<f32>(&[], &[2, 3, 0], 2), vec![0.0; 6]);
        assert_close(&sum_axis_backward(&[1.0, 2.0], &[2, 0], 1), &[], 0.0);
    }
}
