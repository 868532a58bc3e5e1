//! Workload T1 as a library function: the wide multi-branch model trained on the digits
//! set by the one loop ([`crate::train_loop`]). `backflow train` and the tests run it.

use crate::data::{self, Dataset, DIGITS_CLASSES, DIGITS_FEATURES};
use crate::train_loop::{SingleProcess, Trainer};
use backflow::nn::{Branches, Linear, Merge, Sequential, Tanh};
use backflow::{Error, Result, Scheduler};
use std::time::Duration;

pub use crate::train_loop::evaluate;

/// The training run's settings; the defaults are workload T1.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Parallel branches in the block.
    pub branches: usize,
    /// Width of each branch's two hidden layers.
    pub hidden: usize,
    /// Passes over the training set.
    pub epochs: usize,
    /// Rows per mini-batch.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// Seeds the split, the initial weights and the batch order.
    pub seed: u64,
    /// Threads for the forward branches and the backward pass; 0 means all cores
    /// ([`backflow::default_threads`]), as for `BackwardOptions::threads(0)`.
    pub threads: usize,
    /// Scheduler for the backward pass.
    pub scheduler: Scheduler,
}

impl TrainConfig {
    /// Checks the settings that cannot work: no branches, hidden units, epochs or batch
    /// rows, or a learning rate that is not a positive finite number.
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| {
            Err(Error::Invalid {
                op: "train",
                message,
            })
        };
        for (name, value) in [
            ("branches", self.branches),
            ("hidden", self.hidden),
            ("epochs", self.epochs),
            ("batch", self.batch),
        ] {
            if value == 0 {
                return bad(format!("{name} is 0; it must be at least 1"));
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!(
                "lr is {}; it must be a positive finite number",
                self.lr
            ));
        }
        Ok(())
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            branches: 16,
            hidden: 64,
            epochs: 30,
            batch: 64,
            lr: 1e-2,
            seed: 0,
            threads: backflow::default_threads(),
            scheduler: Scheduler::Parallel,
        }
    }
}

/// Where training is, reported after each step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Zero-based epoch.
    pub epoch: usize,
    /// Steps done so far, over all epochs.
    pub step: usize,
    /// Steps in the whole run.
    pub total_steps: usize,
    /// This step's loss (the global batch's, in data-parallel training).
    pub loss: f32,
    /// The mean loss of this epoch's steps so far.
    pub epoch_loss: f32,
    /// Whether this step ends its epoch.
    pub epoch_done: bool,
}

/// What a training run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    /// Fraction of the held-out 20% classified correctly.
    pub test_accuracy: f64,
    /// Wall time of the training loop (forward, backward and optimiser steps).
    pub train_time: Duration,
    /// Time spent inside the backward passes.
    pub backward_time: Duration,
    /// Mean loss over the last epoch's steps.
    pub final_loss: f32,
    /// Optimiser steps taken by this run.
    pub steps: usize,
    /// Epochs already done when this run started (non-zero when resumed).
    pub start_epoch: usize,
}

/// The T1 model shape: `branches` copies of `Linear(inputs, hidden) → tanh →
/// Linear(hidden, hidden) → tanh` on the same input, concatenated, then
/// `Linear(branches·hidden, classes)`. Parameters are named as in PyTorch's
/// `benches/peers/t1_digits.py` (`branches.3.2.weight`, `head.bias`).
pub fn wide_model(
    inputs: usize,
    branches: usize,
    hidden: usize,
    classes: usize,
    seed: u64,
) -> Sequential {
    let layer_seed = |i: u64| seed.wrapping_mul(0x2545_F491_4F6C_DD1D).wrapping_add(i);
    let block = Branches::from_fn(Merge::Concat, branches, |b| {
        let b = b as u64;
        Sequential::new()
            .push(Linear::new(inputs, hidden, layer_seed(2 * b)))
            .push(Tanh)
            .push(Linear::new(hidden, hidden, layer_seed(2 * b + 1)))
            .push(Tanh)
    });
    Sequential::new().push_named("branches", block).push_named(
        "head",
        Linear::new(branches * hidden, classes, layer_seed(u64::MAX)),
    )
}

/// Trains [`wide_model`] on the digits set as `config` says, calling `on_step` after each
/// step; returns the model and what was measured. The forward pass runs the branches on a
/// pool of `config.threads` threads, the backward pass on the executor's.
pub fn train_digits(
    config: &TrainConfig,
    on_step: impl FnMut(Progress) + Send,
) -> Result<(Sequential, TrainReport)> {
    config.validate()?;
    let model = t1_model(config);
    let report = Trainer::new(&model, config)?.fit(&mut SingleProcess, on_step)?;
    Ok((model, report))
}

/// The [`wide_model`] that `config` trains on the digits: its `branches` and `hidden`,
/// weights drawn from its `seed`.
pub fn t1_model(config: &TrainConfig) -> Sequential {
    wide_model(
        DIGITS_FEATURES,
        config.branches,
        config.hidden,
        DIGITS_CLASSES,
        config.seed,
    )
}

/// The digits test split of a run seeded `seed`: the rows [`train_digits`] holds out.
pub fn digits_test_split(seed: u64) -> Result<Dataset> {
    Ok(data::digits()?.split(0.8, seed).1)
}

/// A [`wide_model`] with the weights that `backflow train --save` (or
/// [`backflow::nn::save_weights`] on a [`wide_model`]) wrote to `path`; the numbers of
/// branches and hidden units are read from the file's tensor shapes.
pub fn load_wide_model(path: &std::path::Path) -> Result<Sequential> {
    let bad = |message: String| Error::Invalid {
        op: "load",
        message: format!("{}: {message}", path.display()),
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let shape = |name: &str| -> Result<Vec<usize>> {
        Ok(file
            .tensor(name)
            .map_err(|_| bad(format!("no tensor `{name}`: not a T1 model")))?
            .shape()
            .to_vec())
    };
    let (head, first) = (shape("head.weight")?, shape("branches.0.0.weight")?);
    let (classes, width, hidden, inputs) = match (head.as_slice(), first.as_slice()) {
        (&[c, w], &[h, i]) if h > 0 && w % h == 0 => (c, w, h, i),
        _ => return Err(bad(format!("unexpected shapes {head:?} and {first:?}"))),
    };
    if (inputs, classes) != (DIGITS_FEATURES, DIGITS_CLASSES) {
        return Err(bad(format!(
            "a model of {inputs} inputs and {classes} classes, not the digits' {DIGITS_FEATURES} and {DIGITS_CLASSES}"
        )));
    }
    crate::models::check_t1_size(width / hidden, hidden).map_err(bad)?;
    let model = wide_model(inputs, width / hidden, hidden, classes, 0);
    backflow::nn::from_safetensors(&model, &bytes)?;
    Ok(model)
}
