//! The step hook of the one training loop: the named points where a mode of training
//! (one process, data-parallel) steps in.

use crate::checkpoint::Position;
use crate::train::Progress;
use backflow::nn::{AdamState, Param};
use backflow::{Result, Tensor};
use std::ops::Range;

/// Named points of a training step where a mode of training steps in; every method has a
/// default that does what one process needs.
///
/// ```
/// use backflow_app::train::{t1_model, Progress, TrainConfig};
/// use backflow_app::train_loop::{StepHook, Trainer};
/// /// Counts the epochs and trains on the first half of every batch only.
/// #[derive(Default)]
/// struct HalfBatches { epochs: usize }
/// impl StepHook for HalfBatches {
///     fn before_step(&mut self, _step: usize, rows: usize) -> std::ops::Range<usize> {
///         0..rows / 2
///     }
///     fn after_epoch(&mut self, _epoch: usize, _mean_loss: f32) -> backflow::Result<()> {
///         self.epochs += 1;
///         Ok(())
///     }
/// }
/// let config = TrainConfig { branches: 2, hidden: 8, epochs: 2, threads: 1, ..TrainConfig::default() };
/// let model = t1_model(&config);
/// let mut hook = HalfBatches::default();
/// let report = Trainer::new(&model, &config).unwrap().fit(&mut hook, |_: Progress| {}).unwrap();
/// assert_eq!((hook.epochs, report.steps), (2, 46));
/// ```
pub trait StepHook: Send {
    /// Once, before the first step, with where the run starts. DataParallel gives every
    /// rank rank 0's position and Adam state here.
    fn before_train(&mut self, start: &mut RunStart) -> Result<()> {
        let _ = start;
        Ok(())
    }

    /// Before step `step` (from 1, counting a resumed run's earlier steps): the rows of
    /// the global batch of `rows` that this process computes. DataParallel shards here.
    fn before_step(&mut self, step: usize, rows: usize) -> Range<usize> {
        let _ = step;
        0..rows
    }

    /// After the forward pass of step `step`, with this process's loss, before backward.
    fn after_forward(&mut self, step: usize, loss: &Tensor) -> Result<()> {
        let _ = (step, loss);
        Ok(())
    }

    /// After this process's forward and backward passes, with their outcome (its loss):
    /// returns the global batch's loss once every gradient is the global batch's.
    /// DataParallel synchronises here.
    fn after_backward(&mut self, local: Result<f32>) -> Result<f32> {
        local
    }

    /// After the optimiser step.
    fn after_step(&mut self, progress: &Progress) -> Result<()> {
        let _ = progress;
        Ok(())
    }

    /// After each epoch, with its zero-based number and mean loss, before the checkpoint.
    fn after_epoch(&mut self, epoch: usize, mean_loss: f32) -> Result<()> {
        let _ = (epoch, mean_loss);
        Ok(())
    }

    /// Whether this process reports progress and writes checkpoints (rank 0 only).
    fn is_leader(&self) -> bool {
        true
    }
}

/// Where a run starts, as the loop hands it to [`StepHook::before_train`].
#[derive(Clone, Debug)]
pub struct RunStart {
    /// The model's parameters, in order.
    pub params: Vec<Param>,
    /// Epochs and steps done (non-zero when resumed), and the seed.
    pub position: Position,
    /// The Adam state to resume, if any.
    pub adam: Option<AdamState>,
}

/// Training in one process: every [`StepHook`] default.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleProcess;

impl StepHook for SingleProcess {}
