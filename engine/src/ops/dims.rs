//! Ops that add, remove, merge or reorder axes: `unsqueeze`, `squeeze`, `squeeze_all`,
//! `flatten` (views of the same row-major data, like `reshape`) and `permute` (which moves
//! the data).

use crate::error::{Error, Result};
use crate::Tensor;
use backflow_kernels::{permute, Element};

impl<T: Element> Tensor<T> {
    /// The same data seen with `shape` (of the same element count), recorded as `op`: the
    /// gradient is `gy` seen with the input's shape.
    #[track_caller]
    fn view_as(&self, op: &'static str, shape: Vec<usize>) -> Tensor<T> {
        let from = self.shape().to_vec();
        Tensor::record(op, self.shared_data(), shape, &[self], move |gy, _| {
            Ok(vec![Some(gy.reshape(&from)?)])
        })
    }

    /// Inserts an axis of size 1 at position `dim` (`0..=rank`), as PyTorch's
    /// `unsqueeze`. An [`Error::Axis`] names `dim` and the shape when `dim > rank`.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::zeros(&[2, 3]);
    /// assert_eq!(x.unsqueeze(0).unwrap().shape(), &[1, 2, 3]);
    /// assert_eq!(x.unsqueeze(2).unwrap().shape(), &[2, 3, 1]);
    /// assert!(x.unsqueeze(3).is_err());
    /// ```
    #[track_caller]
    pub fn unsqueeze(&self, dim: usize) -> Result<Tensor<T>> {
        if dim > self.rank() {
            return Err(Error::Axis {
                op: "unsqueeze",
                axis: dim,
                shape: self.shape().to_vec(),
            });
        }
        let mut shape = self.shape().to_vec();
        shape.insert(dim, 1);
        Ok(self.view_as("unsqueeze", shape))
    }

    /// Removes axis `dim` if its size is 1; leaves the tensor as it is otherwise, as
    /// PyTorch's `squeeze(dim)` does. An [`Error::Axis`] names `dim` and the shape when it
    /// is out of range.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::zeros(&[2, 1, 3]);
    /// assert_eq!(x.squeeze(1).unwrap().shape(), &[2, 3]);
    /// assert_eq!(x.squeeze(0).unwrap().shape(), &[2, 1, 3]);
    /// assert!(x.squeeze(3).is_err());
    /// ```
    #[track_caller]
    pub fn squeeze(&self, dim: usize) -> Result<Tensor<T>> {
        self.check_axis("squeeze", dim)?;
        if self.shape()[dim] != 1 {
            return Ok(self.clone());
        }
        let mut shape = self.shape().to_vec();
        shape.remove(dim);
        Ok(self.view_as("squeeze", shape))
    }

    /// Removes every axis of size 1, as PyTorch's `squeeze()` without a dimension.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::zeros(&[1, 2, 1, 3, 1]);
    /// assert_eq!(x.squeeze_all().shape(), &[2, 3]);
    /// assert_eq!(Tensor::<f32>::zeros(&[1, 1]).squeeze_all().shape(), &[] as &[usize]);
    /// ```
    #[track_caller]
    pub fn squeeze_all(&self) -> Tensor<T> {
        let shape: Vec<usize> = self.shape().iter().copied().filter(|&n| n != 1).collect();
        if shape.len() == self.rank() {
            return self.clone();
        }
        self.view_as("squeeze", shape)
    }

    /// Merges axes `start..=end` (both included) into one, as PyTorch's
    /// `flatten(start_dim, end_dim)`; `flatten(0, rank - 1)` gives a 1-D tensor, and a 0-D
    /// tensor flattens to shape `[1]`. An [`Error::Axis`] names an axis out of range, an
    /// `Error::Invalid` a `start` after `end`.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::zeros(&[2, 3, 4, 5]);
    /// assert_eq!(x.flatten(1, 2).unwrap().shape(), &[2, 12, 5]);
    /// assert_eq!(x.flatten(0, 3).unwrap().shape(), &[120]);
    /// assert!(x.flatten(2, 1).is_err());
    /// ```
    #[track_caller]
    pub fn flatten(&self, start: usize, end: usize) -> Result<Tensor<T>> {
        if self.rank() == 0 && start == 0 && end == 0 {
            return Ok(self.view_as("flatten", vec![1]));
        }
        self.check_axis("flatten", start.max(end))?;
        if start > end {
            return Err(Error::Invalid {
                op: "flatten",
                message: format!(
                    "start axis {start} is after end axis {end} (shape {:?})",
                    self.shape()
                ),
            });
        }
        if start == end {
            return Ok(self.clone());
        }
        let s = self.shape();
        let mut shape = s[..start].to_vec();
        // A product of factors of `numel` cannot overflow unless another axis is 0: an
        // empty `[0, 2^40, 2^40]` may not merge its last two axes.
        let merged = s[start..=end]
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| Error::Invalid {
                op: "flatten",
                message: format!(
                    "merging axes {start}..={end} of shape {s:?} gives a size that overflows usize"
                ),
            })?;
        shape.push(merged);
        shape.extend_from_slice(&s[end + 1..]);
        Ok(self.view_as("flatten", shape))
    }

    /// Reorders the axes: axis `i` of the result is axis `dims[i]` of `self`, as PyTorch's
    /// `permute`. The gradient is permuted back by the inverse permutation. An
    /// `Error::Invalid` names `dims` and the shape unless `dims` holds each of `0..rank`
    /// once.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec((0..6).map(|v| v as f32).collect(), &[1, 2, 3]).unwrap();
    /// let y = x.permute(&[2, 0, 1]).unwrap();
    /// assert_eq!(y.shape(), &[3, 1, 2]);
    /// assert_eq!(y.to_vec(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    /// assert!(x.permute(&[0, 0, 1]).is_err());
    /// ```
    #[track_caller]
    pub fn permute(&self, dims: &[usize]) -> Result<Tensor<T>> {
        let rank = self.rank();
        let bad = || Error::Invalid {
            op: "permute",
            message: format!(
                "{dims:?} is not a permutation of the {rank} axes of shape {:?}",
                self.shape()
            ),
        };
        if dims.len() != rank {
            return Err(bad());
        }
        let mut inverse = vec![usize::MAX; rank];
        for (i, &d) in dims.iter().enumerate() {
            if d >= rank || inverse[d] != usize::MAX {
                return Err(bad());
            }
            inverse[d] = i;
        }
        if dims.iter().enumerate().all(|(i, &d)| i == d) {
            return Ok(self.clone());
        }
        let shape: Vec<usize> = dims.iter().map(|&d| self.shape()[d]).collect();
        let data = permute(self.data(), self.shape(), dims);
        Ok(Tensor::from_op(
            "permute",
            data,
            shape,
            &[self],
            move |gy, _| {
                // moving axis dims[i] to i is undone by moving axis i back to dims[i]
                Ok(vec![Some(gy.permute(&inverse)?)])
            },
        ))
    }
}
