//! The one training loop of the app: a [`Trainer`] runs any [`Classifier`] (T1's
//! `Sequential` included) on the digits set (seeded 80/20 split, shuffled mini-batches,
//! Adam, the backward pass timed alone), with checkpoints and resume, and calls a
//! [`StepHook`] at named points of every step, as burn's `Learner` and Lightning's
//! `Trainer` call their callbacks. One process uses [`SingleProcess`] (every default); the
//! data-parallel mode's hook (`crate::train_distributed`) shards each global batch in
//! [`before_step`](StepHook::before_step) and synchronises the gradients in
//! [`after_backward`](StepHook::after_backward).
//!
//! ```
//! use backflow_app::models::Classifier;
//! use backflow_app::train::{wide_model, TrainConfig};
//! use backflow_app::train_loop::{SingleProcess, Trainer};
//! let model = wide_model(64, 2, 8, 10, 0);
//! let config = TrainConfig { epochs: 1, threads: 1, ..TrainConfig::default() };
//! let mut losses = Vec::new();
//! let report = Trainer::new(&model, &config)
//!     .unwrap()
//!     .fit(&mut SingleProcess, |p| losses.push(p.loss))
//!     .unwrap();
//! assert_eq!(report.steps, losses.len());
//! assert!(report.final_loss.is_finite());
//! ```

use crate::checkpoint::{load_checkpoint, save_checkpoint, Position};
use crate::data::{self, Batch, Dataset};
use crate::models::Classifier;
use crate::train::{Progress, TrainConfig, TrainReport};
use backflow::nn::{accuracy, Adam, AdamState, Module, Optimizer};
use backflow::{no_grad, BackwardOptions, Error, Result, Tensor};
use std::ops::Range;
use std::path::PathBuf;

mod hook;
pub use hook::{RunStart, SingleProcess, StepHook};
use std::time::{Duration, Instant};

/// One training run of `model` with a [`TrainConfig`] (epochs, batch, learning rate, seed,
/// threads, scheduler), optionally checkpointed after every epoch and resumed.
pub struct Trainer<'m, M: Classifier + ?Sized> {
    model: &'m M,
    config: TrainConfig,
    checkpoint: Option<PathBuf>,
    resumed: Option<(Position, Option<AdamState>)>,
}

impl<'m, M: Classifier + ?Sized> Trainer<'m, M> {
    /// A run of `model` as `config` says (checked: [`TrainConfig::validate`]); a thread
    /// count of 0 means all cores.
    pub fn new(model: &'m M, config: &TrainConfig) -> Result<Self> {
        config.validate()?;
        let threads = match config.threads {
            0 => backflow::default_threads(),
            n => n,
        };
        Ok(Self {
            model,
            config: TrainConfig {
                threads,
                ..config.clone()
            },
            checkpoint: None,
            resumed: None,
        })
    }

    /// Writes a checkpoint ([`crate::checkpoint`]) to `path` after every epoch; with
    /// `resume`, first loads it into the model, if it exists, and the run continues from
    /// it (weights, Adam's state and the batch order), so that it ends as one run straight
    /// through would. Errs if the file is not a checkpoint of this model, was written with
    /// another seed, batch or learning rate, or already holds the run's epochs.
    pub fn checkpoint(mut self, path: PathBuf, resume: bool) -> Result<Self> {
        if resume && path.exists() {
            let (position, adam) =
                load_checkpoint(self.model, &path).map_err(|e| resume_error(&e))?;
            let bad = |message: String| {
                Err(Error::Invalid {
                    op: "train",
                    message: format!("--resume: {} {message}", path.display()),
                })
            };
            if position.seed != self.config.seed {
                return bad(format!(
                    "was written by a run with --seed {}, not {}",
                    position.seed, self.config.seed
                ));
            }
            if let Some(batch) = position.batch.filter(|&b| b != self.config.batch) {
                return bad(format!(
                    "was written by a run with --batch {batch}, not {}",
                    self.config.batch
                ));
            }
            if let Some(lr) = position.lr.filter(|&lr| lr != self.config.lr) {
                return bad(format!(
                    "was written by a run with --lr {lr}, not {}",
                    self.config.lr
                ));
            }
            if position.epochs_done >= self.config.epochs {
                return bad(format!(
                    "already holds {} epochs, and this run asks for {}: ask for more with --epochs",
                    position.epochs_done, self.config.epochs
                ));
            }
            self.resumed = Some((position, adam));
        }
        self.checkpoint = Some(path);
        Ok(self)
    }

    /// The settings the run uses (threads resolved).
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Trains, calling `hook` at its points and, where the hook
    /// [leads](StepHook::is_leader), `on_step` after every step; then measures the test
    /// accuracy. The model is in training mode while it trains, in evaluation mode after.
    pub fn fit(
        self,
        hook: &mut dyn StepHook,
        on_step: impl FnMut(Progress) + Send,
    ) -> Result<TrainReport> {
        // The forward pass's parallel work (branches, heads, experts, split kernels) runs
        // on the executor's threads, as the backward does: one bounded set of threads.
        backflow::with_threads(self.config.threads, || self.fit_here(hook, on_step))
    }

    fn fit_here(
        &self,
        hook: &mut dyn StepHook,
        mut on_step: impl FnMut(Progress),
    ) -> Result<TrainReport> {
        let (model, config) = (self.model, &self.config);
        let (train, test) = data::digits()?.split(0.8, config.seed);
        let (position, adam) = self.resumed.clone().unwrap_or((
            Position {
                epochs_done: 0,
                steps: 0,
                seed: config.seed,
                batch: Some(config.batch),
                lr: Some(config.lr),
            },
            None,
        ));
        let mut start = RunStart {
            params: model.parameters(),
            position,
            adam,
        };
        hook.before_train(&mut start)?;
        let RunStart { position, adam, .. } = start;
        let mut opt = Adam::new(model.parameters(), config.lr);
        if let Some(state) = adam.filter(|a| !a.moments.is_empty()) {
            opt.load_state(state)?;
        }
        let opts = BackwardOptions::new()
            .scheduler(config.scheduler)
            .threads(config.threads);
        let steps_per_epoch = train.len().div_ceil(config.batch);
        let total_steps = config.epochs * steps_per_epoch;
        let mut step = position.steps;
        let (mut final_loss, mut backward_time) = (f32::NAN, Duration::ZERO);
        let start = Instant::now();
        for epoch in position.epochs_done..config.epochs {
            model.train();
            let (mut epoch_loss, mut epoch_steps) = (0.0f64, 0usize);
            for batch in train.batches(config.batch, order_seed(config.seed, epoch)) {
                let rows = hook.before_step(step + 1, batch.y.len());
                let local = local_step(model, &batch, rows, step + 1, hook, &opts).map(
                    |(loss, backward)| {
                        backward_time += backward;
                        loss
                    },
                );
                let loss = hook.after_backward(local)?;
                opt.step()?;
                step += 1;
                epoch_loss += f64::from(loss);
                epoch_steps += 1;
                let progress = Progress {
                    epoch,
                    step,
                    total_steps,
                    loss,
                    epoch_loss: (epoch_loss / epoch_steps as f64) as f32,
                    epoch_done: epoch_steps == steps_per_epoch,
                };
                hook.after_step(&progress)?;
                if hook.is_leader() {
                    on_step(progress);
                }
            }
            final_loss = (epoch_loss / epoch_steps.max(1) as f64) as f32;
            hook.after_epoch(epoch, final_loss)?;
            if let (true, Some(path)) = (hook.is_leader(), &self.checkpoint) {
                let at = Position {
                    epochs_done: epoch + 1,
                    steps: step,
                    seed: config.seed,
                    batch: Some(config.batch),
                    lr: Some(config.lr),
                };
                save_checkpoint(model, Some(&opt.state()), at, path)?;
            }
        }
        let train_time = start.elapsed();
        Ok(TrainReport {
            test_accuracy: evaluate(model, &test)?,
            train_time,
            backward_time,
            final_loss,
            steps: step - position.steps,
            start_epoch: position.epochs_done,
        })
    }
}

/// A failed resume, said as such (the checkpoint's own error names the file).
fn resume_error(e: &Error) -> Error {
    Error::Invalid {
        op: "train",
        message: format!("--resume: {e}"),
    }
}

/// The seed of epoch `epoch`'s batch order in a run seeded `seed`.
fn order_seed(seed: u64, epoch: usize) -> u64 {
    seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Forward and backward on `rows` of `batch`: this process's loss (0 for no rows) and the
/// backward pass's time.
fn local_step<M: Classifier + ?Sized>(
    model: &M,
    batch: &Batch,
    rows: Range<usize>,
    step: usize,
    hook: &mut dyn StepHook,
    opts: &BackwardOptions,
) -> Result<(f32, Duration)> {
    if rows.is_empty() {
        return Ok((0.0, Duration::ZERO));
    }
    let x = if rows.len() == batch.y.len() {
        batch.x.clone()
    } else {
        let width = batch.x.shape()[1];
        Tensor::from_vec(
            batch.x.data()[rows.start * width..rows.end * width].to_vec(),
            &[rows.len(), width],
        )?
    };
    let loss = model.loss(&x, &batch.y[rows])?;
    hook.after_forward(step, &loss)?;
    let t = Instant::now();
    loss.backward_with(opts)?;
    Ok((loss.item(), t.elapsed()))
}

/// Classification accuracy of `model` on all of `set`, in evaluation mode
/// ([`Module::eval`]), without recording a graph.
pub fn evaluate<M: Module + ?Sized>(model: &M, set: &Dataset) -> Result<f64> {
    model.eval();
    let batch = set.batch();
    let logits = no_grad(|| model.forward(&batch.x))?;
    Ok(accuracy(&logits, &batch.y))
}
