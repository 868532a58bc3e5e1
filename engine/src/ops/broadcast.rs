//! `broadcast_to` and its adjoint `sum_to`: each is the other's backward.

use crate::error::{Error, Result};
use crate::tensor::{check_alloc, checked_len};
use crate::Tensor;
use backflow_kernels::{broadcast_shapes, broadcast_to, reduce_to, Element};

impl<T: Element> Tensor<T> {
    /// Repeats this tensor along broadcast dimensions (NumPy rules) to `shape`.
    ///
    /// An `Error::Shape` names both shapes when this one does not broadcast to `shape`; an
    /// `Error::Invalid` names `shape` and the bytes asked for when its buffer cannot be
    /// allocated.
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor<T>> {
        if broadcast_shapes(self.shape(), shape).as_deref() != Some(shape) {
            return Err(Error::Shape {
                op: "broadcast_to",
                lhs: self.shape().to_vec(),
                rhs: shape.to_vec(),
                reason: "each dimension must equal the target's or be 1".into(),
            });
        }
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let len = checked_len::<T>("broadcast_to", shape)?;
        check_alloc::<T>("broadcast_to", shape, len)?;
        let data = broadcast_to(self.data(), self.shape(), shape);
        let from = self.shape().to_vec();
        Ok(Tensor::from_op(
            "broadcast_to",
            data,
            shape.to_vec(),
            &[self],
            move |gy, _| {
                // d/dx broadcast(x) = sum of gy over the repeated dimensions
                Ok(vec![Some(gy.sum_to(&from)?)])
            },
        ))
    }

    /// Sums this tensor over the dimensions along which `shape` was broadcast to it: the
    /// adjoint of [`broadcast_to`](Tensor::broadcast_to).
    #[track_caller]
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor<T>> {
        if broadcast_shapes(shape, self.shape()).as_deref() != Some(self.shape()) {
            return Err(Error::Shape {
                op: "sum_to",
                lhs: self.shape().to_vec(),
                rhs: shape.to_vec(),
                reason: "the target must broadcast to the tensor's shape".into(),
            });
        }
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let data = reduce_to(self.data(), self.shape(), shape);
        let from = self.shape().to_vec();
        Ok(Tensor::from_op(
            "sum_to",
            data,
            shape.to_vec(),
            &[self],
            move |gy, _| {
                // d/dx sum_to(x) = gy repeated back over the summed dimensions
                Ok(vec![Some(gy.broadcast_to(&from)?)])
            },
        ))
    }
}

/// The shape two operands broadcast to (NumPy rules), or an error naming `op` and both
/// shapes: when they do not broadcast, or when the result has more elements than memory can
/// index. Every op with two broadcasting operands checks them here.
pub(crate) fn broadcast_pair<T: Element>(
    op: &'static str,
    lhs: &[usize],
    rhs: &[usize],
) -> Result<Vec<usize>> {
    let error = |reason: String| Error::Shape {
        op,
        lhs: lhs.to_vec(),
        rhs: rhs.to_vec(),
        reason,
    };
    let out = broadcast_shapes(lhs, rhs)
        .ok_or_else(|| error("dimensions must be equal or 1, aligned from the right".into()))?;
    if checked_len::<T>(op, &out).is_err() {
        return Err(error(format!(
            "the broadcast shape {out:?} has too many elements"
        )));
    }
    Ok(out)
}
