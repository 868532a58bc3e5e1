//! Workload T1 as a library function: the wide multi-branch model trained on the digits
//! set. `backflow train` and the tests run it.

use crate::data::{self, Dataset, DIGITS_CLASSES, DIGITS_FEATURES};
use backflow::nn::{
    accuracy, cross_entropy, Adam, Branches, Linear, Merge, Module, Optimizer, Sequential, Tanh,
};
use backflow::{no_grad, BackwardOptions, Error, Result, Scheduler};
use std::time::{Duration, Instant};

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
    /// Threads for the backward pass.
    pub threads: usize,
    /// Scheduler for the backward pass.
    pub scheduler: Scheduler,
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
    /// This step's loss.
    pub loss: f32,
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
    /// Loss of the last step.
    pub final_loss: f32,
    /// Optimiser steps taken.
    pub steps: usize,
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
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads.max(1))
        .build()
        .map_err(|e| Error::Invalid {
            op: "train",
            message: format!("cannot start {} threads: {e}", config.threads),
        })?;
    pool.install(|| train_on_pool(config, on_step))
}

fn train_on_pool(
    config: &TrainConfig,
    mut on_step: impl FnMut(Progress),
) -> Result<(Sequential, TrainReport)> {
    let (train, test) = data::digits()?.split(0.8, config.seed);
    let model = wide_model(
        DIGITS_FEATURES,
        config.branches,
        config.hidden,
        DIGITS_CLASSES,
        config.seed,
    );
    let mut opt = Adam::new(model.parameters(), config.lr);
    let opts = BackwardOptions::new()
        .scheduler(config.scheduler)
        .threads(config.threads);
    let total_steps = config.epochs * train.len().div_ceil(config.batch.max(1));
    let (mut step, mut final_loss, mut backward_time) = (0, f32::NAN, Duration::ZERO);
    let start = Instant::now();
    for epoch in 0..config.epochs {
        let order_seed = config.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for batch in train.batches(config.batch, order_seed) {
            let loss = cross_entropy(&model.forward(&batch.x)?, &batch.y)?;
            let t = Instant::now();
            loss.backward_with(&opts)?;
            backward_time += t.elapsed();
            opt.step()?;
            step += 1;
            final_loss = loss.item();
            on_step(Progress {
                epoch,
                step,
                total_steps,
                loss: final_loss,
            });
        }
    }
    let train_time = start.elapsed();
    let report = TrainReport {
        test_accuracy: evaluate(&model, &test)?,
        train_time,
        backward_time,
        final_loss,
        steps: step,
    };
    Ok((model, report))
}

/// Classification accuracy of `model` on all of `set`, without recording a graph.
pub fn evaluate(model: &dyn Module, set: &Dataset) -> Result<f64> {
    let batch = set.batch();
    let logits = no_grad(|| model.forward(&batch.x))?;
    Ok(accuracy(&logits, &batch.y))
}
