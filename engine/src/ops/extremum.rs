//! Whole-tensor `max` and `min`: the gradient is shared evenly among tied extrema, as in
//! PyTorch's `max()` and `min()` without a dimension.

use crate::error::{Error, Result};
use crate::Tensor;
use backflow_kernels::Element;

impl<T: Element> Tensor<T> {
    /// The largest element, as a zero-dimensional tensor; NaN if any element is NaN.
    ///
    /// The gradient is shared evenly among the elements equal to the maximum (among the
    /// NaNs when it is NaN), as PyTorch's `max()` without a dimension does: with `k` tied
    /// maxima each gets `gy / k`. (For the first maximum of each lane along an axis, see
    /// [`max_dim`](Self::max_dim).) An `Error::Invalid` names the shape of an empty tensor.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f64>::from_vec(vec![1.0, 5.0, 5.0, 2.0], &[2, 2]).unwrap().requires_grad();
    /// let m = x.max().unwrap();
    /// assert_eq!(m.item(), 5.0);
    /// m.backward().unwrap();
    /// assert_eq!(x.grad().unwrap().to_vec(), vec![0.0, 0.5, 0.5, 0.0]);
    /// ```
    #[track_caller]
    pub fn max(&self) -> Result<Tensor<T>> {
        self.extremum("max", true)
    }

    /// The smallest element, as a zero-dimensional tensor; NaN if any element is NaN. The
    /// gradient is shared evenly among tied minima, as for [`max`](Self::max). An
    /// `Error::Invalid` names the shape of an empty tensor.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![3.0, -1.0, 4.0], &[3]).unwrap();
    /// assert_eq!(x.min().unwrap().item(), -1.0);
    /// assert!(Tensor::<f32>::zeros(&[0, 3]).min().is_err());
    /// ```
    #[track_caller]
    pub fn min(&self) -> Result<Tensor<T>> {
        self.extremum("min", false)
    }

    #[track_caller]
    fn extremum(&self, op: &'static str, max: bool) -> Result<Tensor<T>> {
        let Some(&first) = self.data().first() else {
            return Err(Error::Invalid {
                op,
                message: format!(
                    "the tensor of shape {:?} is empty: there is no extremum (use {op}_dim \
                     on a non-empty axis)",
                    self.shape()
                ),
            });
        };
        let best = self.data().iter().fold(first, |b, &v| {
            // A NaN wins over any number and stays.
            if b.is_nan() || v.is_nan() {
                if b.is_nan() {
                    b
                } else {
                    v
                }
            } else if (max && v > b) || (!max && v < b) {
                v
            } else {
                b
            }
        });
        // The share of the gradient of each element: 1/k at the k ties, 0 elsewhere.
        let is_best = |v: T| v == best || (v.is_nan() && best.is_nan());
        let ties = self.data().iter().filter(|&&v| is_best(v)).count();
        let share = T::one() / T::from_f64(ties as f64);
        let weights: Vec<T> = self
            .data()
            .iter()
            .map(|&v| if is_best(v) { share } else { T::zero() })
            .collect();
        let shape = self.shape().to_vec();
        Ok(Tensor::from_op(
            op,
            vec![best],
            vec![],
            &[self],
            move |gy, ctx| {
                // ∂ max(x)/∂x_j = 1/k at each of the k tied maxima, 0 elsewhere
                let g = if ctx.create_graph {
                    // Linear in gy with a constant mask: differentiates again (0 in x).
                    &Tensor::raw(weights.clone(), shape.clone()) * gy
                } else {
                    let gy = gy.item();
                    Tensor::raw(weights.iter().map(|&w| w * gy).collect(), shape.clone())
                };
                Ok(vec![Some(g)])
            },
        ))
    }
}
