//! `attention`: a transformer encoder over the digit image read as 8 row tokens of 8
//! pixels. Tokens are embedded linearly and given learned positions; each of the encoder
//! layers is pre-norm (`h + attention(norm(h))`, then `h + mlp(norm(h))`, the MLP with a
//! GELU in its tanh approximation, `Gelu::Tanh`, the form this model was trained and
//! measured with); the tokens are normalised, mean-pooled and classified by a linear layer.
//! Every attention head is a branch of its own (`backflow::nn::MultiHeadAttention`).

use super::{Classifier, Recipe};
use backflow::nn::{
    prefixed, Embedding, Gelu, LayerNorm, Linear, Module, MultiHeadAttention, Param, Sequential,
};
use backflow::{Result, Tensor};

/// Tokens per image (its rows) and pixels per token.
const TOKENS: usize = 8;

/// The default training recipe: epochs, batch and Adam's learning rate.
pub const RECIPE: Recipe = Recipe {
    epochs: 30,
    batch: 64,
    lr: 2e-3,
};

/// A parameter name only this model has, to recognise its weights files.
pub const MARKER: &str = "layers.0.attention.out.weight";

/// The encoder's sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionConfig {
    /// Features per token.
    pub d_model: usize,
    /// Attention heads per layer.
    pub heads: usize,
    /// Encoder layers.
    pub layers: usize,
    /// Hidden width of each layer's MLP.
    pub mlp: usize,
}

impl Default for AttentionConfig {
    /// 64 features, 8 heads of 8, 2 layers, MLP width 128.
    fn default() -> Self {
        Self {
            d_model: 64,
            heads: 8,
            layers: 2,
            mlp: 128,
        }
    }
}

/// One pre-norm encoder layer.
pub struct EncoderLayer {
    norm1: LayerNorm,
    attention: MultiHeadAttention,
    norm2: LayerNorm,
    mlp: Sequential,
}

impl EncoderLayer {
    /// A layer of `config`'s sizes, weights drawn from `seed`.
    pub fn new(config: &AttentionConfig, seed: u64) -> Self {
        let d = config.d_model;
        Self {
            norm1: LayerNorm::new(d),
            attention: MultiHeadAttention::new(d, config.heads, seed),
            norm2: LayerNorm::new(d),
            mlp: Sequential::new()
                .push(Linear::new(d, config.mlp, seed ^ 1))
                // The tanh form it was trained and measured with (the figures in
                // docs/models.md and BENCHMARKS.md), as its PyTorch peer
                // (benches/peers/attention_digits.py) uses; `Gelu::Exact` is the default.
                .push(Gelu::Tanh)
                .push(Linear::new(config.mlp, d, seed ^ 2)),
        }
    }
}

impl Module for EncoderLayer {
    /// `[batch, tokens, d]` to the same shape.
    fn forward(&self, h: &Tensor) -> Result<Tensor> {
        let h = h.try_add(&self.attention.forward(&self.norm1.forward(h)?)?)?;
        let shape = h.shape().to_vec();
        let rows = self
            .norm2
            .forward(&h)?
            .reshape(&[shape[0] * shape[1], shape[2]])?;
        h.try_add(&self.mlp.forward(&rows)?.reshape(&shape)?)
    }

    fn named_parameters(&self) -> Vec<(String, Param)> {
        let mut params = prefixed("norm1", self.norm1.named_parameters());
        params.extend(prefixed("attention", self.attention.named_parameters()));
        params.extend(prefixed("norm2", self.norm2.named_parameters()));
        params.extend(prefixed("mlp", self.mlp.named_parameters()));
        params
    }
}

/// The encoder classifier; parameters are named as in `benches/peers/attention_digits.py`.
pub struct AttentionNet {
    embed: Linear,
    positions: Embedding,
    layers: Vec<EncoderLayer>,
    norm: LayerNorm,
    head: Linear,
    d_model: usize,
}

impl AttentionNet {
    /// The model at `config`'s sizes, weights drawn from `seed`.
    pub fn new(config: &AttentionConfig, seed: u64) -> Self {
        let layer_seed = |i: u64| seed.wrapping_mul(0x2545_F491_4F6C_DD1D).wrapping_add(i);
        Self {
            embed: Linear::new(TOKENS, config.d_model, layer_seed(0)),
            positions: Embedding::new(TOKENS, config.d_model, layer_seed(1)),
            layers: (0..config.layers as u64)
                .map(|l| EncoderLayer::new(config, layer_seed(100 * (l + 1))))
                .collect(),
            norm: LayerNorm::new(config.d_model),
            head: Linear::new(config.d_model, 10, layer_seed(2)),
            d_model: config.d_model,
        }
    }

    /// The first encoder layer, for drawing its graph.
    pub fn first_layer(&self) -> &EncoderLayer {
        &self.layers[0]
    }

    /// The embedded tokens with their positions: `[batch, 8, d_model]`.
    pub fn embed(&self, x: &Tensor) -> Result<Tensor> {
        let batch = x.shape()[0];
        let tokens = self
            .embed
            .forward(&x.reshape(&[batch * TOKENS, TOKENS])?)?
            .reshape(&[batch, TOKENS, self.d_model])?;
        let positions = self.positions.lookup(&(0..TOKENS).collect::<Vec<_>>())?;
        tokens.try_add(&positions)
    }
}

impl Module for AttentionNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.embed(x)?;
        for layer in &self.layers {
            h = layer.forward(&h)?;
        }
        let pooled = self.norm.forward(&h)?.mean_dim(1, false)?;
        self.head.forward(&pooled)
    }

    fn named_parameters(&self) -> Vec<(String, Param)> {
        let mut params = prefixed("embed", self.embed.named_parameters());
        params.extend(prefixed("positions", self.positions.named_parameters()));
        for (l, layer) in self.layers.iter().enumerate() {
            params.extend(prefixed(&format!("layers.{l}"), layer.named_parameters()));
        }
        params.extend(prefixed("norm", self.norm.named_parameters()));
        params.extend(prefixed("head", self.head.named_parameters()));
        params
    }
}

impl Classifier for AttentionNet {}
