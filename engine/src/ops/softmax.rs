//! Softmax and log-softmax along the last axis, numerically stable (each row is shifted by
//! its maximum in the kernels). A 0-d tensor is one row of one element.

use crate::error::Result;
use crate::sync::Arc;
use crate::Tensor;
use backflow_kernels::{log_softmax, log_softmax_backward, softmax, softmax_backward, Element};

impl<T: Element> Tensor<T> {
    /// Length of the last axis (1 for a 0-d tensor): the row length of the softmaxes.
    fn last_axis_len(&self) -> usize {
        self.shape().last().copied().unwrap_or(1)
    }

    /// Σ over the last axis, repeated back along it to this tensor's shape, recorded.
    #[track_caller]
    fn sum_last_axis_keep(&self) -> Result<Tensor<T>> {
        let Some(last) = self.rank().checked_sub(1) else {
            return Ok(self.clone());
        };
        let mut kept = self.shape().to_vec();
        kept[last] = 1;
        self.sum_axis(last)?
            .reshape(&kept)?
            .broadcast_to(self.shape())
    }

    /// `e^(x_i) / Σ_j e^(x_j)` along the last axis (computed shifted by each row's maximum,
    /// so large values do not overflow).
    #[track_caller]
    pub fn softmax(&self) -> Tensor<T> {
        let cols = self.last_axis_len();
        let y = Arc::new(softmax(self.data(), cols));
        // The closure keeps the output's data, not the output (which owns the closure).
        let saved_y = Arc::clone(&y);
        let x = self.clone();
        Tensor::record(
            "softmax",
            y,
            self.shape().to_vec(),
            &[self],
            move |gy, ctx| {
                // ∂y_j/∂x_i = y_j(δ_ij - y_i), so gx = y ⊙ (gy - Σ_last(gy ⊙ y))
                let g = if ctx.create_graph {
                    let y = x.softmax();
                    &y * &(gy - &(gy * &y).sum_last_axis_keep()?)
                } else {
                    Tensor::raw(
                        softmax_backward(&saved_y, gy.data(), cols),
                        x.shape().to_vec(),
                    )
                };
                Ok(vec![Some(g)])
            },
        )
    }

    /// `x_i - ln Σ_j e^(x_j)` along the last axis (computed shifted by each row's maximum,
    /// so large values do not overflow).
    #[track_caller]
    pub fn log_softmax(&self) -> Tensor<T> {
        let cols = self.last_axis_len();
        let y = Arc::new(log_softmax(self.data(), cols));
        // The closure keeps the output's data, not the output (which owns the closure).
        let saved_y = Arc::clone(&y);
        let x = self.clone();
        Tensor::record(
            "log_softmax",
            y,
            self.shape().to_vec(),
            &[self],
            move |gy, ctx| {
                // ∂y_j/∂x_i = δ_ij - softmax(x)_i, so gx = gy - softmax(x) ⊙ Σ_last(gy)
                let g = if ctx.create_graph {
                    gy - &(&x.softmax() * &gy.sum_last_axis_keep()?)
                } else {
                    Tensor::raw(
                        log_softmax_backward(&saved_y, gy.data(), cols),
                        x.shape().to_vec(),
                    )
                };
                Ok(vec![Some(g)])
            },
        )
    }
}
