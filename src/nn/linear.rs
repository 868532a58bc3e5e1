//! `Linear`: the affine layer `y = x·Wᵀ + b`.

use super::module::Module;
use super::{Init, Param};
use crate::{Result, Tensor};

/// A fully connected layer `y = x·Wᵀ + b` on `[batch, in]` inputs.
///
/// The weight is stored `[out, in]` and the bias `[out]`, as in PyTorch's `nn.Linear`, so
/// saved weights load there unchanged.
///
/// ```
/// use backflow::nn::{Linear, Module};
/// use backflow::Tensor;
/// let layer = Linear::new(3, 2, 0);
/// let y = layer.forward(&Tensor::ones(&[4, 3])).unwrap();
/// assert_eq!(y.shape(), &[4, 2]);
/// ```
#[derive(Clone, Debug)]
pub struct Linear {
    /// `[out, in]`.
    pub weight: Param,
    /// `[out]`, or `None` for a layer without bias.
    pub bias: Option<Param>,
}

impl Linear {
    /// A layer with PyTorch's default initialisation ([`Init::TorchDefault`]) and a bias,
    /// drawn reproducibly from `seed`.
    pub fn new(inputs: usize, outputs: usize, seed: u64) -> Self {
        Self::with_init(inputs, outputs, Init::default(), true, seed)
    }

    /// A layer with weights drawn by `init`; the bias (if any) is drawn as PyTorch does,
    /// from `U(-1/√in, 1/√in)`.
    pub fn with_init(inputs: usize, outputs: usize, init: Init, bias: bool, seed: u64) -> Self {
        let weight = init.sample(&[outputs, inputs], inputs, outputs, seed);
        // A different stream for the bias than for the weight.
        let bias_seed = seed ^ 0x9E37_79B9_7F4A_7C15;
        let bias = bias.then(|| Param::new(Init::TorchDefault.sample(&[outputs], inputs, outputs, bias_seed)));
        Self {
            weight: Param::new(weight),
            bias,
        }
    }

    /// Number of input features.
    pub fn inputs(&self) -> usize {
        self.weight.shape()[1]
    }

    /// Number of output features.
    pub fn outputs(&self) -> usize {
        self.weight.shape()[0]
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.matmul(&self.weight.get().t()?)?;
        match &self.bias {
            Some(b) => y.try_add(&b.get()),
            None => Ok(y),
        }
    }

    fn named_parameters(&self) -> Vec<(String, Param)> {
        let mut params = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            params.push(("bias".to_string(), b.clone()));
        }
        params
    }
}
