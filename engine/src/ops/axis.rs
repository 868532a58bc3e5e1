//! Reductions along one axis with `keepdim`: `sum_dim`, `mean_dim`, `max_dim`, `min_dim`,
//! and `argmax` (indices, no gradient). max and min send the gradient to the first
//! extremum of each lane, as PyTorch does.

use crate::error::{Error, Result};
use crate::Tensor;
use backflow_kernels::{extremum_axis, extremum_axis_backward, Element};

impl<T: Element> Tensor<T> {
    /// An [`Error::Axis`] naming `op`, the axis and the shape unless `axis < rank`.
    pub(crate) fn check_axis(&self, op: &'static str, axis: usize) -> Result<()> {
        if axis < self.rank() {
            return Ok(());
        }
        Err(Error::Axis {
            op,
            axis,
            shape: self.shape().to_vec(),
        })
    }

    /// This tensor's shape with `axis` set to 1 (`keepdim`) or removed.
    fn reduced_shape(&self, axis: usize, keepdim: bool) -> Vec<usize> {
        let mut shape = self.shape().to_vec();
        if keepdim {
            shape[axis] = 1;
        } else {
            shape.remove(axis);
        }
        shape
    }

    /// The sum along `axis`, kept as a dimension of size 1 when `keepdim` is set, removed
    /// otherwise. An [`Error::Axis`] names the axis and shape when it is out of range.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let s = x.sum_dim(1, true).unwrap();
    /// assert_eq!((s.shape(), s.to_vec()), (&[2, 1][..], vec![3.0, 7.0]));
    /// assert_eq!(x.sum_dim(0, false).unwrap().to_vec(), vec![4.0, 6.0]);
    /// ```
    #[track_caller]
    pub fn sum_dim(&self, axis: usize, keepdim: bool) -> Result<Tensor<T>> {
        self.check_axis("sum_dim", axis)?;
        let sum = self.sum_axis(axis)?;
        if keepdim {
            sum.reshape(&self.reduced_shape(axis, true))
        } else {
            Ok(sum)
        }
    }

    /// The mean along `axis` (NaN along an empty axis), kept as a dimension of size 1 when
    /// `keepdim` is set. An [`Error::Axis`] names the axis and shape when it is out of range.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// assert_eq!(x.mean_dim(0, false).unwrap().to_vec(), vec![2.0, 3.0]);
    /// assert_eq!(x.mean_dim(1, true).unwrap().shape(), &[2, 1]);
    /// ```
    #[track_caller]
    pub fn mean_dim(&self, axis: usize, keepdim: bool) -> Result<Tensor<T>> {
        self.check_axis("mean_dim", axis)?;
        let n = T::from_f64(self.shape()[axis] as f64);
        // d/dx mean = 1/n, carried by the scale node.
        Ok(self.sum_dim(axis, keepdim)?.affine(T::one() / n, T::zero()))
    }

    /// The maximum along `axis`, kept as a dimension of size 1 when `keepdim` is set. The
    /// gradient goes to the first maximum of each lane (a NaN counts as the maximum). An
    /// [`Error::Axis`] names an axis out of range, an `Error::Invalid` an empty axis.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f64>::from_vec(vec![1.0, 5.0, 5.0, 2.0], &[2, 2]).unwrap().requires_grad();
    /// let m = x.max_dim(1, false).unwrap();
    /// assert_eq!(m.to_vec(), vec![5.0, 5.0]);
    /// m.sum().backward().unwrap();
    /// assert_eq!(x.grad().unwrap().to_vec(), vec![0.0, 1.0, 1.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn max_dim(&self, axis: usize, keepdim: bool) -> Result<Tensor<T>> {
        self.extremum_dim("max_dim", axis, keepdim, true)
    }

    /// The minimum along `axis`, as [`max_dim`](Self::max_dim) (the gradient goes to the
    /// first minimum).
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![1.0, 5.0, 0.0, 2.0], &[2, 2]).unwrap();
    /// assert_eq!(x.min_dim(0, true).unwrap().to_vec(), vec![0.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn min_dim(&self, axis: usize, keepdim: bool) -> Result<Tensor<T>> {
        self.extremum_dim("min_dim", axis, keepdim, false)
    }

    /// The index along `axis` of the first maximum of each lane (a NaN counts as the
    /// maximum), row-major over the remaining dimensions. No gradient. An [`Error::Axis`]
    /// names an axis out of range, an `Error::Invalid` an empty axis.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![1.0, 5.0, 5.0, 7.0, 2.0, 0.0], &[2, 3]).unwrap();
    /// assert_eq!(x.argmax(1).unwrap(), vec![1, 0]);
    /// assert_eq!(x.argmax(0).unwrap(), vec![1, 0, 0]);
    /// ```
    pub fn argmax(&self, axis: usize) -> Result<Vec<usize>> {
        self.check_nonempty_axis("argmax", axis)?;
        Ok(extremum_axis(self.data(), self.shape(), axis, true).1)
    }

    /// [`check_axis`](Self::check_axis), and an `Error::Invalid` when the axis is empty.
    fn check_nonempty_axis(&self, op: &'static str, axis: usize) -> Result<()> {
        self.check_axis(op, axis)?;
        if self.shape()[axis] == 0 {
            return Err(Error::Invalid {
                op,
                message: format!(
                    "axis {axis} of shape {:?} is empty: there is no extremum",
                    self.shape()
                ),
            });
        }
        Ok(())
    }

    #[track_caller]
    fn extremum_dim(
        &self,
        op: &'static str,
        axis: usize,
        keepdim: bool,
        max: bool,
    ) -> Result<Tensor<T>> {
        self.check_nonempty_axis(op, axis)?;
        let shape = self.shape().to_vec();
        let (values, index) = extremum_axis(self.data(), &shape, axis, max);
        let out_shape = self.reduced_shape(axis, keepdim);
        Ok(Tensor::from_op(
            op,
            values,
            out_shape,
            &[self],
            move |gy, ctx| {
                // ∂ max(x)/∂x_j = 1 at the chosen j of each lane, 0 elsewhere
                let g = if ctx.create_graph {
                    // The one-hot mask of the chosen elements times gy spread along the axis:
                    // linear in gy, so it differentiates again (and is 0 in x, as in PyTorch).
                    let ones = vec![T::one(); index.len()];
                    let mask = Tensor::raw(
                        extremum_axis_backward(&ones, &index, &shape, axis),
                        shape.clone(),
                    );
                    let mut kept = shape.clone();
                    kept[axis] = 1;
                    &mask * &gy.reshape(&kept)?
                } else {
                    Tensor::raw(
                        extremum_axis_backward(gy.data(), &index, &shape, axis),
                        shape.clone(),
                    )
                };
                Ok(vec![Some(g)])
            },
        ))
    }
}
