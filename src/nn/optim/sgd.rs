//! Stochastic gradient descent with momentum and weight decay, as PyTorch's `optim.SGD`
//! defines them.

use super::{update_each, Optimizer};
use crate::nn::Param;
use crate::{Element, Error, Result};

/// SGD with optional weight decay `λ` and momentum `μ`, as PyTorch's `optim.SGD` (without
/// dampening): `g ← g + λ·p`, `v ← μ·v + g`, then `p ← p − lr·v`, or with Nesterov
/// momentum `p ← p − lr·(g + μ·v)`. Plain SGD when `λ = μ = 0`.
///
/// ```
/// use backflow::nn::{Optimizer, Param, Sgd};
/// use backflow::Tensor;
/// let p = Param::new(Tensor::scalar(1.0));
/// let mut opt = Sgd::new(vec![p.clone()], 0.1).momentum(0.9);
/// (&p.get() * &p.get()).backward().unwrap(); // d(p²)/dp = 2
/// opt.step().unwrap();
/// assert!((p.get().item() - 0.8).abs() < 1e-6);
/// // Weight decay adds λ·p to the gradient: 1.6 + 0.5·0.8 = 2.
/// let mut opt = Sgd::new(vec![p.clone()], 0.1).weight_decay(0.5);
/// (&p.get() * &p.get()).backward().unwrap(); // d(p²)/dp = 1.6
/// opt.step().unwrap();
/// assert!((p.get().item() - (0.8 - 0.1 * (1.6 + 0.5 * 0.8))).abs() < 1e-6);
/// ```
pub struct Sgd<T: Element = f32> {
    params: Vec<Param<T>>,
    lr: T,
    momentum: T,
    weight_decay: T,
    nesterov: bool,
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
            weight_decay: T::zero(),
            nesterov: false,
            state: Vec::new(),
        }
    }

    /// Sets the momentum factor `μ`.
    pub fn momentum(mut self, momentum: T) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets the weight decay `λ` (an L2 penalty `λ/2·‖p‖²`: `λ·p` added to the gradient).
    pub fn weight_decay(mut self, weight_decay: T) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Uses Nesterov momentum: the step is `g + μ·v` instead of `v`. As in PyTorch, it
    /// needs a momentum above 0: otherwise [`Optimizer::step`] returns an
    /// `Error::Invalid` (naming `sgd`, nesterov and the momentum) and changes nothing,
    /// rather than silently taking plain SGD steps.
    ///
    /// ```
    /// use backflow::nn::{Optimizer, Param, Sgd};
    /// use backflow::Tensor;
    /// let p = Param::new(Tensor::scalar(1.0));
    /// (&p.get() * &p.get()).backward().unwrap();
    /// let mut opt = Sgd::new(vec![p.clone()], 0.1).nesterov(true);
    /// assert!(opt.step().unwrap_err().to_string().contains("nesterov"));
    /// assert_eq!(p.get().item(), 1.0);
    /// ```
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }
}

impl<T: Element> Optimizer<T> for Sgd<T> {
    fn step(&mut self) -> Result<()> {
        let (lr, mu, wd, nesterov) = (self.lr, self.momentum, self.weight_decay, self.nesterov);
        if nesterov && (mu.is_nan() || mu <= T::zero()) {
            return Err(Error::Invalid {
                op: "sgd",
                message: format!(
                    "nesterov momentum needs a momentum above 0, but the momentum is {mu:?}; \
                     set .momentum(μ) or leave nesterov off"
                ),
            });
        }
        update_each(&self.params, &mut self.state, |_, p, g, [v]| {
            for ((p, &g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                let g = if wd == T::zero() { g } else { g + wd * *p };
                *v = mu * *v + g;
                let step = if nesterov { g + mu * *v } else { *v };
                *p = *p - lr * step;
            }
        })
    }

    fn params(&self) -> &[Param<T>] {
        &self.params
    }

    fn lr(&self) -> T {
        self.lr
    }

    fn set_lr(&mut self, lr: T) {
        self.lr = lr;
    }
}
