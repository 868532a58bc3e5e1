//! `+ - * /` between tensors, with NumPy broadcasting, as methods and operators.

use crate::error::{Error, Result};
use crate::tensor::checked_len;
use crate::Tensor;
use backflow_kernels::{
    binary_backward, binary_forward, broadcast_shapes, reduce_to, Binary, Element,
};
use std::ops::{Add, Div, Mul, Sub};

impl<T: Element> Tensor<T> {
    #[track_caller]
    fn binary(&self, other: &Tensor<T>, op: Binary) -> Result<Tensor<T>> {
        let Some(out) = broadcast_shapes(self.shape(), other.shape()) else {
            return Err(Error::Shape {
                op: op.name(),
                lhs: self.shape().to_vec(),
                rhs: other.shape().to_vec(),
                reason: "dimensions must be equal or 1, aligned from the right".into(),
            });
        };
        if checked_len::<T>(op.name(), &out).is_err() {
            return Err(Error::Shape {
                op: op.name(),
                lhs: self.shape().to_vec(),
                rhs: other.shape().to_vec(),
                reason: format!("the broadcast shape {out:?} has too many elements"),
            });
        }
        let (data, shape) =
            binary_forward(op, self.data(), self.shape(), other.data(), other.shape());
        // add and sub need only the shapes; mul and div save their inputs.
        let saved = matches!(op, Binary::Mul | Binary::Div).then(|| (self.clone(), other.clone()));
        let (sa, sb) = (self.shape().to_vec(), other.shape().to_vec());
        Ok(Tensor::from_op(
            op.name(),
            data,
            shape,
            &[self, other],
            move |gy, ctx| {
                let (na, nb) = (ctx.needs[0], ctx.needs[1]);
                let (ga, gb) = match (&saved, ctx.create_graph) {
                    (None, false) => {
                        // d(a+b) = (1, 1), d(a-b) = (1, -1), summed back to each shape
                        let ga = na.then(|| {
                            Tensor::raw(reduce_to(gy.data(), gy.shape(), &sa), sa.clone())
                        });
                        let gb = nb.then(|| {
                            let g = Tensor::raw(reduce_to(gy.data(), gy.shape(), &sb), sb.clone());
                            if op == Binary::Sub {
                                -&g
                            } else {
                                g
                            }
                        });
                        (ga, gb)
                    }
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
                            (Binary::Sub, _) => (gy.clone(), -gy),
                            (Binary::Mul, Some((a, b))) => (gy * b, gy * a),
                            (Binary::Div, Some((a, b))) => (gy / b, -&(&(gy * a) / &(b * b))),
                            _ => unreachable!("mul and div save their inputs"),
                        };
                        (
                            na.then(|| ga.sum_to(&sa)).transpose()?,
                            nb.then(|| gb.sum_to(&sb)).transpose()?,
                        )
                    }
                };
                Ok(vec![ga, gb])
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
