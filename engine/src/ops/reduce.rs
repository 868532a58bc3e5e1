//! Reductions: `sum` over all elements, `sum_axis`, `mean`.

use crate::error::{Error, Result};
use crate::sync::Arc;
use crate::Tensor;
use backflow_kernels::{sum_all, sum_axis, sum_axis_backward, Element};

impl<T: Element> Tensor<T> {
    /// The sum of all elements, as a zero-dimensional tensor.
    #[track_caller]
    pub fn sum(&self) -> Tensor<T> {
        let total = sum_all(self.data());
        let shape = self.shape().to_vec();
        // The input's element count: its gradient's length, known to fit.
        let len = self.numel();
        Tensor::record_owned(
            "sum",
            Arc::new(vec![total]),
            vec![],
            &[self],
            move |gy, ctx, out| {
                // d/dx_i Σ x = 1: gy repeated to the input's shape (a one-element input
                // takes gy's own buffer when nothing else holds it)
                let g = if ctx.create_graph {
                    gy.broadcast_to(&shape)?
                } else if len == 1 {
                    gy.reshaped_reusing(&shape)
                } else {
                    Tensor::raw_with(vec![gy.item(); len], &shape)
                };
                out.push(Some(g));
                Ok(())
            },
        )
    }

    /// The sum along `axis`, which is removed from the shape (`[2, 3]` summed along axis 1
    /// has shape `[2]`). An [`Error::Axis`] names the axis and shape when it is out of range.
    #[track_caller]
    pub fn sum_axis(&self, axis: usize) -> Result<Tensor<T>> {
        if axis >= self.rank() {
            return Err(Error::Axis {
                op: "sum_axis",
                axis,
                shape: self.shape().to_vec(),
            });
        }
        let shape = self.shape().to_vec();
        let mut out_shape = shape.clone();
        out_shape.remove(axis);
        // Only a tensor with no elements can have an output whose count overflows.
        crate::tensor::checked_len::<T>("sum_axis", &out_shape)?;
        let data = sum_axis(self.data(), &shape, axis);
        Ok(Tensor::from_op(
            "sum_axis",
            data,
            out_shape,
            &[self],
            move |gy, ctx| {
                // d/dx_i Σ_axis x = 1: gy copied along the summed axis
                let g = if ctx.create_graph {
                    let mut kept = shape.clone();
                    kept[axis] = 1;
                    gy.reshape(&kept)?.broadcast_to(&shape)?
                } else {
                    Tensor::raw(sum_axis_backward(gy.data(), &shape, axis), shape.clone())
                };
                Ok(vec![Some(g)])
            },
        ))
    }

    /// The mean of all elements, as a zero-dimensional tensor (NaN for an empty tensor).
    #[track_caller]
    pub fn mean(&self) -> Tensor<T> {
        let n = T::from_f64(self.numel() as f64);
        let scale = T::one() / n;
        let shape = self.shape().to_vec();
        let len = self.numel();
        let data = vec![sum_all(self.data()) / n];
        Tensor::from_op("mean", data, vec![], &[self], move |gy, ctx| {
            // d/dx_i (Σ x)/n = 1/n: gy/n repeated to the input's shape
            let g = if ctx.create_graph {
                gy.affine(scale, T::zero()).broadcast_to(&shape)?
            } else {
                Tensor::raw_with(vec![gy.item() / n; len], &shape)
            };
            Ok(vec![Some(g)])
        })
    }
}
