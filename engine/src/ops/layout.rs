//! Ops that move data without arithmetic: `reshape`, `transpose`, `t` and `concat` (whose
//! adjoint, `narrow`, is in `slice.rs`).

use crate::error::{Error, Result};
use crate::tensor::checked_len;
use crate::Tensor;
use backflow_kernels::{checked_numel, concat, concat_backward, transpose, Element};

impl<T: Element> Tensor<T> {
    /// The same elements, in the same row-major order, viewed with `shape`. An
    /// `Error::Shape` names both shapes when their element counts differ.
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor<T>> {
        let wanted = checked_numel(shape);
        if wanted != Some(self.numel()) {
            return Err(Error::Shape {
                op: "reshape",
                lhs: self.shape().to_vec(),
                rhs: shape.to_vec(),
                reason: format!(
                    "{} elements cannot be viewed as {} elements",
                    self.numel(),
                    wanted.map_or_else(|| "more than usize::MAX".to_string(), |n| n.to_string())
                ),
            });
        }
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let from = self.shape().to_vec();
        // The result shares the input's buffer: data is immutable.
        Ok(Tensor::record(
            "reshape",
            self.shared_data(),
            shape.to_vec(),
            &[self],
            move |gy, _| {
                // reshape only renames positions, so d/dx reshape(x) = gy viewed with x's shape
                Ok(vec![Some(gy.reshape(&from)?)])
            },
        ))
    }

    /// Swaps axes `d0` and `d1`. An [`Error::Axis`] names the larger axis and the shape when
    /// it is out of range.
    #[track_caller]
    pub fn transpose(&self, d0: usize, d1: usize) -> Result<Tensor<T>> {
        if d0 >= self.rank() || d1 >= self.rank() {
            return Err(Error::Axis {
                op: "transpose",
                axis: d0.max(d1),
                shape: self.shape().to_vec(),
            });
        }
        if d0 == d1 {
            return Ok(self.clone());
        }
        let data = transpose(self.data(), self.shape(), d0, d1);
        let mut shape = self.shape().to_vec();
        shape.swap(d0, d1);
        Ok(Tensor::from_op(
            "transpose",
            data,
            shape,
            &[self],
            move |gy, _| {
                // swapping two axes is its own inverse, so d/dx transpose(x) = transpose(gy)
                Ok(vec![Some(gy.transpose(d0, d1)?)])
            },
        ))
    }

    /// The transpose of a 2-D tensor. An `Error::Invalid` names the shape otherwise.
    #[track_caller]
    pub fn t(&self) -> Result<Tensor<T>> {
        if self.rank() != 2 {
            return Err(Error::Invalid {
                op: "t",
                message: format!("needs a 2-D tensor, got shape {:?}", self.shape()),
            });
        }
        self.transpose(0, 1)
    }

    /// Joins `parts` along `axis`. They must have the same rank, greater than `axis`, and
    /// agree on every other dimension; an `Error::Shape` names the first part's shape and
    /// the one that differs, an `Error::Invalid` an empty list, an [`Error::Axis`] an axis out of range.
    #[track_caller]
    pub fn concat(parts: &[&Tensor<T>], axis: usize) -> Result<Tensor<T>> {
        let Some(first) = parts.first() else {
            return Err(Error::Invalid {
                op: "concat",
                message: "needs at least one tensor".into(),
            });
        };
        if axis >= first.rank() {
            return Err(Error::Axis {
                op: "concat",
                axis,
                shape: first.shape().to_vec(),
            });
        }
        for part in parts {
            let (a, b) = (first.shape(), part.shape());
            if a.len() != b.len() || (0..a.len()).any(|d| d != axis && a[d] != b[d]) {
                return Err(Error::Shape {
                    op: "concat",
                    lhs: a.to_vec(),
                    rhs: b.to_vec(),
                    reason: format!("parts must have the same rank and agree off axis {axis}"),
                });
            }
        }
        // The output's length along `axis`, and its element count, must not overflow.
        let total = parts
            .iter()
            .try_fold(0usize, |n, p| n.checked_add(p.shape()[axis]));
        let Some(total) = total else {
            return Err(Error::Invalid {
                op: "concat",
                message: format!(
                    "the lengths along axis {axis} of parts of shape {:?} overflow usize",
                    first.shape()
                ),
            });
        };
        let mut out_shape = first.shape().to_vec();
        out_shape[axis] = total;
        checked_len::<T>("concat", &out_shape)?;
        let slices: Vec<(&[T], &[usize])> = parts.iter().map(|p| (p.data(), p.shape())).collect();
        let (data, shape) = concat(&slices, axis);
        let sizes: Vec<usize> = parts.iter().map(|p| p.shape()[axis]).collect();
        let out_shape = shape.clone();
        Ok(Tensor::from_op(
            "concat",
            data,
            shape,
            parts,
            move |gy, ctx| {
                // concat only moves elements, so each part's gradient is its slice of gy
                if ctx.create_graph {
                    let mut start = 0;
                    let mut grads = Vec::with_capacity(sizes.len());
                    for (&size, &need) in sizes.iter().zip(&ctx.needs) {
                        grads.push(need.then(|| gy.narrow(axis, start, size)).transpose()?);
                        start += size;
                    }
                    return Ok(grads);
                }
                let pieces = concat_backward(gy.data(), &out_shape, axis, &sizes);
                Ok(pieces
                    .into_iter()
                    .zip(sizes.iter().zip(&ctx.needs))
                    .map(|(piece, (&size, &need))| {
                        need.then(|| {
                            let mut shape = out_shape.clone();
                            shape[axis] = size;
                            Tensor::raw(piece, shape)
                        })
                    })
                    .collect())
            },
        ))
    }
}
