//! Dense matrix product over [`Element::gemm`], beside its backward.
//!
//! The backward reads the transposed operands through swapped strides instead of
//! materialising them.

use crate::shape::checked_numel;
use crate::Element;

/// Whether `len` is exactly `rows * cols`, in checked arithmetic.
fn fills(len: usize, rows: usize, cols: usize) -> bool {
    checked_numel(&[rows, cols]) == Some(len)
}

/// `a·b` for a row-major `m×k` matrix `a` and `k×n` matrix `b`; the result is `m×n`.
///
/// Precondition: `a.len() == m * k` and `b.len() == k * n`.
///
/// # Panics
///
/// If a precondition is broken, or `m * n` overflows `usize` (the engine reports that as an
/// error before calling this).
pub fn matmul<T: Element>(a: &[T], b: &[T], m: usize, k: usize, n: usize) -> Vec<T> {
    assert!(
        fills(a.len(), m, k) && fills(b.len(), k, n),
        "matmul: data does not match {m}x{k}·{k}x{n}"
    );
    let len = checked_numel(&[m, n]).unwrap_or_else(|| {
        panic!("matmul: the output of {m}x{n} has more elements than usize can count")
    });
    let mut y = vec![T::zero(); len];
    T::gemm(m, k, n, a, (k, 1), b, (n, 1), &mut y, T::zero());
    y
}

/// Gradients of `y = a·b` with respect to `a` and `b` (each only if asked for), given the
/// upstream `m×n` gradient `gy`.
///
/// Precondition: as [`matmul`], and `gy.len() == m * n`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward<T: Element>(
    a: &[T],
    b: &[T],
    gy: &[T],
    m: usize,
    k: usize,
    n: usize,
    need_a: bool,
    need_b: bool,
) -> (Option<Vec<T>>, Option<Vec<T>>) {
    assert!(
        fills(a.len(), m, k) && fills(b.len(), k, n) && fills(gy.len(), m, n),
        "matmul_backward: data does not match {m}x{k}·{k}x{n}"
    );
    // y_ij = Σ_p a_ip b_pj, so ∂L/∂a_ip = Σ_j gy_ij b_pj = (gy·bᵀ)_ip
    // and ∂L/∂b_pj = Σ_i a_ip gy_ij = (aᵀ·gy)_pj.
    let ga = need_a.then(|| {
        let mut ga = vec![T::zero(); m * k];
        // bᵀ is n×k: element (j, p) is b[p*n + j], so its strides are (1, n).
        T::gemm(m, n, k, gy, (n, 1), b, (1, n), &mut ga, T::zero());
        ga
    });
    let gb = need_b.then(|| {
        let mut gb = vec![T::zero(); k * n];
        // aᵀ is k×m: element (p, i) is a[i*k + p], so its strides are (1, k).
        T::gemm(k, m, n, a, (1, k), gy, (n, 1), &mut gb, T::zero());
        gb
    });
    (ga, gb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, check_vjp, values};

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut y = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    y[i * n + j] += a[i * k + p] * b[p * n + j];
                }
            }
        }
        y
    }

    const SIZES: [(usize, usize, usize); 5] =
        [(3, 4, 5), (1, 7, 1), (6, 1, 2), (4, 4, 4), (17, 9, 13)];

    #[test]
    fn matches_naive_triple_loop() {
        for (m, k, n) in SIZES {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            assert_close(&matmul(&a, &b, m, k, n), &naive(&a, &b, m, k, n), 1e-12);
        }
    }

    #[test]
    fn backward_matches_finite_differences() {
        for (m, k, n) in SIZES {
            let (a, b, gy) = (values(m * k, 3), values(k * n, 4), values(m * n, 5));
            let (ga, gb) = matmul_backward(&a, &b, &gy, m, k, n, true, true);
            check_vjp(|a| matmul(a, &b, m, k, n), &a, &gy, &ga.unwrap());
            check_vjp(|b| matmul(&a, b, m, k, n), &b, &gy, &gb.unwrap());
        }
    }

    #[test]
    fn output_size_overflow_panics_instead_of_writing_past_an_empty_buffer() {
        let r = std::panic::catch_unwind(|| matmul::<f32>(&[], &[], 1 << 32, 0, 1 << 32));
        assert!(r.is_err());
    }

    #[test]
    fn f32_and_empty_inner_dimension() {
        assert_eq!(matmul(&[1.0f32, 2.0], &[3.0, 4.0], 1, 2, 1), vec![11.0]);
        assert_eq!(matmul::<f32>(&[], &[], 2, 0, 3), vec![0.0; 6]);
        let (ga, gb) = matmul_backward(&[1.0f32, 2.0], &[3.0, 4.0], &[1.0], 1, 2, 1, false, true);
        assert!(ga.is_none());
        assert_eq!(gb.unwrap(), vec![1.0, 2.0]);
    }
}
