//! Strided `c = a·b + beta·c` over faer's matrix product, split over blocks of output rows.
//!
//! faer's kernels multiply the small products the workloads run (32×128·128×128 and T1's
//! 64-wide layers) without the per-call packing buffer that matrixmultiply allocates; the
//! figures are in `BENCHMARKS.md` ("GEMM and transcendental kernels") and
//! `benches/gemm_sizes.rs`. faer never spawns work of its own (`Par::Seq`): a product large
//! enough is cut into blocks of output rows, fixed by the shape, that
//! [`par::for_each`](crate::par::for_each) may hand to other threads; the sum over the inner
//! dimension is never split, so the bits do not depend on the thread count.

use faer::linalg::matmul::matmul;
use faer::prelude::ReborrowMut;
use faer::traits::ComplexField;
use faer::{Accum, MatMut, MatRef, Par};

use crate::par::Kind;
use crate::split;

/// Checks that every index the strided `rows×cols` view touches lies inside `len`, with
/// checked arithmetic (an overflowing extent is out of bounds), and returns the strides to
/// step by. A dimension of size 1 is never stepped along, so its stride comes back as 0
/// whatever it is.
///
/// Panics, naming the operand, its dimensions and strides, when the view does not fit.
fn check_extent(
    len: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
    what: &str,
) -> (usize, usize) {
    if rows == 0 || cols == 0 {
        return (0, 0);
    }
    let last = (rows - 1)
        .checked_mul(rs)
        .and_then(|r| (cols - 1).checked_mul(cs).and_then(|c| r.checked_add(c)));
    assert!(
        last.is_some_and(|last| last < len),
        "gemm: operand {what} of {rows}x{cols} with strides ({rs},{cs}) overruns its buffer of {len}"
    );
    let step = |dim: usize, s: usize| if dim > 1 { s } else { 0 };
    (step(rows, rs), step(cols, cs))
}

/// Checks that a dense row-major `m×n` output fits in `len` elements, with checked
/// arithmetic, and returns `m * n`. Panics, naming the dimensions, otherwise.
fn check_output(len: usize, m: usize, n: usize) -> usize {
    match m.checked_mul(n) {
        Some(mn) if mn <= len => mn,
        _ => panic!("gemm: output of {m}x{n} overruns its buffer of {len}"),
    }
}

/// The `rows×cols` view of `data` with strides `(rs, cs)` as `check_extent` returned them
/// (in bounds, 0 along a unit dimension). A view with a unit stride on either side is
/// borrowed in place; any other layout is first gathered into `dense`, row-major.
fn view<'a, T: Copy>(
    data: &'a [T],
    rows: usize,
    cols: usize,
    (rs, cs): (usize, usize),
    dense: &'a mut Vec<T>,
) -> MatRef<'a, T> {
    // A unit dimension's stride is never stepped along, so 1 serves as well as any.
    let cs = if cols == 1 { 1 } else { cs };
    let rs = if rows == 1 { 1 } else { rs };
    if cs == 1 {
        MatRef::from_row_major_slice_with_stride(data, rows, cols, rs)
    } else if rs == 1 {
        MatRef::from_column_major_slice_with_stride(data, rows, cols, cs)
    } else {
        dense.extend((0..rows).flat_map(|i| (0..cols).map(move |j| data[i * rs + j * cs])));
        MatRef::from_row_major_slice(dense, rows, cols)
    }
}

/// `c = a·b + beta·c` for a strided `m×k` `a`, a strided `k×n` `b` and a dense row-major
/// `m×n` `c` (its first `m * n` elements). With `beta == 0` the old contents of `c` are
/// ignored, NaN included, as BLAS does.
///
/// # Panics
///
/// If a view of `a` or `b` reaches past its slice or `c` is shorter than `m * n` (checked
/// without overflow), naming the operand.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<T: ComplexField + num_traits::Float + Send>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    (rsa, csa): (usize, usize),
    b: &[T],
    (rsb, csb): (usize, usize),
    c: &mut [T],
    beta: T,
) {
    let sa = check_extent(a.len(), m, k, rsa, csa, "a");
    let sb = check_extent(b.len(), k, n, rsb, csb, "b");
    let mn = check_output(c.len(), m, n);
    let c = &mut c[..mn];
    if m == 0 || n == 0 {
        return;
    }
    let accum = if beta == T::zero() {
        Accum::Replace
    } else {
        if beta != T::one() {
            c.iter_mut().for_each(|v| *v *= beta);
        }
        Accum::Add
    };
    if k == 0 {
        if matches!(accum, Accum::Replace) {
            c.fill(T::zero());
        }
        return;
    }
    let (mut dense_a, mut dense_b) = (Vec::new(), Vec::new());
    let a = view(a, m, k, sa, &mut dense_a);
    let b = view(b, k, n, sb, &mut dense_b);
    let (rows, cols) = blocks(m, k, n);
    let units = m.div_ceil(rows) * n.div_ceil(cols);
    let chunks = split::chunks_for(Kind::Product, units, flops(m, k, n));
    multiply_blocks(c, accum, a, b, (rows, cols), chunks);
}

/// The (rows, columns) of the blocks the output of an `m×k · k×n` product is cut into:
/// blocks of whole rows ([`block_rows`]), or, when the rows make one block (a product with
/// few output rows and a long inner dimension, as a weight gradient `gyᵀ·x`), blocks of
/// whole columns ([`block_cols`]).
fn blocks(m: usize, k: usize, n: usize) -> (usize, usize) {
    let rows = block_rows(m, k, n);
    if rows < m {
        (rows, n.max(1))
    } else {
        (rows, block_cols(m, k, n))
    }
}

/// The columns of each block when the output is cut into blocks of columns: as
/// [`block_rows`] for the transposed product, at least [`MIN_BLOCK_COLS`].
fn block_cols(m: usize, k: usize, n: usize) -> usize {
    block_len(n, flops(m, k, 1), flops(m, k, n), MIN_BLOCK_COLS)
}

/// The fewest output columns a column block has: thinner blocks would leave faer's
/// micro-kernels (4 to 8 columns wide per step) mostly idle.
const MIN_BLOCK_COLS: usize = 16;

/// The flops of an `m×k · k×n` product (`2·m·k·n`, saturating).
pub(crate) fn flops(m: usize, k: usize, n: usize) -> usize {
    2usize.saturating_mul(m).saturating_mul(k).saturating_mul(n)
}

/// The rows of each block the output of an `m×k · k×n` product is cut into, from the shape
/// alone: all `m` while the product is under two chunks' work, else enough rows for
/// [`split::UNIT_FLOPS`] each, at least [`MIN_BLOCK_ROWS`], a multiple of 8, and at
/// most [`split::MAX_CHUNKS`] blocks.
fn block_rows(m: usize, k: usize, n: usize) -> usize {
    block_len(m, flops(1, k, n), flops(m, k, n), MIN_BLOCK_ROWS)
}

/// How many of a product's `len` output rows (or columns), of `per_unit` flops each and
/// `total` in all, make a block: all while the product is under two chunks' work, else
/// enough for [`split::UNIT_FLOPS`] each, at least `least_len`, a multiple of 8, and
/// at most [`split::MAX_CHUNKS`] blocks.
fn block_len(len: usize, per_unit: usize, total: usize, least_len: usize) -> usize {
    if total < 2 * split::UNIT_FLOPS {
        return len.max(1);
    }
    split::UNIT_FLOPS
        .div_ceil(per_unit.max(1))
        .max(len.div_ceil(split::MAX_CHUNKS))
        .max(least_len)
        .next_multiple_of(8)
        .min(len)
}

/// The fewest output rows a block of a split product has: each block packs `b` again, so
/// thinner blocks would make a product slower on one thread than left whole.
const MIN_BLOCK_ROWS: usize = 64;

/// `c = a·b` (or `c += a·b`), one faer product per block of `rows` rows of `c`, the blocks
/// grouped into `chunks` chunks. A block's arithmetic depends only on its rows, so the
/// result does not depend on `chunks`.
fn multiply_blocks<T: ComplexField + num_traits::Float + Send>(
    c: &mut [T],
    accum: Accum,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    (rows, cols): (usize, usize),
    chunks: split::Chunks,
) {
    let n = b.ncols();
    if rows >= a.nrows() && cols >= n {
        let c = MatMut::from_row_major_slice_mut(c, a.nrows(), n);
        return matmul(c, accum, a, b, T::one(), Par::Seq);
    }
    if rows >= a.nrows() {
        // Blocks of whole columns: each is the product of `a` with its columns of `b`.
        let mut rest = MatMut::from_row_major_slice_mut(c, a.nrows(), n);
        let mut parts = Vec::with_capacity(n.div_ceil(cols));
        while rest.ncols() > 0 {
            let width = cols.min(rest.ncols());
            let (part, tail) = rest.split_at_col_mut(width);
            parts.push(part);
            rest = tail;
        }
        split::for_each_part(parts, chunks, &|i, part| {
            let b = b.subcols(i * cols, part.ncols());
            matmul(part.rb_mut(), accum, a, b, T::one(), Par::Seq);
        });
        return;
    }
    let parts: Vec<&mut [T]> = c.chunks_mut(rows * n).collect();
    split::for_each_part(parts, chunks, &|i, part| {
        let len = part.len() / n;
        let c = MatMut::from_row_major_slice_mut(part, len, n);
        matmul(c, accum, a.subrows(i * rows, len), b, T::one(), Par::Seq);
    });
}

/// [`gemm`] of dense row-major operands cut into the blocks the shape decides but grouped
/// into exactly `chunks` chunks: what the split tests compare across chunk counts.
#[cfg(test)]
pub(crate) fn gemm_in_chunks<T: ComplexField + num_traits::Float + Send>(
    (m, k, n): (usize, usize, usize),
    a: &[T],
    b: &[T],
    chunks: usize,
) -> Vec<T> {
    let mut c = vec![T::zero(); m * n];
    let a = MatRef::from_row_major_slice(a, m, k);
    let b = MatRef::from_row_major_slice(b, k, n);
    let chunks = split::Chunks::exactly(chunks);
    multiply_blocks(&mut c, Accum::Replace, a, b, blocks(m, k, n), chunks);
    c
}

#[cfg(test)]
mod tests {
    use crate::Element;

    fn panics(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let e = std::panic::catch_unwind(f).expect_err("should panic");
        e.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    /// `c = a·b + beta·c` by the definition, for strided operands.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        m: usize,
        k: usize,
        n: usize,
        a: &[f64],
        (rsa, csa): (usize, usize),
        b: &[f64],
        (rsb, csb): (usize, usize),
        c: &mut [f64],
        beta: f64,
    ) {
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|p| a[i * rsa + p * csa] * b[p * rsb + j * csb])
                    .sum();
                c[i * n + j] = dot
                    + if beta == 0.0 {
                        0.0
                    } else {
                        beta * c[i * n + j]
                    };
            }
        }
    }

    #[test]
    fn every_layout_and_beta_matches_the_definition() {
        let (m, k, n) = (5, 7, 6);
        let data: Vec<f64> = (0..200)
            .map(|i| ((i * 37) % 23) as f64 / 7.0 - 1.5)
            .collect();
        // Row-major, transposed (column-major), padded rows, and neither stride unit.
        let a_layouts = [(k, 1), (1, m), (k + 3, 1), (2 * k, 2)];
        let b_layouts = [(n, 1), (1, k), (1, k + 2), (3, 3 * k)];
        for sa in a_layouts {
            for sb in b_layouts {
                for beta in [0.0, 1.0, -0.5] {
                    let mut got: Vec<f64> = (0..m * n).map(|i| i as f64).collect();
                    let mut want = got.clone();
                    f64::gemm(m, k, n, &data, sa, &data[3..], sb, &mut got, beta);
                    naive(m, k, n, &data, sa, &data[3..], sb, &mut want, beta);
                    for (g, w) in got.iter().zip(&want) {
                        assert!(
                            (g - w).abs() < 1e-12,
                            "{sa:?} {sb:?} beta {beta}: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn beta_zero_ignores_nan_in_the_output() {
        let mut c = vec![f32::NAN; 4];
        f32::gemm(
            2,
            1,
            2,
            &[1.0, 2.0],
            (1, 1),
            &[3.0, 4.0],
            (2, 1),
            &mut c,
            0.0,
        );
        assert_eq!(c, [3.0, 4.0, 6.0, 8.0]);
        let mut c = vec![f32::NAN; 4];
        f32::gemm(2, 0, 2, &[], (0, 1), &[], (2, 1), &mut c, 0.0);
        assert_eq!(c, [0.0; 4]);
    }

    #[test]
    fn empty_inner_dimension_scales_the_output_by_beta() {
        let mut c = vec![1.0f64, 2.0, 3.0, 4.0, 9.0];
        f64::gemm(2, 0, 2, &[], (0, 1), &[], (2, 1), &mut c, 0.5);
        // Only the first m*n = 4 elements are the output.
        assert_eq!(c, [0.5, 1.0, 1.5, 2.0, 9.0]);
    }

    #[test]
    fn gemm_rejects_an_output_whose_size_overflows() {
        // m*n = 2^64 wraps to 0: the check must not let an empty output through.
        let msg = panics(|| {
            let mut c: Vec<f32> = Vec::new();
            f32::gemm(
                1 << 32,
                0,
                1 << 32,
                &[],
                (0, 1),
                &[],
                (1 << 32, 1),
                &mut c,
                0.0,
            );
        });
        assert!(msg.contains("output of 4294967296x4294967296"), "{msg}");
    }

    #[test]
    fn gemm_rejects_an_operand_whose_extent_overflows() {
        // (rows-1)*rs wraps to a small number in unchecked arithmetic.
        let msg = panics(|| {
            let mut c = vec![0.0f64; 2];
            f64::gemm(2, 1, 1, &[1.0], (1 << 63, 1), &[1.0], (1, 1), &mut c, 0.0);
        });
        assert!(msg.contains("operand a of 2x1"), "{msg}");
    }

    #[test]
    fn gemm_rejects_an_operand_past_its_buffer() {
        let msg = panics(|| {
            let mut c = vec![0.0f32; 4];
            f32::gemm(2, 2, 2, &[1.0; 4], (2, 1), &[1.0; 3], (1, 2), &mut c, 0.0);
        });
        assert!(msg.contains("operand b of 2x2"), "{msg}");
    }

    #[test]
    fn gemm_ignores_the_stride_of_a_unit_dimension() {
        let mut c = vec![0.0f32; 1];
        f32::gemm(
            1,
            2,
            1,
            &[1.0, 2.0],
            (usize::MAX, 1),
            &[3.0, 4.0],
            (1, usize::MAX),
            &mut c,
            0.0,
        );
        assert_eq!(c, vec![11.0]);
        // A column (n = 1) whose rows are 3 apart, and a row (m = 1) read down a column.
        let mut c = vec![0.0f64; 2];
        f64::gemm(
            2,
            1,
            1,
            &[1.0, 0.0, 0.0, 2.0],
            (3, 7),
            &[5.0],
            (9, 9),
            &mut c,
            0.0,
        );
        assert_eq!(c, vec![5.0, 10.0]);
    }

    #[test]
    fn a_product_split_over_1_2_4_and_8_chunks_gives_the_same_bits() {
        crate::split::install_test_runner();
        // Blocks of rows (200 rows), and blocks of columns (a weight gradient's 64 rows over
        // an inner dimension of 512), with a last block narrower than the rest.
        for (m, k, n) in [(200, 64, 48), (64, 512, 72)] {
            let (rows, cols) = super::blocks(m, k, n);
            assert!(rows < m || cols < n, "{m}x{k}x{n} must be cut into blocks");
            split_product_keeps_its_bits(m, k, n);
        }
    }

    fn split_product_keeps_its_bits(m: usize, k: usize, n: usize) {
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 37) % 101) as f32 / 13.0 - 3.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 53) % 97) as f32 / 11.0 - 4.0)
            .collect();
        let mut whole = vec![0.0f32; m * n];
        f32::gemm(m, k, n, &a, (k, 1), &b, (n, 1), &mut whole, 0.0);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for chunks in crate::split::TEST_CHUNKS {
            let got = super::gemm_in_chunks((m, k, n), &a, &b, chunks);
            assert_eq!(bits(&got), bits(&whole), "{chunks} chunks");
        }
        let mut want = vec![0.0f64; m * n];
        let (a64, b64): (Vec<f64>, Vec<f64>) = (
            a.iter().map(|&v| v as f64).collect(),
            b.iter().map(|&v| v as f64).collect(),
        );
        naive(m, k, n, &a64, (k, 1), &b64, (n, 1), &mut want, 0.0);
        for (g, w) in whole.iter().zip(&want) {
            assert!(
                (*g as f64 - w).abs() < 1e-3 * w.abs().max(1.0),
                "{g} vs {w}"
            );
        }
    }
}
