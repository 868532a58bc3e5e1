//! `WeakTensor`: a handle that does not keep a tensor alive, for hooks that refer to their
//! own tensor without forming a reference cycle.

use super::{Inner, Tensor};
use crate::sync::Weak;
use backflow_kernels::Element;

/// A handle on a tensor that does not keep it alive, from [`Tensor::downgrade`]; it gives
/// the tensor back with [`upgrade`](WeakTensor::upgrade) while some [`Tensor`] still holds
/// it.
///
/// A hook or callback registered on a tensor is owned by that tensor's graph node. One that
/// captures a clone of the same tensor (or of a tensor computed from it) forms a
/// reference cycle, which is never freed. Capturing a `WeakTensor` instead breaks it:
///
/// ```
/// use backflow::Tensor;
/// let x = Tensor::<f64>::scalar(3.0).requires_grad();
/// let me = x.downgrade();
/// x.on_grad_ready(move |g| {
///     if let Some(x) = me.upgrade() {
///         assert_eq!(g.item(), 2.0 * x.item());
///     }
/// });
/// (&x * &x).backward().unwrap();
/// let weak = x.downgrade();
/// drop(x);
/// assert!(weak.upgrade().is_none()); // freed: no cycle kept it alive
/// ```
pub struct WeakTensor<T: Element = f32>(Weak<Inner<T>>);

impl<T: Element> Tensor<T> {
    /// A [`WeakTensor`] on this tensor, which does not keep it alive: what a hook on this
    /// tensor should capture to refer to it.
    pub fn downgrade(&self) -> WeakTensor<T> {
        WeakTensor(crate::sync::Arc::downgrade(&self.inner))
    }
}

impl<T: Element> WeakTensor<T> {
    /// The tensor, if a [`Tensor`] handle on it still exists.
    pub fn upgrade(&self) -> Option<Tensor<T>> {
        self.0.upgrade().map(|inner| Tensor { inner })
    }
}

impl<T: Element> Clone for WeakTensor<T> {
    fn clone(&self) -> Self {
        Self(Weak::clone(&self.0))
    }
}

impl<T: Element> std::fmt::Debug for WeakTensor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.upgrade() {
            Some(t) => write!(f, "WeakTensor({t:?})"),
            None => write!(f, "WeakTensor(dropped)"),
        }
    }
}
