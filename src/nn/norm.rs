//! `LayerNorm` (Ba et al. 2016): each row normalised over its last dimension to zero mean
//! and unit variance, then scaled and shifted by learned per-feature weights, as one fused
//! `layer_norm` node.

use super::module::Module;
use super::Param;
use crate::{Element, Error, Result, Tensor};

/// Layer normalisation over the last dimension: `(x − mean) / √(var + ε) · weight + bias`,
/// with the biased variance, as PyTorch's `nn.LayerNorm(features)`.
///
/// Parameters: `weight` (ones) and `bias` (zeros), both `[features]`.
///
/// ```
/// use backflow::nn::{LayerNorm, Module};
/// use backflow::Tensor;
/// let norm = LayerNorm::new(4);
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 2.0, 2.0, 2.0, 6.0], &[2, 4]).unwrap();
/// let y = norm.forward(&x).unwrap();
/// for row in y.data().chunks(4) {
///     let mean: f32 = row.iter().sum::<f32>() / 4.0;
///     let var: f32 = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 4.0;
///     assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-3);
/// }
/// ```
#[derive(Clone, Debug)]
pub struct LayerNorm<T: Element = f32> {
    /// `[features]`, initially ones.
    pub weight: Param<T>,
    /// `[features]`, initially zeros.
    pub bias: Param<T>,
    eps: f64,
}

impl LayerNorm {
    /// f32 layer norm over `features` values, `ε = 1e-5`.
    pub fn new(features: usize) -> Self {
        Self::new_typed(features)
    }
}

impl<T: Element> LayerNorm<T> {
    /// [`LayerNorm::new`] for any element type.
    pub fn new_typed(features: usize) -> Self {
        Self {
            weight: Param::from(Tensor::ones(&[features])),
            bias: Param::from(Tensor::zeros(&[features])),
            eps: 1e-5,
        }
    }

    /// Sets `ε`, added to the variance.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
}

impl<T: Element> Module<T> for LayerNorm<T> {
    fn forward(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let features = self.weight.numel();
        if x.shape().last() != Some(&features) {
            return Err(Error::Invalid {
                op: "LayerNorm",
                message: format!(
                    "the last dimension of {:?} must be the {features} normalised features",
                    x.shape()
                ),
            });
        }
        x.layer_norm(
            1,
            Some(&self.weight.get()),
            Some(&self.bias.get()),
            self.eps,
        )
    }

    fn named_parameters(&self) -> Vec<(String, Param<T>)> {
        vec![
            ("weight".to_string(), self.weight.clone()),
            ("bias".to_string(), self.bias.clone()),
        ]
    }
}
