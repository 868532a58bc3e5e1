//! Stochastic gradient descent with momentum, as PyTorch's `optim.SGD` defines it.

use super::{update_each, Optimizer};
use crate::nn::Param;
use crate::{Element, Result};

/// SGD with optional momentum: `v ← μ·v + g`, `p ← p − lr·v` (plain SGD when `μ = 0`).
///
/// ```
/// use backflow::nn::{Optimizer, Param, Sgd};
/// use backflow::Tensor;
/// let p = Param::new(Tensor::scalar(1.0));
/// let mut opt = Sgd::new(vec![p.clone()], 0.1).momentum(0.9);
/// (&p.get() * &p.get()).backward().unwrap(); // d(p²)/dp = 2
/// opt.step().unwrap();
/// assert!((p.get().item() - 0.8).abs() < 1e-6);
/// ```
pub struct Sgd<T: Element = f32> {
    params: Vec<Param<T>>,
    lr: T,
    momentum: T,
    /// Per parameter: the velocity `v`.
    state: Vec<[Vec<T>; 1]>,
}

impl<T: Element> Sgd<T> {
    /// Plain SGD over `params` with learning rate `lr`.
    pub fn new(params: Vec<Param<T>>, lr: T) -> Self {
        Self {
            params,
            lr,
            momentum: T::zero(),
            state: Vec::new(),
        }
    }

    /// Sets the momentum factor `μ`.
    pub fn momentum(mut self, momentum: T) -> Self {
        self.momentum = momentum;
        self
    }
}

impl<T: Element> Optimizer<T> for Sgd<T> {
    fn step(&mut self) -> Result<()> {
        let (lr, mu) = (self.lr, self.momentum);
        update_each(&self.params, &mut self.state, |p, g, [v]| {
            for ((p, &g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                *v = mu * *v + g;
                *p = *p - lr * *v;
            }
        })
    }

    fn params(&self) -> &[Param<T>] {
        &self.params
    }
}
