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
pub use trainer::{build, build_for, fit, load_model, train_model};

use backflow::nn::{cross_entropy, Module};
use backflow::{Result, Tensor};

/// The most branches a T1 model has: `train --branches` and `graph --branches` take no
/// more, and [`load_model`] refuses a weights file that claims more before building it.
pub const MAX_BRANCHES: usize = 256;

/// The most hidden units per layer of a T1 model: `train --hidden` takes no more, and
/// [`load_model`] refuses a weights file that claims more before building it.
pub const MAX_HIDDEN: usize = 512;

/// Checks the size of a T1 model that a weights file claims (read from its tensor shapes)
/// against [`MAX_BRANCHES`] and [`MAX_HIDDEN`], before anything is built: a file that
/// claims a larger model (which `train` cannot have written) could otherwise make the
/// loader allocate far more than the file holds.
///
/// ```
/// use backflow_app::models::check_t1_size;
/// assert!(check_t1_size(16, 64).is_ok());
/// let e = check_t1_size(262_144, 1).unwrap_err();
/// assert!(e.contains("262144 branches") && e.contains("at most 256"), "{e}");
/// ```
pub fn check_t1_size(branches: usize, hidden: usize) -> std::result::Result<(), String> {
    for (what, claimed, most) in [
        ("branches", branches, MAX_BRANCHES),
        ("hidden units per layer", hidden, MAX_HIDDEN),
    ] {
        if claimed > most {
            return Err(format!(
                "the file's shapes claim a T1 model of {claimed} {what}; a T1 model has at \
                 most {most} (train's limit), so this is not one backflow wrote"
            ));
        }
    }
    Ok(())
}

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
