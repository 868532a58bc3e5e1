//! Slicing along one axis and its inverses: `narrow`, `split`, `chunk`, and `stack` (which
//! joins equal shapes along a new axis; `concat`, in `layout.rs`, along an existing one).

use crate::error::{Error, Result};
use crate::Tensor;
use backflow_kernels::{narrow, narrow_backward, Element};

impl<T: Element> Tensor<T> {
    /// The `len` elements from `start` along `axis`. An [`Error::Axis`] names an axis out
    /// of range, an `Error::Invalid` a range past the end of the axis.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec((0..6).map(|v| v as f32).collect(), &[2, 3]).unwrap();
    /// let y = x.narrow(1, 1, 2).unwrap();
    /// assert_eq!((y.shape(), y.to_vec()), (&[2, 2][..], vec![1.0, 2.0, 4.0, 5.0]));
    /// assert!(x.narrow(1, 2, 2).is_err());
    /// ```
    #[track_caller]
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<Tensor<T>> {
        self.check_axis("narrow", axis)?;
        let shape = self.shape().to_vec();
        let end = start.checked_add(len);
        if end.is_none_or(|end| end > shape[axis]) {
            return Err(Error::Invalid {
                op: "narrow",
                message: format!(
                    "elements {start}..{start}+{len} of axis {axis} are out of range for shape \
                     {shape:?}"
                ),
            });
        }
        if start == 0 && len == shape[axis] {
            return Ok(self.clone());
        }
        let data = narrow(self.data(), &shape, axis, start, len);
        let mut out_shape = shape.clone();
        out_shape[axis] = len;
        Ok(Tensor::from_op(
            "narrow",
            data,
            out_shape,
            &[self],
            move |gy, ctx| {
                // narrow picks elements, so its gradient is gy with zeros around it on `axis`
                if !ctx.create_graph {
                    let g = narrow_backward(gy.data(), &shape, axis, start, len);
                    return Ok(vec![Some(Tensor::raw(g, shape.clone()))]);
                }
                let zeros = |size: usize| {
                    let mut s = shape.clone();
                    s[axis] = size;
                    Tensor::zeros(&s)
                };
                let after = shape[axis] - start - len;
                let g = Tensor::concat(&[&zeros(start), gy, &zeros(after)], axis)?;
                Ok(vec![Some(g)])
            },
        ))
    }

    /// Consecutive pieces along `axis` whose lengths are `sizes` (which must add up to the
    /// axis's length). An [`Error::Axis`] names an axis out of range, an `Error::Invalid`
    /// sizes that do not fill it.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::zeros(&[5, 2]);
    /// let parts = x.split(0, &[2, 3]).unwrap();
    /// assert_eq!((parts[0].shape(), parts[1].shape()), (&[2, 2][..], &[3, 2][..]));
    /// assert!(x.split(0, &[2, 2]).is_err());
    /// ```
    #[track_caller]
    pub fn split(&self, axis: usize, sizes: &[usize]) -> Result<Vec<Tensor<T>>> {
        self.check_axis("split", axis)?;
        let total = sizes.iter().try_fold(0usize, |n, &s| n.checked_add(s));
        if total != Some(self.shape()[axis]) {
            return Err(Error::Invalid {
                op: "split",
                message: format!(
                    "sizes {sizes:?} do not add up to the length {} of axis {axis} of shape {:?}",
                    self.shape()[axis],
                    self.shape()
                ),
            });
        }
        let mut start = 0;
        sizes
            .iter()
            .map(|&size| {
                let piece = self.narrow(axis, start, size);
                start += size;
                piece
            })
            .collect()
    }

    /// Splits `axis` into at most `chunks` pieces of `ceil(len / chunks)` elements, the last
    /// one shorter when they do not divide evenly (PyTorch's `chunk`); an empty axis gives
    /// one empty piece. An `Error::Invalid` names `chunks == 0`, an [`Error::Axis`] an axis
    /// out of range.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::zeros(&[2, 5]);
    /// let sizes: Vec<usize> = x.chunk(3, 1).unwrap().iter().map(|c| c.shape()[1]).collect();
    /// assert_eq!(sizes, vec![2, 2, 1]);
    /// ```
    #[track_caller]
    pub fn chunk(&self, chunks: usize, axis: usize) -> Result<Vec<Tensor<T>>> {
        self.check_axis("chunk", axis)?;
        if chunks == 0 {
            return Err(Error::Invalid {
                op: "chunk",
                message: format!("needs at least one chunk, got 0 (shape {:?})", self.shape()),
            });
        }
        let len = self.shape()[axis];
        let step = len.div_ceil(chunks).max(1);
        let sizes: Vec<usize> = (0..len.max(1))
            .step_by(step)
            .map(|start| step.min(len - start.min(len)))
            .collect();
        self.split(axis, &sizes)
    }

    /// Joins `parts`, which must all have the same shape, along a new axis at position
    /// `axis` (at most their rank). An `Error::Shape` names the first part's shape and one
    /// that differs, an `Error::Invalid` an empty list, an [`Error::Axis`] an axis past the
    /// rank.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let a = Tensor::<f32>::zeros(&[2, 3]);
    /// let b = Tensor::<f32>::ones(&[2, 3]);
    /// assert_eq!(Tensor::stack(&[&a, &b], 0).unwrap().shape(), &[2, 2, 3]);
    /// let s = Tensor::stack(&[&a, &b], 2).unwrap();
    /// assert_eq!(s.shape(), &[2, 3, 2]);
    /// assert_eq!(s.to_vec()[..2], [0.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn stack(parts: &[&Tensor<T>], axis: usize) -> Result<Tensor<T>> {
        let Some(first) = parts.first() else {
            return Err(Error::Invalid {
                op: "stack",
                message: "needs at least one tensor".into(),
            });
        };
        if axis > first.rank() {
            return Err(Error::Axis {
                op: "stack",
                axis,
                shape: first.shape().to_vec(),
            });
        }
        if let Some(other) = parts.iter().find(|p| p.shape() != first.shape()) {
            return Err(Error::Shape {
                op: "stack",
                lhs: first.shape().to_vec(),
                rhs: other.shape().to_vec(),
                reason: "every part must have the same shape".into(),
            });
        }
        let mut shape = first.shape().to_vec();
        shape.insert(axis, 1);
        let lifted = parts
            .iter()
            .map(|p| p.reshape(&shape))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor<T>> = lifted.iter().collect();
        Tensor::concat(&refs, axis)
    }
}
