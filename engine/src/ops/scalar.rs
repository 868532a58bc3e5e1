//! Ops between a tensor and a plain number: `t + c`, `t - c`, `t * c`, `t / c`, the same
//! with the number on the left (`c + t`, `c - t`, `c * t`, `c / t`, for `f32` and `f64`),
//! and `-t`. None of them can fail, so they have no `try_` form.

use crate::sync::Arc;
use crate::Tensor;
use backflow_kernels::Element;
use std::ops::{Add, Div, Mul, Neg, Sub};

impl<T: Element> Tensor<T> {
    /// `self * c + d`, elementwise; one node whatever `c` and `d`. The operators with a
    /// plain number, on either side, are written with it (`c / t` has its own node).
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![1.0, 2.0], &[2]).unwrap().requires_grad();
    /// assert_eq!(x.affine(3.0, 1.0).to_vec(), vec![4.0, 7.0]);
    /// assert_eq!((1.0 - &x * 2.0).to_vec(), (1.0 - 2.0 * &x).to_vec());
    /// let y = 2.0 / &x;
    /// assert_eq!(y.to_vec(), vec![2.0, 1.0]);
    /// y.sum().backward().unwrap();
    /// assert_eq!(x.grad().unwrap().to_vec(), vec![-2.0, -0.5]); // -2 / x²
    /// ```
    #[track_caller]
    pub fn affine(&self, c: T, d: T) -> Tensor<T> {
        let data = self.data().iter().map(|&x| x * c + d).collect();
        let op = if d == T::zero() {
            "mul_scalar"
        } else if c == T::one() {
            "add_scalar"
        } else {
            "affine"
        };
        let shape = self.shape().to_vec();
        Tensor::record_owned(op, Arc::new(data), shape, &[self], move |gy, ctx, out| {
            // d/dx (c·x + d) = c: the gradient passes through when c = 1, and is scaled in
            // its own buffer when nothing else holds it.
            let g = if c == T::one() {
                gy
            } else if ctx.create_graph {
                gy.affine(c, T::zero())
            } else {
                gy.map_reusing(|g| g * c)
            };
            out.push(Some(g));
            Ok(())
        })
    }
}

impl<T: Element> Tensor<T> {
    /// `self / c`, elementwise (the operator `&t / c`); one node. A true division, not a
    /// product with `1 / c`: that rounds twice, and is infinite when `c` is subnormal.
    #[track_caller]
    fn div_scalar(&self, c: T) -> Tensor<T> {
        let data = self.data().iter().map(|&x| x / c).collect();
        let shape = self.shape().to_vec();
        Tensor::record_owned(
            "div_scalar",
            Arc::new(data),
            shape,
            &[self],
            move |gy, ctx, out| {
                // d/dx (x / c) = 1 / c
                let g = if ctx.create_graph {
                    gy.div_scalar(c)
                } else {
                    gy.map_reusing(|g| g / c)
                };
                out.push(Some(g));
                Ok(())
            },
        )
    }

    /// `c / self`, elementwise (the operator `c / &t`); one node.
    #[track_caller]
    fn scalar_div(&self, c: T) -> Tensor<T> {
        let data = self.data().iter().map(|&x| c / x).collect();
        let x = self.clone();
        Tensor::from_op(
            "scalar_div",
            data,
            self.shape().to_vec(),
            &[self],
            move |gy, ctx| {
                // d/dx (c / x) = -c / x²
                let g = if ctx.create_graph {
                    &(gy * -c) / &(&x * &x)
                } else {
                    let g = x
                        .data()
                        .iter()
                        .zip(gy.data())
                        .map(|(&x, &g)| -c * g / (x * x))
                        .collect();
                    Tensor::raw(g, x.shape().to_vec())
                };
                Ok(vec![Some(g)])
            },
        )
    }
}

/// `c ∘ t` for a plain number `c` of type `$t` on the left, as `$body` on `t: &Tensor<$t>`.
macro_rules! scalar_on_left {
    ($t:ty, $trait:ident, $method:ident, |$x:ident, $c:ident| $body:expr) => {
        /// Elementwise with a plain number on the left.
        impl $trait<&Tensor<$t>> for $t {
            type Output = Tensor<$t>;
            #[track_caller]
            fn $method(self, $x: &Tensor<$t>) -> Tensor<$t> {
                let $c = self;
                $body
            }
        }

        /// Elementwise with a plain number on the left.
        impl $trait<Tensor<$t>> for $t {
            type Output = Tensor<$t>;
            #[track_caller]
            fn $method(self, t: Tensor<$t>) -> Tensor<$t> {
                let ($x, $c) = (&t, self);
                $body
            }
        }
    };
}

macro_rules! scalar_on_left_ops {
    ($($t:ty),*) => {$(
        scalar_on_left!($t, Add, add, |x, c| x.affine(1.0, c));
        scalar_on_left!($t, Sub, sub, |x, c| x.affine(-1.0, c));
        scalar_on_left!($t, Mul, mul, |x, c| x.affine(c, 0.0));
        scalar_on_left!($t, Div, div, |x, c| x.scalar_div(c));
    )*};
}

scalar_on_left_ops!(f32, f64);

macro_rules! scalar_operator {
    ($trait:ident, $method:ident, |$x:ident, $c:ident| $body:expr) => {
        /// Elementwise with a plain number.
        impl<T: Element> $trait<T> for &Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, $c: T) -> Tensor<T> {
                let $x = self;
                $body
            }
        }

        /// Elementwise with a plain number.
        impl<T: Element> $trait<T> for Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, $c: T) -> Tensor<T> {
                let $x = &self;
                $body
            }
        }
    };
}

scalar_operator!(Add, add, |x, c| x.affine(T::one(), c));
scalar_operator!(Sub, sub, |x, c| x.affine(T::one(), -c));
scalar_operator!(Mul, mul, |x, c| x.affine(c, T::zero()));
scalar_operator!(Div, div, |x, c| x.div_scalar(c));

/// `-t`: elementwise negation, recorded.
impl<T: Element> Neg for &Tensor<T> {
    type Output = Tensor<T>;
    #[track_caller]
    fn neg(self) -> Tensor<T> {
        self.neg_op()
    }
}

/// `-t`: elementwise negation, recorded.
impl<T: Element> Neg for Tensor<T> {
    type Output = Tensor<T>;
    #[track_caller]
    fn neg(self) -> Tensor<T> {
        self.neg_op()
    }
}
