//! The summary `backflow train` prints after a run, in one process or data-parallel, and
//! the `--save` that follows it.

use backflow_app::models::{Classifier, ModelName};
use backflow_app::train::{TrainConfig, TrainReport};
use backflow_app::trained_weights::{save_trained, TrainedRecipe};
use std::path::PathBuf;

/// The model's shape, as the summary names it.
pub fn shape(name: ModelName, config: &TrainConfig) -> String {
    match name {
        ModelName::T1 => format!("{} branches x hidden {}", config.branches, config.hidden),
        other => other.name().to_string(),
    }
}

/// The `model:` line; `batch` is how the batch is called ("batch", "global batch").
pub fn model_line(name: ModelName, model: &dyn Classifier, config: &TrainConfig, batch: &str) {
    println!(
        "model: {} ({} parameters), {} epochs, {batch} {}, Adam lr {}",
        shape(name, config),
        model.num_parameters(),
        config.epochs,
        config.batch,
        config.lr
    );
}

/// From `resumed at` (if resumed) to `backward time`; `steps` says more about the steps.
pub fn results(report: &TrainReport, steps: &str) {
    if report.start_epoch > 0 {
        println!("resumed at    : epoch {}", report.start_epoch + 1);
    }
    println!("test accuracy : {:.2}%", report.test_accuracy * 100.0);
    println!(
        "final loss    : {:.4} (mean of the last epoch)",
        report.final_loss
    );
    println!(
        "training time : {:.2} s ({} steps{steps})",
        report.train_time.as_secs_f64(),
        report.steps
    );
    println!(
        "backward time : {:.2} s",
        report.backward_time.as_secs_f64()
    );
    println!("kernel splits : {}", backflow::split_estimate());
}

/// The files a run writes.
pub struct Outputs {
    /// `--save`.
    pub save: Option<PathBuf>,
    /// `--checkpoint`.
    pub checkpoint: Option<PathBuf>,
    /// `--resume`.
    pub resume: bool,
}

/// The `checkpoint` line, then the `--save` (weights with the run's recipe).
pub fn save(
    name: ModelName,
    model: &dyn Classifier,
    config: &TrainConfig,
    outputs: &Outputs,
) -> Result<(), String> {
    if let Some(path) = &outputs.checkpoint {
        println!("checkpoint    : {}", path.display());
    }
    if let Some(path) = &outputs.save {
        let recipe = TrainedRecipe {
            model: name,
            seed: config.seed,
            epochs: config.epochs,
            batch: config.batch,
            lr: config.lr,
            t1_size: (name == ModelName::T1).then_some((config.branches, config.hidden)),
        };
        save_trained(model, &recipe, path)
            .map_err(|e| format!("--save '{}': {e}", path.display()))?;
        println!("weights saved : {}", path.display());
    }
    Ok(())
}
