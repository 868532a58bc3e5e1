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

/// Checks that every index the strided `rows×cols` view touches lies inside `len`.
fn check_extent(len: usize, rows: usize, cols: usize, rs: usize, cs: usize, what: &str) {
    if rows == 0 || cols == 0 {
        return;
    }
    let last = (rows - 1) * rs + (cols - 1) * cs;
    assert!(
        last < len,
        "gemm: operand {what} of {rows}x{cols} with strides ({rs},{cs}) overruns its buffer of {len}"
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
                check_extent(a.len(), m, k, rsa, csa, "a");
                check_extent(b.len(), k, n, rsb, csb, "b");
                assert!(
                    c.len() >= m * n,
                    "gemm: output of {m}x{n} overruns its buffer of {}",
                    c.len()
                );
                if m == 0 || n == 0 {
                    return;
                }
                // SAFETY:
                // - every index the strided views of `a` and `b` reach was bounds-checked above;
                // - `c` is a dense row-major m×n buffer of at least m*n elements, checked above;
                // - `c` is a unique borrow, so it cannot alias `a` or `b`.
                unsafe {
                    $gemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        rsa as isize,
                        csa as isize,
                        b.as_ptr(),
                        rsb as isize,
                        csb as isize,
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
