//! AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay, as PyTorch's
//! `optim.AdamW`.

use super::{Adam, AdamState, Optimizer};
use crate::nn::Param;
use crate::{Element, Result};

/// AdamW: each parameter with a gradient first decays, `p ← p·(1 − lr·λ)`, then takes
/// [`Adam`]'s step (the decay is not part of the gradient, so the moments never see it).
/// Defaults as PyTorch's `optim.AdamW`: `λ = 1e-2`, `β = (0.9, 0.999)`, `ε = 1e-8`; step
/// counts per parameter, as Adam's.
///
/// ```
/// use backflow::nn::{AdamW, Optimizer, Param};
/// use backflow::Tensor;
/// let p = Param::new(Tensor::scalar(1.0));
/// let mut opt = AdamW::new(vec![p.clone()], 0.1).weight_decay(0.5);
/// (&p.get() * &p.get()).backward().unwrap();
/// opt.step().unwrap(); // decays to 1·(1 − 0.1·0.5) = 0.95, then Adam's first step of lr
/// assert!((p.get().item() - 0.85).abs() < 1e-5);
/// ```
pub struct AdamW<T: Element = f32> {
    adam: Adam<T>,
}

impl<T: Element> AdamW<T> {
    /// AdamW over `params` with learning rate `lr` and PyTorch's defaults.
    pub fn new(params: Vec<Param<T>>, lr: T) -> Self {
        let mut adam = Adam::new(params, lr);
        adam.decay = T::from_f64(1e-2);
        Self { adam }
    }

    /// Sets the weight decay `λ`.
    pub fn weight_decay(mut self, weight_decay: T) -> Self {
        self.adam.decay = weight_decay;
        self
    }

    /// Sets the decay rates of the moment estimates.
    pub fn betas(mut self, beta1: T, beta2: T) -> Self {
        self.adam = self.adam.betas(beta1, beta2);
        self
    }

    /// Sets `ε`, added to the denominator.
    pub fn eps(mut self, eps: T) -> Self {
        self.adam = self.adam.eps(eps);
        self
    }
}

impl AdamW {
    /// A copy of the step counts and moment estimates, as [`Adam::state`].
    pub fn state(&self) -> AdamState {
        self.adam.state()
    }

    /// Continues from `state`, as [`Adam::load_state`].
    pub fn load_state(&mut self, state: AdamState) -> Result<()> {
        self.adam.load_state(state)
    }
}

impl<T: Element> Optimizer<T> for AdamW<T> {
    fn step(&mut self) -> Result<()> {
        self.adam.step()
    }

    fn params(&self) -> &[Param<T>] {
        self.adam.params()
    }

    fn lr(&self) -> T {
        self.adam.lr()
    }

    fn set_lr(&mut self, lr: T) {
        self.adam.set_lr(lr);
    }
}
