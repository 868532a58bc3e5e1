//! Adam (Kingma & Ba 2015), with bias correction as PyTorch's `optim.Adam` applies it.

mod state;

pub use state::AdamState;

use super::{update_each, Optimizer};
use crate::nn::Param;
use crate::{Element, Result};

/// Adam: moving averages `m`, `v` of the gradient and its square, bias-corrected:
/// `p ← p − lr·m̂ / (√v̂ + ε)`.
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
    /// Steps taken so far.
    t: i32,
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
            t: 0,
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

impl<T: Element> Optimizer<T> for Adam<T> {
    fn step(&mut self) -> Result<()> {
        self.t += 1;
        let ((b1, b2), eps, one) = (self.betas, self.eps, T::one());
        let step_size = self.lr / (one - b1.powi(self.t));
        let sqrt_c2 = (one - b2.powi(self.t)).sqrt();
        update_each(&self.params, &mut self.state, |p, g, [m, v]| {
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = b1 * *m + (one - b1) * g;
                *v = b2 * *v + (one - b2) * g * g;
                *p = *p - step_size * *m / (v.sqrt() / sqrt_c2 + eps);
            }
        })
    }

    fn params(&self) -> &[Param<T>] {
        &self.params
    }
}
