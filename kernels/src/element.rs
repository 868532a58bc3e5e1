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

    /// `e^x` by a straight-line kernel (`transcendental.rs`), which a loop over a slice
    /// vectorises, for f32 (within 1 ε of `Float::exp`); std's `exp` for f64.
    fn exp_vec(self) -> Self;

    /// `tanh x` by a straight-line kernel (`transcendental.rs`) for f32 (within 2 ε of
    /// `Float::tanh`); std's `tanh` for f64.
    fn tanh_vec(self) -> Self;

    /// The error function `erf x = 2/√π ∫₀ˣ e^(-t²) dt`, from `libm` (musl's, within 1 ulp).
    fn erf(self) -> Self;

    /// `c = a·b + beta·c` for an `m×k` `a` and a `k×n` `b`, each read through its
    /// (row, column) strides, into the dense row-major `m×n` start of `c`. With `beta == 0`
    /// the old contents of `c` are ignored (NaN included).
    ///
    /// # Panics
    ///
    /// If a strided view reaches past its slice or `c` holds fewer than `m * n` elements
    /// (checked without overflow); the message names the operand, its shape and strides.
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

macro_rules! impl_element {
    ($t:ty, $name:literal, $exp:path, $tanh:path, $erf:path) => {
        impl Element for $t {
            const NAME: &'static str = $name;

            fn from_f64(v: f64) -> Self {
                v as $t
            }

            fn to_f64(self) -> f64 {
                self as f64
            }

            // Always inlined: a call per element would keep a loop over a slice scalar.
            #[inline(always)]
            fn exp_vec(self) -> Self {
                $exp(self)
            }

            #[inline(always)]
            fn tanh_vec(self) -> Self {
                $tanh(self)
            }

            #[inline]
            fn erf(self) -> Self {
                $erf(self)
            }

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
            ) {
                crate::gemm::gemm(m, k, n, a, a_strides, b, b_strides, c, beta)
            }
        }
    };
}

impl_element!(
    f32,
    "f32",
    crate::transcendental::exp_f32,
    crate::transcendental::tanh_f32,
    libm::erff
);
// f64 keeps std's: see `transcendental::wide`.
impl_element!(f64, "f64", f64::exp, f64::tanh, libm::erf);
