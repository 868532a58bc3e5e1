//! Stochastic gradient descent with momentum, as PyTorch's `optim.SGD` defines it.

use super::{update_each, Optimizer};
use crate::nn::Param;
use crate::Result;

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
pub struct Sgd {
    params: Vec<Param>,
    lr: f32,
    momentum: f32,
    /// Per parameter: the velocity `v`.
    state: Vec<[Vec<f32>; 1]>,
}

impl Sgd {
    /// Plain SGD over `params` with learning rate `lr`.
    pub fn new(params: Vec<Param>, lr: f32) -> Self {
        Self {
            params,
            lr,
            momentum: 0.0,
            state: Vec::new(),
        }
    }

    /// Sets the momentum factor `μ`.
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }
}

impl Optimizer for Sgd {
    fn step(&mut self) -> Result<()> {
        let (lr, mu) = (self.lr, self.momentum);
        update_each(&self.params, &mut self.state, |p, g, [v]| {
            for ((p, &g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                *v = mu * *v + g;
                *p -= lr * *v;
            }
        })
    }

    fn params(&self) -> &[Param] {
        &self.params
    }
}
