//! `+ - * /` between tensors, with NumPy broadcasting, as methods and operators.

use super::broadcast::broadcast_pair;
use crate::error::Result;
use crate::sync::Arc;
use crate::Tensor;
use backflow_kernels::{binary_backward, binary_forward, reduce_to, Binary, Element};
use std::ops::{Add, Div, Mul, Sub};

impl<T: Element> Tensor<T> {
    #[track_caller]
    fn binary(&self, other: &Tensor<T>, op: Binary) -> Result<Tensor<T>> {
        broadcast_pair::<T>(op.name(), self.shape(), other.shape())?;
        let (data, shape) =
            binary_forward(op, self.data(), self.shape(), other.data(), other.shape());
        // add and sub need only the shapes; mul and div save their inputs.
        let saved = matches!(op, Binary::Mul | Binary::Div).then(|| (self.clone(), other.clone()));
        let (sa, sb) = (self.shape().to_vec(), other.shape().to_vec());
        Ok(Tensor::record_owned(
            op.name(),
            Arc::new(data),
            shape,
            &[self, other],
            move |gy, ctx, out| {
                let (na, nb) = (ctx.needs[0], ctx.needs[1]);
                let (ga, gb) = match (&saved, ctx.create_graph) {
                    (None, false) => add_sub_grads(op, gy, &sa, &sb, na, nb),
                    (Some((a, b)), false) => {
                        let (ga, gb) =
                            binary_backward(op, a.data(), &sa, b.data(), &sb, gy.data(), na, nb);
                        (
                            ga.map(|g| Tensor::raw(g, sa.clone())),
                            gb.map(|g| Tensor::raw(g, sb.clone())),
                        )
                    }
                    (_, true) => {
                        // The same derivatives, recorded: d(a+b) = (1, 1), d(a-b) = (1, -1),
                        // d(ab) = (b, a), d(a/b) = (1/b, -a/b²); summed back to each shape.
                        let (ga, gb) = match (op, &saved) {
                            (Binary::Add, _) => (gy.clone(), gy.clone()),
                            (Binary::Sub, _) => (gy.clone(), -&gy),
                            (Binary::Mul, Some((a, b))) => (&gy * b, &gy * a),
                            (Binary::Div, Some((a, b))) => (&gy / b, -&(&(&gy * a) / &(b * b))),
                            _ => unreachable!("mul and div save their inputs"),
                        };
                        (
                            na.then(|| ga.sum_to(&sa)).transpose()?,
                            nb.then(|| gb.sum_to(&sb)).transpose()?,
                        )
                    }
                };
                out.extend([ga, gb]);
                Ok(())
            },
        ))
    }

    /// Elementwise `self + other` with broadcasting.
    #[track_caller]
    pub fn try_add(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.binary(other, Binary::Add)
    }

    /// Elementwise `self - other` with broadcasting.
    #[track_caller]
    pub fn try_sub(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.binary(other, Binary::Sub)
    }

    /// Elementwise `self * other` with broadcasting.
    #[track_caller]
    pub fn try_mul(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.binary(other, Binary::Mul)
    }

    /// Elementwise `self / other` with broadcasting.
    #[track_caller]
    pub fn try_div(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.binary(other, Binary::Div)
    }
}

/// The gradients of `a + b` or `a - b` outside `create_graph`: d(a+b) = (1, 1) and
/// d(a-b) = (1, -1), summed back to each input's shape. An input of the output's shape takes
/// `gy` itself (one of them moves it, so a lone consumer can later reuse its buffer), and
/// `-gy` is negated in place when nothing else holds it.
fn add_sub_grads<T: Element>(
    op: Binary,
    gy: Tensor<T>,
    sa: &[usize],
    sb: &[usize],
    na: bool,
    nb: bool,
) -> (Option<Tensor<T>>, Option<Tensor<T>>) {
    let reduced =
        |shape: &[usize]| Tensor::raw_with(reduce_to(gy.data(), gy.shape(), shape), shape);
    let ga = na.then(|| {
        if sa == gy.shape() {
            gy.clone()
        } else {
            reduced(sa)
        }
    });
    let gb = nb.then(|| {
        if sb == gy.shape() {
            gy.clone()
        } else {
            reduced(sb)
        }
    });
    // Drop the local handle so that exactly the returned ones hold the buffer.
    drop(gy);
    let gb = if op == Binary::Sub {
        gb.map(|g| g.map_reusing(|v| -v))
    } else {
        gb
    };
    (ga, gb)
}

macro_rules! binary_operator {
    ($trait:ident, $method:ident, $try:ident) => {
        /// Panics with a message naming the op and both shapes when they do not broadcast;
        #[doc = concat!("use [`Tensor::", stringify!($try), "`] for a `Result`.")]
        impl<T: Element> $trait<&Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                self.$try(rhs).unwrap_or_else(|e| panic!("{e}"))
            }
        }

        /// Same as the operator on references.
        impl<T: Element> $trait<Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                (&self).$method(&rhs)
            }
        }

        /// Same as the operator on references.
        impl<T: Element> $trait<&Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                (&self).$method(rhs)
            }
        }
    };
}

binary_operator!(Add, add, try_add);
binary_operator!(Sub, sub, try_sub);
binary_operator!(Mul, mul, try_mul);
binary_operator!(Div, div, try_div);
