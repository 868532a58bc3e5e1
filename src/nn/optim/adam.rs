//! Adam (Kingma & Ba 2015), with bias correction as PyTorch's `optim.Adam` applies it.

mod state;

pub use state::AdamState;

use super::{update_each, Optimizer};
use crate::nn::Param;
use crate::Result;

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
pub struct Adam {
    params: Vec<Param>,
    lr: f32,
    betas: (f32, f32),
    eps: f32,
    /// Steps taken so far.
    t: i32,
    /// Per parameter: the first and second moment estimates `m`, `v`.
    state: Vec<[Vec<f32>; 2]>,
}

impl Adam {
    /// Adam over `params` with learning rate `lr`, `β = (0.9, 0.999)`, `ε = 1e-8`.
    pub fn new(params: Vec<Param>, lr: f32) -> Self {
        Self {
            params,
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            t: 0,
            state: Vec::new(),
        }
    }

    /// Sets the decay rates of the moment estimates.
    pub fn betas(mut self, beta1: f32, beta2: f32) -> Self {
        self.betas = (beta1, beta2);
        self
    }

    /// Sets `ε`, added to the denominator.
    pub fn eps(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }
}

impl Optimizer for Adam {
    fn step(&mut self) -> Result<()> {
        self.t += 1;
        let ((b1, b2), eps) = (self.betas, self.eps);
        let step_size = self.lr / (1.0 - b1.powi(self.t));
        let sqrt_c2 = (1.0 - b2.powi(self.t)).sqrt();
        update_each(&self.params, &mut self.state, |p, g, [m, v]| {
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *p -= step_size * *m / (v.sqrt() / sqrt_c2 + eps);
            }
        })
    }

    fn params(&self) -> &[Param] {
        &self.params
    }
}
