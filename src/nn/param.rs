//! `Param`: a trainable tensor whose values an optimiser updates.
//!
//! Tensor data is immutable, so a parameter is a shared cell holding its current leaf. The
//! forward pass reads it with [`Param::get`]; an optimiser step computes the new values on
//! raw data and puts them into the cell with [`Param::set`], keeping the leaf's autograd
//! identity ([`Tensor::with_values`]): hooks and grad-ready callbacks registered on any
//! `p.get()` stay registered across steps, as they do on a PyTorch parameter. Every clone
//! of a `Param` (the module's, the optimiser's) sees the update.

use crate::{Element, Error, Result, Tensor};
use std::sync::{Arc, RwLock};

/// A trainable parameter: a shared cell holding the current leaf tensor (f32 by default,
/// or f64).
///
/// ```
/// use backflow::{nn::Param, Tensor};
/// let p = Param::new(Tensor::ones(&[2]));
/// let y = (&p.get() * 3.0).sum();
/// y.backward().unwrap();
/// assert_eq!(p.grad().unwrap().to_vec(), vec![3.0, 3.0]);
/// p.set_data(vec![5.0, 6.0]).unwrap(); // new values; the gradient starts afresh
/// assert_eq!(p.get().to_vec(), vec![5.0, 6.0]);
/// assert!(p.grad().is_none());
/// ```
pub struct Param<T: Element = f32> {
    /// Always a leaf that requires grad.
    cell: Arc<RwLock<Tensor<T>>>,
}

impl<T: Element> Clone for Param<T> {
    fn clone(&self) -> Self {
        Self {
            cell: Arc::clone(&self.cell),
        }
    }
}

impl<T: Element> std::fmt::Debug for Param<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Param({:?})", self.get())
    }
}

impl Param {
    /// An f32 parameter starting at `value`'s data (detached, then made a leaf that
    /// requires grad). [`Param::from`] takes a tensor of any element type.
    pub fn new(value: Tensor) -> Self {
        Self::from(value)
    }
}

impl<T: Element> From<Tensor<T>> for Param<T> {
    /// A parameter starting at `value`'s data (detached, then made a leaf that requires grad).
    ///
    /// ```
    /// use backflow::{nn::Param, Tensor};
    /// let p = Param::from(Tensor::<f64>::ones(&[2]));
    /// assert_eq!(p.get().to_vec(), vec![1.0f64, 1.0]);
    /// ```
    fn from(value: Tensor<T>) -> Self {
        Self {
            cell: Arc::new(RwLock::new(value.detach().requires_grad())),
        }
    }
}

impl<T: Element> Param<T> {
    /// The current leaf, to use in a forward pass.
    pub fn get(&self) -> Tensor<T> {
        self.cell.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets the parameter's values to `value`'s data and clears its gradient. The leaf keeps
    /// its identity, so hooks and grad-ready callbacks registered on it stay; graphs built
    /// before keep the values they saved. Errs if the shape changes.
    pub fn set(&self, value: Tensor<T>) -> Result<()> {
        let cell = self.cell.read().unwrap_or_else(|e| e.into_inner());
        if value.shape() != cell.shape() {
            return Err(Error::Shape {
                op: "Param::set",
                lhs: cell.shape().to_vec(),
                rhs: value.shape().to_vec(),
                reason: "a parameter keeps its shape".into(),
            });
        }
        drop(cell);
        self.set_data(value.to_vec())
    }

    /// [`set`](Self::set) from raw values in row-major order.
    pub fn set_data(&self, data: Vec<T>) -> Result<()> {
        let mut cell = self.cell.write().unwrap_or_else(|e| e.into_inner());
        let updated = cell.with_values(data)?;
        updated.zero_grad();
        *cell = updated;
        Ok(())
    }

    /// The shape.
    pub fn shape(&self) -> Vec<usize> {
        self.get().shape().to_vec()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.get().numel()
    }

    /// The gradient accumulated into the current leaf, if any.
    pub fn grad(&self) -> Option<Tensor<T>> {
        self.get().grad()
    }

    /// Clears the current leaf's gradient.
    pub fn zero_grad(&self) {
        self.get().zero_grad();
    }
}
