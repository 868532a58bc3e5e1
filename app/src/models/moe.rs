//! `moe`: a routed mixture of 8 expert MLPs (`Linear(64, h) → tanh → Linear(h, 10)`, each
//! giving logits), a linear gate sending each row to its 2 best experts, weighted by the
//! gate's softmax over those 2, and the Switch Transformer's load-balancing loss added to
//! the cross-entropy. The routing, and so the graph, changes with every batch.

use super::{Classifier, Recipe};
use backflow::nn::{cross_entropy, prefixed, Linear, MoE, Module, Param, Sequential, Tanh};
use backflow::{Result, Tensor};

/// The default training recipe: epochs, batch and Adam's learning rate.
pub const RECIPE: Recipe = Recipe {
    epochs: 30,
    batch: 64,
    lr: 1e-2,
};

/// A parameter name only this model has, to recognise its weights files.
pub const MARKER: &str = "moe.gate.weight";

/// The mixture's sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct MoeConfig {
    /// Expert MLPs.
    pub experts: usize,
    /// Experts each row is sent to.
    pub top_k: usize,
    /// Hidden width of each expert.
    pub hidden: usize,
    /// Weight of the load-balancing loss in the training loss.
    pub balance: f32,
}

impl Default for MoeConfig {
    /// 8 experts of hidden width 64, top-2, balance weight 0.01.
    fn default() -> Self {
        Self {
            experts: 8,
            top_k: 2,
            hidden: 64,
            balance: 0.01,
        }
    }
}

/// The mixture-of-experts classifier; parameters `moe.gate.*`, `moe.experts.<i>.0.*`,
/// `moe.experts.<i>.2.*`, as in `benches/peers/moe_digits.py`.
pub struct MoeNet {
    moe: MoE,
    balance: f32,
}

impl MoeNet {
    /// The model at `config`'s sizes, weights drawn from `seed`.
    pub fn new(config: &MoeConfig, seed: u64) -> Self {
        let layer_seed = |i: u64| seed.wrapping_mul(0x2545_F491_4F6C_DD1D).wrapping_add(i);
        let experts = (0..config.experts as u64).map(|e| {
            Sequential::new()
                .push(Linear::new(64, config.hidden, layer_seed(2 * e + 1)))
                .push(Tanh)
                .push(Linear::new(config.hidden, 10, layer_seed(2 * e + 2)))
        });
        Self {
            moe: MoE::new(
                Linear::new(64, config.experts, layer_seed(0)),
                config.top_k,
                experts,
            ),
            balance: config.balance,
        }
    }

    /// The mixture layer.
    pub fn moe(&self) -> &MoE {
        &self.moe
    }
}

impl Module for MoeNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.moe.forward(x)
    }

    fn named_parameters(&self) -> Vec<(String, Param)> {
        prefixed("moe", self.moe.named_parameters())
    }
}

impl Classifier for MoeNet {
    /// Cross-entropy plus `balance` times the load-balancing loss.
    fn loss(&self, x: &Tensor, labels: &[usize]) -> Result<Tensor> {
        let routed = self.moe.route(x)?;
        cross_entropy(&routed.output, labels)?.try_add(&(routed.aux_loss * self.balance))
    }
}
