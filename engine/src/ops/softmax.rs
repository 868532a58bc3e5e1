//! Softmax and log-softmax along the last axis or any axis, numerically stable (each lane is
//! shifted by its maximum in the kernels). A 0-d tensor is one row of one element.

use crate::error::Result;
use crate::sync::Arc;
use crate::Tensor;
use backflow_kernels::{
    log_softmax, log_softmax_axis, log_softmax_axis_backward, log_softmax_backward, softmax,
    softmax_axis, softmax_axis_backward, softmax_backward, Element,
};

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

impl<T: Element> Tensor<T> {
    /// [`softmax`](Self::softmax) along `axis`: each lane along it sums to 1. An
    /// [`Error::Axis`](crate::Error::Axis) names the axis and shape when it is out of range.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![0.0, 1.0, 0.0, 1.0], &[2, 2]).unwrap();
    /// let y = x.softmax_axis(0).unwrap(); // each column sums to 1
    /// assert_eq!(y.to_vec(), vec![0.5, 0.5, 0.5, 0.5]);
    /// assert!(x.softmax_axis(2).is_err());
    /// ```
    #[track_caller]
    pub fn softmax_axis(&self, axis: usize) -> Result<Tensor<T>> {
        self.check_axis("softmax_axis", axis)?;
        let shape = self.shape().to_vec();
        let y = Arc::new(softmax_axis(self.data(), &shape, axis));
        // The closure keeps the output's data, not the output (which owns the closure).
        let saved_y = Arc::clone(&y);
        let x = self.clone();
        Ok(Tensor::record(
            "softmax_axis",
            y,
            shape.clone(),
            &[self],
            move |gy, ctx| {
                // ∂y_j/∂x_i = y_j(δ_ij - y_i), so gx = y ⊙ (gy - Σ_axis(gy ⊙ y))
                let g = if ctx.create_graph {
                    let y = x.softmax_axis(axis)?;
                    &y * &(gy - &(gy * &y).sum_dim(axis, true)?)
                } else {
                    Tensor::raw(
                        softmax_axis_backward(&saved_y, gy.data(), &shape, axis),
                        shape.clone(),
                    )
                };
                Ok(vec![Some(g)])
            },
        ))
    }

    /// [`log_softmax`](Self::log_softmax) along `axis`. An
    /// [`Error::Axis`](crate::Error::Axis) names the axis and shape when it is out of range.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f64>::zeros(&[2, 4]);
    /// let y = x.log_softmax_axis(0).unwrap();
    /// assert!((y.to_vec()[0] - 0.5f64.ln()).abs() < 1e-12);
    /// ```
    #[track_caller]
    pub fn log_softmax_axis(&self, axis: usize) -> Result<Tensor<T>> {
        self.check_axis("log_softmax_axis", axis)?;
        let shape = self.shape().to_vec();
        let y = Arc::new(log_softmax_axis(self.data(), &shape, axis));
        // The closure keeps the output's data, not the output (which owns the closure).
        let saved_y = Arc::clone(&y);
        let x = self.clone();
        Ok(Tensor::record(
            "log_softmax_axis",
            y,
            shape.clone(),
            &[self],
            move |gy, ctx| {
                // ∂y_j/∂x_i = δ_ij - softmax(x)_i, so gx = gy - softmax(x) ⊙ Σ_axis(gy)
                let g = if ctx.create_graph {
                    gy - &(&x.softmax_axis(axis)? * &gy.sum_dim(axis, true)?)
                } else {
                    Tensor::raw(
                        log_softmax_axis_backward(&saved_y, gy.data(), &shape, axis),
                        shape.clone(),
                    )
                };
                Ok(vec![Some(g)])
            },
        ))
    }
}
