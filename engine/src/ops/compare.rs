//! Comparisons producing 0/1 masks (`gt`, `lt`, `ge`, `le`, `eq_mask`), which carry no
//! gradient, and `where_cond`, which picks between two tensors by a mask and sends the
//! gradient to the one picked. All broadcast under NumPy rules.

use super::broadcast::broadcast_pair;
use crate::error::{Error, Result};
use crate::tensor::checked_len;
use crate::Tensor;
use backflow_kernels::{broadcast_shapes, compare, select_where, Compare, Element};

impl<T: Element> Tensor<T> {
    #[track_caller]
    fn compare(&self, other: &Tensor<T>, op: Compare) -> Result<Tensor<T>> {
        broadcast_pair::<T>(op.name(), self.shape(), other.shape())?;
        let (data, shape) = compare(op, self.data(), self.shape(), other.data(), other.shape());
        Ok(Tensor::raw(data, shape))
    }

    /// 1 where `self > other`, 0 elsewhere (NaN compares false), broadcasting; no gradient.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![-1.0, 0.0, 2.0], &[3]).unwrap();
    /// let mask = x.gt(&Tensor::scalar(0.0)).unwrap();
    /// assert_eq!(mask.to_vec(), vec![0.0, 0.0, 1.0]);
    /// assert!(!mask.needs_grad());
    /// ```
    #[track_caller]
    pub fn gt(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.compare(other, Compare::Gt)
    }

    /// 1 where `self < other`, 0 elsewhere, as [`gt`](Self::gt).
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![-1.0, 0.0, 2.0], &[3]).unwrap();
    /// assert_eq!(x.lt(&Tensor::scalar(0.0)).unwrap().to_vec(), vec![1.0, 0.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn lt(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.compare(other, Compare::Lt)
    }

    /// 1 where `self >= other`, 0 elsewhere, as [`gt`](Self::gt).
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![-1.0, 0.0, 2.0], &[3]).unwrap();
    /// assert_eq!(x.ge(&Tensor::scalar(0.0)).unwrap().to_vec(), vec![0.0, 1.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn ge(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.compare(other, Compare::Ge)
    }

    /// 1 where `self <= other`, 0 elsewhere, as [`gt`](Self::gt).
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![-1.0, 0.0, 2.0], &[3]).unwrap();
    /// assert_eq!(x.le(&Tensor::scalar(0.0)).unwrap().to_vec(), vec![1.0, 1.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn le(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.compare(other, Compare::Le)
    }

    /// 1 where `self == other`, 0 elsewhere, as [`gt`](Self::gt).
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![1.0, 2.0, 1.0, 0.0], &[2, 2]).unwrap();
    /// let row = Tensor::from_vec(vec![1.0, 0.0], &[2]).unwrap();
    /// assert_eq!(x.eq_mask(&row).unwrap().to_vec(), vec![1.0, 0.0, 1.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn eq_mask(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
        self.compare(other, Compare::Eq)
    }

    /// `a` where `cond` is non-zero (NaN included), `b` elsewhere, with `cond`, `a` and `b`
    /// broadcast together. Gradients flow to `a` where it was picked and to `b` elsewhere;
    /// `cond` gets none. An `Error::Shape` names two shapes that do not broadcast.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let x = Tensor::<f64>::from_vec(vec![-2.0, 3.0], &[2]).unwrap().requires_grad();
    /// let zero = Tensor::scalar(0.0);
    /// // A leaky relu: x where x > 0, 0.1·x elsewhere.
    /// let y = Tensor::where_cond(&x.gt(&zero).unwrap(), &x, &(&x * 0.1)).unwrap();
    /// assert_eq!(y.to_vec(), vec![-0.2, 3.0]);
    /// y.sum().backward().unwrap();
    /// assert_eq!(x.grad().unwrap().to_vec(), vec![0.1, 1.0]);
    /// ```
    #[track_caller]
    pub fn where_cond(cond: &Tensor<T>, a: &Tensor<T>, b: &Tensor<T>) -> Result<Tensor<T>> {
        let shape_error = |lhs: &[usize], rhs: &[usize]| Error::Shape {
            op: "where_cond",
            lhs: lhs.to_vec(),
            rhs: rhs.to_vec(),
            reason: "the condition and both branches must broadcast together".into(),
        };
        let ab = broadcast_shapes(a.shape(), b.shape())
            .ok_or_else(|| shape_error(a.shape(), b.shape()))?;
        let out =
            broadcast_shapes(cond.shape(), &ab).ok_or_else(|| shape_error(cond.shape(), &ab))?;
        checked_len::<T>("where_cond", &out)?;
        let data = select_where(
            (cond.data(), cond.shape()),
            (a.data(), a.shape()),
            (b.data(), b.shape()),
            &out,
        );
        let (cond, sa, sb) = (cond.detach(), a.shape().to_vec(), b.shape().to_vec());
        let out_shape = out.clone();
        Ok(Tensor::from_op(
            "where_cond",
            data,
            out,
            &[a, b],
            move |gy, ctx| {
                // ∂y/∂a = 1 where cond picks a, ∂y/∂b = 1 elsewhere; summed back to each shape
                let zeros = Tensor::zeros(&[]);
                let picked = |keep_a: bool| -> Result<Tensor<T>> {
                    let (x, y) = if keep_a { (gy, &zeros) } else { (&zeros, gy) };
                    let routed = select_where(
                        (cond.data(), cond.shape()),
                        (x.data(), x.shape()),
                        (y.data(), y.shape()),
                        &out_shape,
                    );
                    Ok(Tensor::raw(routed, out_shape.clone()))
                };
                if ctx.create_graph {
                    // gy times the 0/1 mask of each branch: recorded, linear in gy.
                    let ones = Tensor::ones(&[]);
                    let mask = Tensor::where_cond(&cond, &ones, &zeros)?;
                    let ga = ctx.needs(0).then(|| (gy * &mask).sum_to(&sa)).transpose()?;
                    let gb = ctx
                        .needs(1)
                        .then(|| (gy * &(-&mask + T::one())).sum_to(&sb))
                        .transpose()?;
                    return Ok(vec![ga, gb]);
                }
                let ga = ctx
                    .needs(0)
                    .then(|| picked(true)?.sum_to(&sa))
                    .transpose()?;
                let gb = ctx
                    .needs(1)
                    .then(|| picked(false)?.sum_to(&sb))
                    .transpose()?;
                Ok(vec![ga, gb])
            },
        ))
    }
}
