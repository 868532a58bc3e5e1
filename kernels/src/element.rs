//! The element types kernels work over: `f32` (the default) and `f64` (gradchecks).

use std::fmt::{Debug, Display};
use std::iter::Sum;

/// A floating-point element type that every kernel supports.
pub trait Element:
    num_traits::Float + Default + Debug + Display + Sum + Send + Sync + 'static
{
    /// Name used in error messages and exports (`"f32"`, `"f64"`).
    const NAME: &'static str;

    /// Converts from `f64`, rounding as `as` does.
    fn from_f64(v: f64) -> Self;

    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;

    /// `c = alpha * a·b + beta * c` over strided row/column layouts, as
    /// [`matrixmultiply::sgemm`] defines them: `a` is `m×k`, `b` is `k×n`, `c` is `m×n`.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: &[Self],
        a_strides: (usize, usize),
        b: &[Self],
        b_strides: (usize, usize),
        c: &mut [Self],
        beta: Self,
    );
}

/// Checks that every index the strided `rows×cols` view touches lies inside `len`, with
/// checked arithmetic (an overflowing extent is out of bounds), and returns the strides as
/// the `isize`s that `matrixmultiply` takes. A dimension of size 1 is never stepped along,
/// so its stride is passed as 0 whatever it is.
///
/// Panics, naming the operand, its dimensions and strides, when the view does not fit.
fn check_extent(
    len: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
    what: &str,
) -> (isize, isize) {
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
    // A slice of a non-zero-sized type holds at most isize::MAX elements, and every stride
    // used to step (its dimension has more than one index) is at most `last < len`.
    let step = |dim: usize, s: usize| if dim > 1 { s as isize } else { 0 };
    (step(rows, rs), step(cols, cs))
}

/// Checks that a dense row-major `m×n` output fits in `len` elements, with checked
/// arithmetic. Panics, naming the dimensions, otherwise.
fn check_output(len: usize, m: usize, n: usize) {
    assert!(
        m.checked_mul(n).is_some_and(|mn| mn <= len),
        "gemm: output of {m}x{n} overruns its buffer of {len}"
    );
}

macro_rules! impl_element {
    ($t:ty, $name:literal, $gemm:path) => {
        impl Element for $t {
            const NAME: &'static str = $name;

            fn from_f64(v: f64) -> Self {
                v as $t
            }

            fn to_f64(self) -> f64 {
                self as f64
            }

            fn gemm(
                m: usize,
                k: usize,
                n: usize,
                a: &[Self],
                (rsa, csa): (usize, usize),
                b: &[Self],
                (rsb, csb): (usize, usize),
                c: &mut [Self],
                beta: Self,
            ) {
                let (rsa, csa) = check_extent(a.len(), m, k, rsa, csa, "a");
                let (rsb, csb) = check_extent(b.len(), k, n, rsb, csb, "b");
                check_output(c.len(), m, n);
                if m == 0 || n == 0 {
                    return;
                }
                // SAFETY: `matrixmultiply` reads a[i*rsa + p*csa] for i < m, p < k,
                // b[p*rsb + j*csb] for p < k, j < n, and writes c[i*n + j] for i < m, j < n.
                // - `check_extent` proved, in checked arithmetic, that the largest index of
                //   each strided view of `a` and `b` is below its slice's length (with k == 0
                //   nothing of `a` or `b` is read);
                // - `check_output` proved m*n <= c.len() without overflow, so the largest
                //   index of the dense output, (m-1)*n + n-1 = m*n - 1, is in bounds, and
                //   n <= c.len() <= isize::MAX makes the row stride `n as isize` exact;
                // - the strides returned by `check_extent` are at most that largest index
                //   (below isize::MAX), so the casts to isize do not wrap;
                // - `c` is a unique borrow, so it cannot alias `a` or `b`.
                unsafe {
                    $gemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        rsa,
                        csa,
                        b.as_ptr(),
                        rsb,
                        csb,
                        beta,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                }
            }
        }
    };
}

impl_element!(f32, "f32", matrixmultiply::sgemm);
impl_element!(f64, "f64", matrixmultiply::dgemm);

#[cfg(test)]
mod tests {
    use super::*;

    fn panics(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let e = std::panic::catch_unwind(f).expect_err("should panic");
        e.downcast_ref::<String>().cloned().unwrap_or_default()
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
    }
}
