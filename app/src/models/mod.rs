//! The models trained on the digits data besides T1: an Inception network, a transformer
//! encoder and a routed mixture of experts. Each reads the 64 pixels of a row as its
//! architecture needs (an 8×8 image, 8 row tokens) and returns 10 logits.
//!
//! `backflow train --model NAME` trains one ([`train_model`]), `backflow eval` reloads its
//! weights ([`load_model`]), `backflow graph --model NAME` draws one block.

pub mod attention;
mod graph;
pub mod inception;
pub mod moe;
mod trainer;

pub use graph::block_graph;
pub use trainer::{build, fit, load_model, train_model};

use backflow::nn::{cross_entropy, Module};
use backflow::{Result, Tensor};

/// The models `--model` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelName {
    /// Workload T1: 16 MLP branches, concatenated ([`crate::train::wide_model`]).
    T1,
    /// Two Inception blocks over the 8×8 image, then a linear classifier.
    Inception,
    /// A transformer encoder over the image's 8 rows as tokens.
    Attention,
    /// 8 expert MLPs with top-2 softmax gating.
    Moe,
}

impl ModelName {
    /// Every model, in order.
    pub const ALL: [ModelName; 4] = [
        ModelName::T1,
        ModelName::Inception,
        ModelName::Attention,
        ModelName::Moe,
    ];

    /// The name `--model` takes.
    pub fn name(self) -> &'static str {
        match self {
            ModelName::T1 => "t1",
            ModelName::Inception => "inception",
            ModelName::Attention => "attention",
            ModelName::Moe => "moe",
        }
    }

    /// Parses a name (case-insensitive).
    pub fn parse(s: &str) -> Option<ModelName> {
        ModelName::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s.trim()))
    }

    /// The default training recipe: epochs, batch rows and Adam's learning rate.
    pub fn recipe(self) -> Recipe {
        match self {
            ModelName::T1 => Recipe {
                epochs: 30,
                batch: 64,
                lr: 1e-2,
            },
            ModelName::Inception => inception::RECIPE,
            ModelName::Attention => attention::RECIPE,
            ModelName::Moe => moe::RECIPE,
        }
    }
}

/// A model's default training settings (`backflow train --model NAME` without
/// `--epochs`, `--batch` or `--lr`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recipe {
    /// Passes over the training set.
    pub epochs: usize,
    /// Rows per mini-batch.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
}

/// A digits classifier: `forward` maps `[batch, 64]` pixel rows to `[batch, 10]` logits.
pub trait Classifier: Module {
    /// The training loss on a batch: cross-entropy, plus any auxiliary term the model
    /// adds (the mixture of experts' load balancing).
    fn loss(&self, x: &Tensor, labels: &[usize]) -> Result<Tensor> {
        cross_entropy(&self.forward(x)?, labels)
    }
}

impl Classifier for backflow::nn::Sequential {}
