//! Parameter-free elementwise layers (activations, dropout), as modules for
//! [`Sequential`](super::Sequential).

use super::module::Module;
use crate::{Element, Result, Tensor};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

macro_rules! activation {
    ($(#[$doc:meta])* $name:ident, $method:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;

        impl<T: Element> Module<T> for $name {
            fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
                Ok(x.$method())
            }
        }
    };
}

activation!(
    /// `tanh(x)`, elementwise.
    Tanh,
    tanh
);
activation!(
    /// `max(x, 0)`, elementwise.
    Relu,
    relu
);
activation!(
    /// `1 / (1 + e^-x)`, elementwise.
    Sigmoid,
    sigmoid
);

/// GELU, `x·Φ(x)`, as PyTorch's `nn.GELU(approximate=...)`: [`Gelu::Exact`] (the
/// default, `½x(1 + erf(x/√2))`, [`Tensor::gelu`]) or [`Gelu::Tanh`], the tanh
/// approximation that GPT-2 and BERT use (`½x(1 + tanh(√(2/π)(x + 0.044715x³)))`,
/// [`Tensor::gelu_tanh`]).
///
/// ```
/// use backflow::nn::{Gelu, Module};
/// use backflow::Tensor;
/// let x = Tensor::<f64>::from_vec(vec![-10.0, 0.0, 1.0], &[3]).unwrap();
/// let exact = Gelu::default().forward(&x).unwrap().to_vec();
/// assert_eq!(exact[..2], [0.0, 0.0]);
/// assert!((exact[2] - 0.841_344_746).abs() < 1e-9);
/// let tanh = Gelu::Tanh.forward(&x).unwrap().to_vec();
/// assert!((tanh[2] - 0.841_192).abs() < 1e-6);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Gelu {
    /// `½x(1 + erf(x/√2))`: PyTorch's `approximate='none'`.
    #[default]
    Exact,
    /// `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`: PyTorch's `approximate='tanh'`.
    Tanh,
}

impl<T: Element> Module<T> for Gelu {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        Ok(match self {
            Gelu::Exact => x.gelu(),
            Gelu::Tanh => x.gelu_tanh(),
        })
    }
}

/// Dropout: in training, each value is zeroed with probability `p` and the rest scaled by
/// `1/(1 − p)`; in evaluation, the identity. Each forward pass draws a fresh mask from
/// the layer's seed and a call counter, so a run is reproducible.
///
/// ```
/// use backflow::nn::{Dropout, Module};
/// use backflow::Tensor;
/// let drop = Dropout::new(0.5, 7);
/// let y = drop.forward(&Tensor::<f32>::ones(&[1000])).unwrap();
/// let kept = y.data().iter().filter(|&&v| v != 0.0).count();
/// assert!(y.data().iter().all(|&v| v == 0.0 || v == 2.0));
/// assert!((400..600).contains(&kept));
/// drop.set_training(false);
/// assert_eq!(drop.forward(&Tensor::<f32>::ones(&[3])).unwrap().to_vec(), vec![1.0; 3]);
/// ```
#[derive(Debug)]
pub struct Dropout {
    p: f64,
    seed: u64,
    training: AtomicBool,
    /// Forward passes so far; mixed into each pass's seed.
    calls: AtomicU64,
}

impl Dropout {
    /// Drops with probability `p` (in `[0, 1)`; the op reports another value as an error),
    /// masks drawn from `seed`; starts in training mode.
    pub fn new(p: f64, seed: u64) -> Self {
        Self {
            p,
            seed,
            training: AtomicBool::new(true),
            calls: AtomicU64::new(0),
        }
    }

    /// Training mode (drops) or evaluation mode (the identity).
    pub fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }
}

impl<T: Element> Module<T> for Dropout {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let seed = self.seed ^ call.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x.dropout(self.p, self.training.load(Ordering::Relaxed), seed)
    }

    fn set_training(&self, training: bool) {
        Dropout::set_training(self, training);
    }
}
