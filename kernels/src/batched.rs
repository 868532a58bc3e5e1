//! Batched matrix product: the 2-D [`Element::gemm`] applied once per batch entry, with
//! leading batch dimensions that broadcast (NumPy rules), beside its backward.
//!
//! A broadcast operand is read through a zero batch stride, so it is never copied; its
//! gradient sums the contributions of every batch entry that read it (gemm with β = 1).

use crate::shape::{broadcast_strides, numel, walk};
use crate::Element;

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
    let mn = m * n;
    let mut y = vec![T::zero(); plan.a_offsets.len() * mn];
    if mn == 0 {
        return y;
    }
    for ((out, &oa), &ob) in y
        .chunks_exact_mut(mn)
        .zip(&plan.a_offsets)
        .zip(&plan.b_offsets)
    {
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
    }
    y
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
    // Per entry, y = a·b gives ∂L/∂a = gy·bᵀ and ∂L/∂b = aᵀ·gy; an operand broadcast over
    // several entries receives the sum of theirs (β = 1 accumulates into the buffer).
    let mn = m * n;
    let entries = || plan.a_offsets.iter().zip(&plan.b_offsets).enumerate();
    let ga = need_a.then(|| {
        let mut ga = vec![T::zero(); a.len()];
        if mn > 0 {
            for (i, (&oa, &ob)) in entries() {
                let g = &gy[i * mn..(i + 1) * mn];
                // bᵀ is n×k: element (j, p) is b[p*n + j], so its strides are (1, n).
                let out = &mut ga[oa..oa + m * k];
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
            }
        }
        ga
    });
    let gb = need_b.then(|| {
        let mut gb = vec![T::zero(); b.len()];
        if mn > 0 {
            for (i, (&oa, &ob)) in entries() {
                let g = &gy[i * mn..(i + 1) * mn];
                // aᵀ is k×m: element (p, i) is a[i*k + p], so its strides are (1, k).
                let out = &mut gb[ob..ob + k * n];
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
            }
        }
        gb
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
}
