//! Adam (Kingma & Ba 2015), with bias correction as PyTorch's `optim.Adam` applies it: per
//! parameter, from the number of steps that updated that parameter.

mod state;

pub use state::AdamState;

use super::{update_each, Optimizer};
use crate::nn::Param;
use crate::{Element, Result};

/// Adam: moving averages `m`, `v` of the gradient and its square, bias-corrected:
/// `p ← p − lr·m̂ / (√v̂ + ε)`.
///
/// Each parameter counts its own steps, as PyTorch does: a parameter without a gradient at
/// a step is left alone and its count does not advance, so its first real update gets the
/// first step's bias correction.
///
/// ```
/// use backflow::nn::{Adam, Optimizer, Param};
/// use backflow::Tensor;
/// let p = Param::new(Tensor::scalar(1.0));
/// let mut opt = Adam::new(vec![p.clone()], 0.1);
/// (&p.get() * &p.get()).backward().unwrap();
/// opt.step().unwrap(); // the first step moves by lr, whatever the gradient's size
/// assert!((p.get().item() - 0.9).abs() < 1e-5);
/// ```
///
/// The arithmetic is in the parameters' element type (f32 unless named).
pub struct Adam<T: Element = f32> {
    params: Vec<Param<T>>,
    lr: T,
    betas: (T, T),
    eps: T,
    /// Decoupled weight decay, applied as `p ← p·(1 − lr·λ)` before the update ([`AdamW`]'s);
    /// zero for Adam.
    ///
    /// [`AdamW`]: super::AdamW
    pub(super) decay: T,
    /// Per parameter: the steps that updated it (empty before the first step).
    steps: Vec<u64>,
    /// Per parameter: the first and second moment estimates `m`, `v`.
    state: Vec<[Vec<T>; 2]>,
}

impl<T: Element> Adam<T> {
    /// Adam over `params` with learning rate `lr`, `β = (0.9, 0.999)`, `ε = 1e-8`.
    pub fn new(params: Vec<Param<T>>, lr: T) -> Self {
        Self {
            params,
            lr,
            betas: (T::from_f64(0.9), T::from_f64(0.999)),
            eps: T::from_f64(1e-8),
            decay: T::zero(),
            steps: Vec::new(),
            state: Vec::new(),
        }
    }

    /// Sets the decay rates of the moment estimates.
    pub fn betas(mut self, beta1: T, beta2: T) -> Self {
        self.betas = (beta1, beta2);
        self
    }

    /// Sets `ε`, added to the denominator.
    pub fn eps(mut self, eps: T) -> Self {
        self.eps = eps;
        self
    }
}

/// `b^t`, exact in `powi` while `t` fits an `i32`.
fn pow_steps<T: Element>(b: T, t: u64) -> T {
    match i32::try_from(t) {
        Ok(t) => b.powi(t),
        Err(_) => b.powf(T::from_f64(t as f64)),
    }
}

impl<T: Element> Optimizer<T> for Adam<T> {
    fn step(&mut self) -> Result<()> {
        let ((b1, b2), eps, one, lr) = (self.betas, self.eps, T::one(), self.lr);
        let shrink = one - lr * self.decay;
        if self.steps.len() != self.params.len() {
            self.steps = vec![0; self.params.len()];
        }
        let steps = &mut self.steps;
        update_each(&self.params, &mut self.state, |i, p, g, [m, v]| {
            steps[i] += 1;
            let step_size = lr / (one - pow_steps(b1, steps[i]));
            let sqrt_c2 = (one - pow_steps(b2, steps[i])).sqrt();
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                if shrink != one {
                    *p = *p * shrink;
                }
                *m = b1 * *m + (one - b1) * g;
                *v = b2 * *v + (one - b2) * g * g;
                *p = *p - step_size * *m / (v.sqrt() / sqrt_c2 + eps);
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
