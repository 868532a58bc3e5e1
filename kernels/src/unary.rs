//! Elementwise unary ops, each declared once in a table with its forward, its backward and
//! the derivation that links them.
//!
//! A backward receives the input `x`, the saved output `y` and the upstream gradient `g`,
//! and reuses `y` wherever the derivative is cheaper in terms of it. `exp`, `tanh` and the
//! sigmoid use the vectorisable kernels of `transcendental.rs`.

use crate::par::Kind;
use crate::{split, Element};

/// Flops an elementwise op is taken to cost per element, for sizing its chunks (a
/// transcendental costs tens; a cheap op's large arrays are memory-bound anyway).
const FLOPS: usize = 20;

/// Below this many elements the forward collects directly (no zeroed buffer, no split).
const SPLIT_LEN: usize = 2 * split::UNIT_FLOPS / FLOPS;

/// An elementwise unary op.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    /// `-x`
    Neg,
    /// `sin x`
    Sin,
    /// `cos x`
    Cos,
    /// `e^x`
    Exp,
    /// Natural logarithm `ln x`.
    Ln,
    /// Hyperbolic tangent.
    Tanh,
    /// `max(x, 0)`; its derivative at 0 is taken as 0. NaN propagates (`relu(NaN)` is NaN,
    /// as in PyTorch and NumPy).
    Relu,
    /// Logistic sigmoid `1 / (1 + e^-x)`.
    Sigmoid,
    /// Square root.
    Sqrt,
    /// `x^p` for a fixed real exponent `p`; for `p = 0` the derivative is 0 everywhere
    /// (also at `x = 0`, where `p·x^(p-1)` would be `0·∞`).
    Powf(f64),
    /// `|x|`; its derivative at 0 is taken as 0 (PyTorch's `sign(x)`).
    Abs,
    /// The error function `erf x = 2/√π ∫₀ˣ e^(-t²) dt`.
    Erf,
}

/// Declares every op once: `pattern => "name", |x| forward, |x, y, g| backward;`.
/// It expands to [`Unary::name`], [`unary_forward`], [`unary_backward`] and
/// [`unary_backward_in_place`], each matching
/// the op once per call rather than once per element.
macro_rules! unary_ops {
    ($($op:pat => $name:literal,
        |$x:ident| $forward:expr,
        |$bx:ident, $by:ident, $g:ident| $backward:expr;)*) => {
        impl Unary {
            /// Lower-case name used in error messages and exports (`"neg"`, `"powf"`, ...).
            #[allow(unused_variables)]
            pub fn name(self) -> &'static str {
                match self {
                    $($op => $name,)*
                }
            }
        }

        /// Applies `op` to every element of `x` (split into chunks when large).
        pub fn unary_forward<T: Element>(op: Unary, x: &[T]) -> Vec<T> {
            if x.len() < SPLIT_LEN {
                return match op {
                    $($op => x.iter().map(|&$x| $forward).collect(),)*
                };
            }
            let mut y = vec![T::zero(); x.len()];
            split::for_each_block(Kind::Elementwise, &mut y, FLOPS, &|start, part| {
                let x = &x[start..start + part.len()];
                match op {
                    $($op => part.iter_mut().zip(x).for_each(|(o, &$x)| *o = $forward),)*
                }
            });
            y
        }

        /// Gradient with respect to `x` of `y = op(x)`, given the saved output `y` and the
        /// upstream gradient `gy`.
        ///
        /// Precondition: `x`, `y` and `gy` have the same length.
        pub fn unary_backward<T: Element>(op: Unary, x: &[T], y: &[T], gy: &[T]) -> Vec<T> {
            let mut g = gy.to_vec();
            unary_backward_in_place(op, x, y, &mut g);
            g
        }

        /// [`unary_backward`] written over the upstream gradient's own buffer: `g` holds
        /// `gy` on entry and the gradient with respect to `x` on return. Allocates nothing.
        ///
        /// Precondition: `x`, `y` and `g` have the same length.
        pub fn unary_backward_in_place<T: Element>(op: Unary, x: &[T], y: &[T], g: &mut [T]) {
            assert!(
                x.len() == y.len() && y.len() == g.len(),
                "{}_backward: lengths {}, {}, {} differ",
                op.name(),
                x.len(),
                y.len(),
                g.len()
            );
            split::for_each_block(Kind::Elementwise, g, FLOPS, &|start, g| {
                let end = start + g.len();
                let triples = x[start..end].iter().zip(&y[start..end]).zip(g.iter_mut());
                match op {
                    $($op => triples.for_each(|((&$bx, &$by), slot)| {
                        let $g = *slot;
                        *slot = $backward;
                    }),)*
                }
            });
        }
    };
}

unary_ops! {
    // d/dx (-x) = -1
    Unary::Neg => "neg", |x| -x, |_x, _y, g| -g;
    // d/dx sin x = cos x
    Unary::Sin => "sin", |x| x.sin(), |x, _y, g| g * x.cos();
    // d/dx cos x = -sin x
    Unary::Cos => "cos", |x| x.cos(), |x, _y, g| -g * x.sin();
    // d/dx e^x = e^x = y, reusing the saved output
    Unary::Exp => "exp", |x| x.exp_vec(), |_x, y, g| g * y;
    // d/dx ln x = 1 / x
    Unary::Ln => "ln", |x| x.ln(), |x, _y, g| g / x;
    // d/dx tanh x = 1 - tanh(x)^2 = 1 - y^2, reusing the saved output
    Unary::Tanh => "tanh", |x| x.tanh_vec(), |_x, y, g| g * (T::one() - y * y);
    // d/dx max(x, 0) = [x > 0], choosing 0 at the kink; written `x <= 0` so NaN passes
    // through the forward
    Unary::Relu => "relu",
        |x| if x <= T::zero() { T::zero() } else { x },
        |x, _y, g| if x > T::zero() { g } else { T::zero() };
    // d/dx σ(x) = σ(x)(1 - σ(x)) = y(1 - y), reusing the saved output
    Unary::Sigmoid => "sigmoid",
        |x| T::one() / (T::one() + (-x).exp_vec()),
        |_x, y, g| g * y * (T::one() - y);
    // d/dx √x = 1 / (2√x) = 0.5 / y, reusing the saved output
    Unary::Sqrt => "sqrt", |x| x.sqrt(), |_x, y, g| g * T::from_f64(0.5) / y;
    // d/dx x^p = p x^(p-1); for p = 0, x^0 = 1 is constant and the derivative is 0 (the
    // formula would give 0·∞ = NaN at x = 0)
    Unary::Powf(p) => "powf",
        |x| x.powf(T::from_f64(p)),
        |x, _y, g| if p == 0.0 { T::zero() } else { g * T::from_f64(p) * x.powf(T::from_f64(p - 1.0)) };
    // d/dx |x| = sign(x), choosing 0 at the kink as PyTorch does; NaN passes through
    Unary::Abs => "abs",
        |x| x.abs(),
        |x, _y, g| if x > T::zero() { g } else if x < T::zero() { -g } else if x == T::zero() { T::zero() } else { x };
    // d/dx erf x = 2/√π e^(-x²)
    Unary::Erf => "erf",
        |x| x.erf(),
        |x, _y, g| g * T::from_f64(std::f64::consts::FRAC_2_SQRT_PI) * (-x * x).exp_vec();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck::{assert_close, check_vjp, values};

    const ALL: [Unary; 12] = [
        Unary::Neg,
        Unary::Sin,
        Unary::Cos,
        Unary::Exp,
        Unary::Ln,
        Unary::Tanh,
        Unary::Relu,
        Unary::Sigmoid,
        Unary::Sqrt,
        Unary::Powf(2.5),
        Unary::Abs,
        Unary::Erf,
    ];

    #[test]
    fn every_backward_matches_finite_differences() {
        for op in ALL {
            let mut x = values(7, 11);
            if matches!(op, Unary::Ln | Unary::Sqrt | Unary::Powf(_)) {
                x.iter_mut().for_each(|v| *v = v.abs() + 0.5);
            }
            if matches!(op, Unary::Relu | Unary::Abs) {
                x.iter_mut().for_each(|v| *v += v.signum() * 0.1);
            }
            let gy = values(7, 12);
            let y = unary_forward(op, &x);
            let gx = unary_backward(op, &x, &y, &gy);
            check_vjp(|x| unary_forward(op, x), &x, &gy, &gx);
        }
    }

    #[test]
    fn split_elementwise_keeps_its_bits() {
        let n = 8 * 4096 + 123;
        let (x, gy) = (values(n, 21), values(n, 22));
        for op in ALL {
            let x: Vec<f64> = if matches!(op, Unary::Ln | Unary::Sqrt | Unary::Powf(_)) {
                x.iter().map(|v| v.abs() + 0.5).collect()
            } else {
                x.clone()
            };
            let run = |chunks| {
                split::with_chunks(chunks, || {
                    let y = unary_forward(op, &x);
                    let g = unary_backward(op, &x, &y, &gy);
                    (split::bits(&y), split::bits(&g))
                })
            };
            let whole = run(1);
            for chunks in split::TEST_CHUNKS {
                assert!(run(chunks) == whole, "{} at {chunks} chunks", op.name());
            }
        }
    }

    #[test]
    fn names_are_lower_case() {
        let names: Vec<_> = ALL.iter().map(|op| op.name()).collect();
        assert_eq!(
            names,
            [
                "neg", "sin", "cos", "exp", "ln", "tanh", "relu", "sigmoid", "sqrt", "powf", "abs",
                "erf"
            ]
        );
    }

    #[test]
    fn closed_forms() {
        // tanh(0) = 0, so dy/dx = 1 - 0 = 1; sigmoid(0) = 1/2, so dy/dx = 1/4.
        let x = [0.0f64];
        for (op, slope) in [(Unary::Tanh, 1.0), (Unary::Sigmoid, 0.25)] {
            let y = unary_forward(op, &x);
            assert_close(&unary_backward(op, &x, &y, &[1.0]), &[slope], 1e-15);
        }
        // d/dx x^3 at x = 2 is 3 * 2^2 = 12.
        let y = unary_forward(Unary::Powf(3.0), &[2.0f64]);
        assert_close(&y, &[8.0], 1e-12);
        assert_close(
            &unary_backward(Unary::Powf(3.0), &[2.0], &y, &[1.0]),
            &[12.0],
            1e-12,
        );
    }

    #[test]
    fn relu_kink_has_zero_slope() {
        let x = [-1.0f32, 0.0, 2.0];
        let y = unary_forward(Unary::Relu, &x);
        assert_eq!(y, vec![0.0, 0.0, 2.0]);
        assert_eq!(
            unary_backward(Unary::Relu, &x, &y, &[5.0; 3]),
            vec![0.0, 0.0, 5.0]
        );
    }

    #[test]
    fn abs_slope_is_the_sign_and_zero_at_the_kink() {
        let x = [-2.0f64, -0.0, 0.0, 3.0, f64::NAN];
        let y = unary_forward(Unary::Abs, &x);
        assert_eq!(&y[..4], &[2.0, 0.0, 0.0, 3.0]);
        let g = unary_backward(Unary::Abs, &x, &y, &[5.0; 5]);
        assert_eq!(&g[..4], &[-5.0, 0.0, 0.0, 5.0]);
        assert!(y[4].is_nan() && g[4].is_nan());
    }

    #[test]
    fn erf_matches_known_values_to_double_precision() {
        // erf at these points to 17 significant digits (mpmath.erf at 50 digits).
        let cases = [
            (0.0, 0.0),
            (1e-10, 1.128_379_167_095_512_6e-10),
            (0.1, 0.112_462_916_018_284_9),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (1.0 / std::f64::consts::SQRT_2, 0.682_689_492_137_085_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.0, 0.999_977_909_503_001_4),
            (6.0, 1.0),
        ];
        for (x, want) in cases {
            for (x, want) in [(x, want), (-x, -want)] {
                let got = Element::erf(x);
                assert!(
                    (got - want).abs() <= 1e-15,
                    "erf({x}) = {got:e}, want {want:e}"
                );
                let got32 = Element::erf(x as f32);
                assert!(
                    (got32 as f64 - want).abs() <= 2e-7,
                    "f32 erf({x}) = {got32}"
                );
            }
        }
        // d/dx erf at 0 is 2/√π.
        let g = unary_backward(Unary::Erf, &[0.0f64], &[0.0], &[1.0]);
        assert_close(&g, &[std::f64::consts::FRAC_2_SQRT_PI], 1e-16);
    }

    #[test]
    fn sigmoid_saturates_without_nan() {
        let y = unary_forward(Unary::Sigmoid, &[-1000.0f32, 1000.0]);
        assert_eq!(y, vec![0.0, 1.0]);
    }
}
