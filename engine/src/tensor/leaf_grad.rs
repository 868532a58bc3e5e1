//! Setting a leaf's accumulated gradient from outside a backward pass: what data-parallel
//! training does once the gradients of every process have been averaged.

use super::node::NodeKind;
use super::Tensor;
use crate::error::{Error, Result};
use backflow_kernels::Element;

impl<T: Element> Tensor<T> {
    /// Replaces this leaf's accumulated gradient ([`grad`](Self::grad)) with `grad`, which
    /// must have the leaf's shape; `None` clears it, as [`zero_grad`](Self::zero_grad)
    /// does. Nothing is recorded and no hook or callback runs. Errs on a tensor that does
    /// not require a gradient, on the output of an op, and on a shape mismatch.
    ///
    /// ```
    /// use backflow::Tensor;
    /// let w = Tensor::<f32>::ones(&[2]).requires_grad();
    /// (&w * 3.0).sum().backward().unwrap();
    /// w.set_grad(Some(Tensor::from_vec(vec![0.5, 0.25], &[2]).unwrap())).unwrap();
    /// assert_eq!(w.grad().unwrap().to_vec(), vec![0.5, 0.25]);
    /// assert!(w.set_grad(Some(Tensor::zeros(&[3]))).is_err()); // another shape
    /// ```
    pub fn set_grad(&self, grad: Option<Tensor<T>>) -> Result<()> {
        let invalid = |message: String| Error::Invalid {
            op: "set_grad",
            message,
        };
        let Some(node) = self.inner.node.as_deref() else {
            return Err(invalid(format!(
                "the tensor of shape {:?} does not require grad",
                self.shape()
            )));
        };
        let NodeKind::Leaf { grad: slot } = &node.kind else {
            return Err(invalid(format!(
                "the tensor of shape {:?} is the output of `{}`, not a leaf",
                self.shape(),
                node.op
            )));
        };
        if let Some(g) = &grad {
            if g.shape() != self.shape() {
                return Err(Error::Shape {
                    op: "set_grad",
                    lhs: self.shape().to_vec(),
                    rhs: g.shape().to_vec(),
                    reason: "a gradient has its tensor's shape".into(),
                });
            }
        }
        // A stored gradient is detached: it starts no graph of its own.
        *slot.lock() = grad.map(|g| g.detach());
        Ok(())
    }
}
