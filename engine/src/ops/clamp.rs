//! `clamp`: each element limited to `[min, max]`, either bound optional.

use crate::error::{Error, Result};
use crate::Tensor;
use backflow_kernels::Element;

impl<T: Element> Tensor<T> {
    /// Each element limited to `[min, max]`; a bound given as `None` does not limit, as in
    /// PyTorch's `clamp(min=None, max=None)`. NaN stays NaN.
    ///
    /// The gradient is 1 where `min <= x <= max` (bounds included, PyTorch's convention) and
    /// 0 outside, and under `create_graph` that mask is differentiated again as a constant.
    ///
    /// An `Error::Invalid` names the op and the bounds when both are `None`, either is NaN,
    /// or `min > max` (where PyTorch would silently return `max` everywhere).
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![-2.0, 0.5, 1.0, 3.0], &[4]).unwrap().requires_grad();
    /// let y = x.clamp(Some(0.0), Some(1.0)).unwrap();
    /// assert_eq!(y.to_vec(), vec![0.0, 0.5, 1.0, 1.0]);
    /// y.sum().backward().unwrap();
    /// assert_eq!(x.grad().unwrap().to_vec(), vec![0.0, 1.0, 1.0, 0.0]);
    /// assert_eq!(x.clamp(None, Some(0.0)).unwrap().to_vec(), vec![-2.0, 0.0, 0.0, 0.0]);
    /// assert!(x.clamp(Some(1.0), Some(0.0)).is_err());
    /// ```
    #[track_caller]
    pub fn clamp(&self, min: Option<T>, max: Option<T>) -> Result<Tensor<T>> {
        let invalid = |message: String| Error::Invalid {
            op: "clamp",
            message,
        };
        match (min, max) {
            (None, None) => {
                return Err(invalid(format!(
                    "needs a min or a max bound (tensor of shape {:?})",
                    self.shape()
                )))
            }
            (Some(lo), _) if lo.is_nan() => return Err(invalid(format!("min is {lo}"))),
            (_, Some(hi)) if hi.is_nan() => return Err(invalid(format!("max is {hi}"))),
            (Some(lo), Some(hi)) if lo > hi => {
                return Err(invalid(format!("min {lo} is greater than max {hi}")))
            }
            _ => {}
        }
        let (lo, hi) = (
            min.unwrap_or(T::neg_infinity()),
            max.unwrap_or(T::infinity()),
        );
        let data = self
            .data()
            .iter()
            .map(|&v| {
                if v < lo {
                    lo
                } else if v > hi {
                    hi
                } else {
                    v
                }
            })
            .collect();
        let x = self.clone();
        Ok(Tensor::from_op(
            "clamp",
            data,
            self.shape().to_vec(),
            &[self],
            move |gy, ctx| {
                // d/dx clamp(x) = [min <= x <= max]: 1 inside and on the bounds, 0 outside
                // (and for NaN)
                let inside = |v: T| v >= lo && v <= hi;
                let g = if ctx.create_graph {
                    let mask = x
                        .data()
                        .iter()
                        .map(|&v| if inside(v) { T::one() } else { T::zero() })
                        .collect();
                    gy * &Tensor::raw(mask, x.shape().to_vec())
                } else {
                    let g = x
                        .data()
                        .iter()
                        .zip(gy.data())
                        .map(|(&v, &g)| if inside(v) { g } else { T::zero() })
                        .collect();
                    Tensor::raw(g, x.shape().to_vec())
                };
                Ok(vec![Some(g)])
            },
        ))
    }
}
