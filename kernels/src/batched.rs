//! Batched matrix product: the 2-D [`Element::gemm`] applied once per batch entry, with
//! leading batch dimensions that broadcast (NumPy rules), beside its backward. Large enough
//! batches split over entries (the forward) or over gradient matrices (the backward).
//!
//! A broadcast operand is read through a zero batch stride, so it is never copied; its
//! gradient sums the contributions of every batch entry that read it (gemm with β = 1).

use crate::par::Kind;
use crate::shape::{broadcast_strides, numel, walk};
use crate::{gemm, split, Element};

/// The batch layout of a batched product: the broadcast batch shape, and for each batch
/// entry (row-major) the offsets of its `a` and `b` matrices.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchPlan {
    /// The broadcast batch shape (the output's leading dimensions).
    pub batch: Vec<usize>,
    /// Element offset of each batch entry's `m×k` matrix inside `a`.
    pub a_offsets: Vec<usize>,
    /// Element offset of each batch entry's `k×n` matrix inside `b`.
    pub b_offsets: Vec<usize>,
}

impl BatchPlan {
    /// The plan for `a` with batch dimensions `a_batch` of `m×k` matrices and `b` with
    /// `b_batch` of `k×n` matrices, broadcast to `batch`.
    ///
    /// Precondition: both batch shapes broadcast to `batch`.
    pub fn new(
        a_batch: &[usize],
        b_batch: &[usize],
        batch: &[usize],
        mk: usize,
        kn: usize,
    ) -> Self {
        let (sa, sb) = (
            broadcast_strides(a_batch, batch),
            broadcast_strides(b_batch, batch),
        );
        let count = numel(batch);
        let (mut a_offsets, mut b_offsets) = (Vec::with_capacity(count), Vec::with_capacity(count));
        walk(batch, [&sa, &sb], |_, [oa, ob]| {
            a_offsets.push(oa * mk);
            b_offsets.push(ob * kn);
        });
        Self {
            batch: batch.to_vec(),
            a_offsets,
            b_offsets,
        }
    }
}

/// `y[i] = a[i]·b[i]` for every batch entry `i` of `plan`, each `a[i]` an `m×k` and each
/// `b[i]` a `k×n` row-major matrix; the result holds the `m×n` products back to back.
///
/// Precondition: the plan's offsets address whole matrices inside `a` and `b`.
pub fn batched_matmul<T: Element>(
    a: &[T],
    b: &[T],
    plan: &BatchPlan,
    m: usize,
    k: usize,
    n: usize,
) -> Vec<T> {
    let chunks = split::chunks_for(Kind::Product, plan.a_offsets.len(), work(plan, m, k, n));
    batched_matmul_in_chunks(a, b, plan, (m, k, n), chunks)
}

/// The flops of every entry's product together (saturating).
fn work(plan: &BatchPlan, m: usize, k: usize, n: usize) -> usize {
    gemm::flops(m, k, n).saturating_mul(plan.a_offsets.len())
}

/// [`batched_matmul`] with its batch entries grouped into `chunks` chunks; each entry's
/// product is the same whatever the grouping.
pub(crate) fn batched_matmul_in_chunks<T: Element>(
    a: &[T],
    b: &[T],
    plan: &BatchPlan,
    (m, k, n): (usize, usize, usize),
    chunks: split::Chunks,
) -> Vec<T> {
    let mn = m * n;
    let mut y = vec![T::zero(); plan.a_offsets.len() * mn];
    if mn == 0 {
        return y;
    }
    let parts: Vec<&mut [T]> = y.chunks_exact_mut(mn).collect();
    split::for_each_part(parts, chunks, &|i, out| {
        let (oa, ob) = (plan.a_offsets[i], plan.b_offsets[i]);
        T::gemm(
            m,
            k,
            n,
            &a[oa..oa + m * k],
            (k, 1),
            &b[ob..ob + k * n],
            (n, 1),
            out,
            T::zero(),
        );
    });
    y
}

/// For each of the `len / size` matrices of `size` elements back to back in an operand, the
/// batch entries that read it (by `offsets`), in entry order: matrix `j`'s readers are
/// `order[starts[j]..starts[j + 1]]` (a counting sort: a few allocations, not one a matrix).
fn readers(offsets: &[usize], size: usize, len: usize) -> (Vec<usize>, Vec<usize>) {
    let mut starts = vec![0; len / size + 1];
    for &at in offsets {
        starts[at / size + 1] += 1;
    }
    for j in 1..starts.len() {
        starts[j] += starts[j - 1];
    }
    let mut next = starts.clone();
    let mut order = vec![0; offsets.len()];
    for (entry, &at) in offsets.iter().enumerate() {
        order[next[at / size]] = entry;
        next[at / size] += 1;
    }
    (order, starts)
}

/// Gradients of [`batched_matmul`] with respect to `a` and `b` (each only if asked for),
/// given the upstream gradient `gy` of the batched output.
///
/// Precondition: as [`batched_matmul`], and `gy` holds one `m×n` matrix per batch entry.
#[allow(clippy::too_many_arguments)]
pub fn batched_matmul_backward<T: Element>(
    a: &[T],
    b: &[T],
    gy: &[T],
    plan: &BatchPlan,
    (m, k, n): (usize, usize, usize),
    need_a: bool,
    need_b: bool,
) -> (Option<Vec<T>>, Option<Vec<T>>) {
    let chunks = split::chunks_for(Kind::Product, plan.a_offsets.len(), work(plan, m, k, n));
    batched_matmul_backward_in_chunks(a, b, gy, plan, (m, k, n), (need_a, need_b), chunks)
}

/// [`batched_matmul_backward`] with the gradient's matrices grouped into `chunks` chunks.
/// Each gradient matrix is one unit, summed over the entries that read it in entry order,
/// so the result is the same whatever the grouping.
pub(crate) fn batched_matmul_backward_in_chunks<T: Element>(
    a: &[T],
    b: &[T],
    gy: &[T],
    plan: &BatchPlan,
    (m, k, n): (usize, usize, usize),
    (need_a, need_b): (bool, bool),
    chunks: split::Chunks,
) -> (Option<Vec<T>>, Option<Vec<T>>) {
    // Per entry, y = a·b gives ∂L/∂a = gy·bᵀ and ∂L/∂b = aᵀ·gy; an operand broadcast over
    // several entries receives the sum of theirs (β = 1 accumulates into its matrix), in
    // entry order.
    let mn = m * n;
    let grad =
        |len: usize, size: usize, offsets: &[usize], one: &(dyn Fn(usize, &mut [T]) + Sync)| {
            let mut g = vec![T::zero(); len];
            if mn > 0 && size > 0 {
                let (order, starts) = readers(offsets, size, len);
                let parts: Vec<&mut [T]> = g.chunks_exact_mut(size).collect();
                split::for_each_part(parts, chunks, &|j, out| {
                    let entries = &order[starts[j]..starts[j + 1]];
                    entries.iter().for_each(|&entry| one(entry, out))
                });
            }
            g
        };
    let ga = need_a.then(|| {
        grad(a.len(), m * k, &plan.a_offsets, &|i, out| {
            // bᵀ is n×k: element (j, p) is b[p*n + j], so its strides are (1, n).
            let ob = plan.b_offsets[i];
            let g = &gy[i * mn..(i + 1) * mn];
            T::gemm(
                m,
                n,
                k,
                g,
                (n, 1),
                &b[ob..ob + k * n],
                (1, n),
                out,
                T::one(),
            );
        })
    });
    let gb = need_b.then(|| {
        grad(b.len(), k * n, &plan.b_offsets, &|i, out| {
            // aᵀ is k×m: element (p, i) is a[i*k + p], so its strides are (1, k).
            let oa = plan.a_offsets[i];
            let g = &gy[i * mn..(i + 1) * mn];
            T::gemm(
                k,
                m,
                n,
                &a[oa..oa + m * k],
                (1, k),
                g,
                (n, 1),
                out,
                T::one(),
            );
        })
    });
    (ga, gb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, check_vjp, values};
    use crate::matmul;

    #[test]
    fn each_entry_equals_the_2d_product_with_broadcast_batches() {
        let (m, k, n) = (2, 3, 4);
        // a: batch [2, 1], b: batch [3] -> [2, 3].
        let (a, b) = (values(2 * m * k, 1), values(3 * k * n, 2));
        let plan = BatchPlan::new(&[2, 1], &[3], &[2, 3], m * k, k * n);
        let y = batched_matmul(&a, &b, &plan, m, k, n);
        for i in 0..2 {
            for j in 0..3 {
                let want = matmul(&a[i * 6..i * 6 + 6], &b[j * 12..j * 12 + 12], m, k, n);
                let at = (i * 3 + j) * m * n;
                assert_close(&y[at..at + m * n], &want, 1e-12);
            }
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        let (m, k, n) = (2, 3, 2);
        let plan = BatchPlan::new(&[1, 2], &[3, 1], &[3, 2], m * k, k * n);
        let (a, b) = (values(2 * m * k, 3), values(3 * k * n, 4));
        let gy = values(6 * m * n, 5);
        let (ga, gb) = batched_matmul_backward(&a, &b, &gy, &plan, (m, k, n), true, true);
        check_vjp(
            |a| batched_matmul(a, &b, &plan, m, k, n),
            &a,
            &gy,
            &ga.unwrap(),
        );
        check_vjp(
            |b| batched_matmul(&a, b, &plan, m, k, n),
            &b,
            &gy,
            &gb.unwrap(),
        );
    }

    #[test]
    fn every_chunk_count_gives_the_same_bits_as_one_product_per_entry() {
        crate::split::install_test_runner();
        let (m, k, n) = (5, 6, 7);
        // a broadcast over 12 entries (its gradient sums all 12), b one matrix per entry.
        let plan = BatchPlan::new(&[1], &[12], &[12], m * k, k * n);
        let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        let (a, b, gy) = (
            f32s(values(m * k, 1)),
            f32s(values(12 * k * n, 2)),
            f32s(values(12 * m * n, 3)),
        );
        // The kernel before the split: entry by entry, accumulating into the gradient.
        let mut y_want = vec![0.0f32; 12 * m * n];
        let mut ga_want = vec![0.0f32; m * k];
        for i in 0..12 {
            let (bi, gi) = (&b[i * k * n..][..k * n], &gy[i * m * n..][..m * n]);
            f32::gemm(
                m,
                k,
                n,
                &a,
                (k, 1),
                bi,
                (n, 1),
                &mut y_want[i * m * n..],
                0.0,
            );
            f32::gemm(m, n, k, gi, (n, 1), bi, (1, n), &mut ga_want, 1.0);
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for n_chunks in crate::split::TEST_CHUNKS {
            let chunks = crate::split::Chunks::exactly(n_chunks);
            let y = batched_matmul_in_chunks(&a, &b, &plan, (m, k, n), chunks);
            assert_eq!(bits(&y), bits(&y_want), "forward, {n_chunks} chunks");
            let (ga, gb) = batched_matmul_backward_in_chunks(
                &a,
                &b,
                &gy,
                &plan,
                (m, k, n),
                (true, true),
                chunks,
            );
            assert_eq!(bits(&ga.unwrap()), bits(&ga_want), "∂a, {n_chunks} chunks");
            let (_, gb_one) = batched_matmul_backward_in_chunks(
                &a,
                &b,
                &gy,
                &plan,
                (m, k, n),
                (false, true),
                crate::split::Chunks::exactly(1),
            );
            assert_eq!(
                bits(&gb.unwrap()),
                bits(&gb_one.unwrap()),
                "∂b, {n_chunks} chunks"
            );
        }
    }
}
