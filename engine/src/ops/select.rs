//! Selection by index, for embeddings and routing: `index_select` and `gather`, whose
//! backwards scatter-add (a repeated index sums its gradients). The scatter-adds are
//! recorded ops too, each with its selection as backward, so `create_graph` works.

use crate::error::{Error, Result};
use crate::sync::Arc;
use crate::Tensor;
use backflow_kernels::{gather, index_add, index_select, scatter_add, Element};

impl<T: Element> Tensor<T> {
    /// The slices at `indices` along `axis`, in that order (repeats allowed): the result has
    /// this shape with `axis` of length `indices.len()`. The backward adds each slice's
    /// gradient into its index. An [`Error::Axis`] names an axis out of range, an
    /// `Error::Invalid` an index past the axis.
    ///
    /// ```
    /// use backflow::Tensor;
    /// // An embedding table of 3 rows of width 2, looked up at tokens [2, 0, 2].
    /// let table = Tensor::<f64>::from_vec(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0], &[3, 2])
    ///     .unwrap()
    ///     .requires_grad();
    /// let rows = table.index_select(0, &[2, 0, 2]).unwrap();
    /// assert_eq!(rows.to_vec(), vec![4.0, 5.0, 0.0, 1.0, 4.0, 5.0]);
    /// rows.sum().backward().unwrap();
    /// assert_eq!(table.grad().unwrap().to_vec(), vec![1.0, 1.0, 0.0, 0.0, 2.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn index_select(&self, axis: usize, indices: &[usize]) -> Result<Tensor<T>> {
        self.check_axis("index_select", axis)?;
        check_indices("index_select", self.shape(), axis, indices)?;
        let shape = self.shape().to_vec();
        let mut out_shape = shape.clone();
        out_shape[axis] = indices.len();
        crate::tensor::checked_len::<T>("index_select", &out_shape)?;
        let data = index_select(self.data(), &shape, axis, indices);
        let indices: Arc<[usize]> = indices.into();
        Ok(Tensor::from_op(
            "index_select",
            data,
            out_shape,
            &[self],
            move |gy, _| {
                // ∂y_k/∂x_i = 1 where indices[k] == i: gy's slices added into their indices
                Ok(vec![Some(gy.index_add_into(&shape, axis, &indices))])
            },
        ))
    }

    /// The gradient of `index_select`: this tensor's slices added into a zero tensor of
    /// `shape` at `indices` along `axis`. Recorded, with `index_select` as its backward.
    #[track_caller]
    fn index_add_into(&self, shape: &[usize], axis: usize, indices: &Arc<[usize]>) -> Tensor<T> {
        let data = index_add(self.data(), shape, axis, indices);
        let indices = Arc::clone(indices);
        Tensor::from_op("index_add", data, shape.to_vec(), &[self], move |g, _| {
            // index_add is linear, and index_select is its adjoint
            Ok(vec![Some(g.index_select(axis, &indices)?)])
        })
    }

    /// PyTorch's `gather`: for every position `p` of `index_shape` (row-major, with
    /// `index[p]` its value), `y[p] = self[p with its coordinate on axis replaced by
    /// index[p]]`. `index_shape` has this tensor's rank and is at most its shape off `axis`;
    /// the result has `index_shape`. The backward adds each gradient back where it was read.
    ///
    /// An [`Error::Axis`] names an axis out of range, an `Error::Shape` an index shape that
    /// does not fit, an `Error::Invalid` an index past the axis or an index list that does not
    /// fill `index_shape`.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// // Per row, the columns [0, 0] and [1, 0].
    /// let y = x.gather(1, &[0, 0, 1, 0], &[2, 2]).unwrap();
    /// assert_eq!(y.to_vec(), vec![1.0, 1.0, 4.0, 3.0]);
    /// ```
    #[track_caller]
    pub fn gather(&self, axis: usize, index: &[usize], index_shape: &[usize]) -> Result<Tensor<T>> {
        self.check_axis("gather", axis)?;
        let shape = self.shape().to_vec();
        let fits = index_shape.len() == shape.len()
            && (0..shape.len()).all(|d| d == axis || index_shape[d] <= shape[d]);
        if !fits {
            return Err(Error::Shape {
                op: "gather",
                lhs: shape,
                rhs: index_shape.to_vec(),
                reason: format!(
                    "the index shape must have the tensor's rank and be at most its size on \
                     every axis but {axis}"
                ),
            });
        }
        let len = crate::tensor::checked_len::<T>("gather", index_shape)?;
        if index.len() != len {
            return Err(Error::Invalid {
                op: "gather",
                message: format!(
                    "{} indices do not fill the index shape {index_shape:?} ({len} elements)",
                    index.len()
                ),
            });
        }
        check_indices("gather", &shape, axis, index)?;
        let data = gather(self.data(), &shape, axis, index, index_shape);
        let index: Arc<[usize]> = index.into();
        let index_shape = index_shape.to_vec();
        Ok(Tensor::from_op(
            "gather",
            data,
            index_shape.clone(),
            &[self],
            move |gy, _| {
                // ∂y_p/∂x_q = 1 where q is the position p read: gy added back there
                Ok(vec![Some(gy.scatter_add_into(
                    &shape,
                    axis,
                    &index,
                    &index_shape,
                ))])
            },
        ))
    }

    /// The gradient of `gather`: this tensor's elements added into a zero tensor of `shape`
    /// where `gather` read them. Recorded, with `gather` as its backward.
    #[track_caller]
    pub(crate) fn scatter_add_into(
        &self,
        shape: &[usize],
        axis: usize,
        index: &Arc<[usize]>,
        index_shape: &[usize],
    ) -> Tensor<T> {
        let data = scatter_add(self.data(), shape, axis, index, index_shape);
        let (index, index_shape) = (Arc::clone(index), index_shape.to_vec());
        Tensor::from_op("scatter_add", data, shape.to_vec(), &[self], move |g, _| {
            // scatter_add is linear, and gather is its adjoint
            Ok(vec![Some(g.gather(axis, &index, &index_shape)?)])
        })
    }
}

/// An `Error::Invalid` naming `op`, the first index that is not below `shape[axis]`, the
/// axis and the shape.
fn check_indices(op: &'static str, shape: &[usize], axis: usize, indices: &[usize]) -> Result<()> {
    match indices.iter().position(|&i| i >= shape[axis]) {
        None => Ok(()),
        Some(at) => Err(Error::Invalid {
            op,
            message: format!(
                "index {} (at position {at}) is out of range for axis {axis} of shape {shape:?}",
                indices[at]
            ),
        }),
    }
}
