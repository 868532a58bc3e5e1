//! `backflow train`: workload T1 (or another `--model`) with a progress bar, then accuracy
//! and timings.

use super::args;
use super::CliResult;
use backflow::nn::save_weights;
use backflow::Scheduler;
use backflow_app::models::{train_model, ModelName};
use backflow_app::train::TrainConfig;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

/// The most branches (`train`, `graph`) and hidden units (`train`) of a T1 model.
pub use backflow_app::models::{MAX_BRANCHES, MAX_HIDDEN};

/// Flags of `backflow train`; the defaults are workload T1.
#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// The model: t1 (the default), inception, attention or moe (docs/models.md).
    #[arg(long, default_value = "t1", value_parser = args::model)]
    model: ModelName,
    /// T1 only: parallel branches in the block (1 to 256; default 16).
    #[arg(long, value_parser = args::count(1, MAX_BRANCHES))]
    branches: Option<usize>,
    /// T1 only: width of each branch's hidden layers (1 to 512; default 64).
    #[arg(long, value_parser = args::count(1, MAX_HIDDEN))]
    hidden: Option<usize>,
    /// Passes over the training set (1 to 100000; default: the model's, 30 for t1).
    #[arg(long, value_parser = args::count(1, 100_000))]
    epochs: Option<usize>,
    /// Rows per mini-batch (1 to 1000000; the last batch of an epoch may be smaller;
    /// default 64).
    #[arg(long, value_parser = args::count(1, 1_000_000))]
    batch: Option<usize>,
    /// Adam's learning rate (more than 0, at most 10; default: the model's, 1e-2 for t1).
    #[arg(long, value_parser = args::learning_rate)]
    lr: Option<f32>,
    /// Threads for the forward branches and the backward pass; 0 means all cores (at
    /// most 1024).
    #[arg(long, default_value = "0", value_parser = args::threads)]
    threads: usize,
    /// Backward scheduler: dfs, kahn or parallel.
    #[arg(long, default_value = "parallel")]
    scheduler: Scheduler,
    /// Seeds the split, the initial weights and the batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Writes the trained weights to this safetensors file (checked writable before
    /// training); `backflow eval --load FILE` evaluates them.
    #[arg(long)]
    save: Option<PathBuf>,
    #[command(flatten)]
    dist: super::distributed::DistributedArgs,
}

/// Trains, showing the running loss, and prints the results.
pub fn run(args: TrainArgs) -> CliResult {
    if let Some(path) = &args.save {
        args::check_writable("--save", path)?;
    }
    if args.model != ModelName::T1 {
        for (flag, given) in [("--branches", args.branches), ("--hidden", args.hidden)] {
            if let Some(v) = given {
                return Err(args::UsageError(format!(
                    "invalid value '{v}' for '{flag}': it applies to --model t1 only, not '{}'",
                    args.model.name()
                ))
                .into());
            }
        }
    }
    let (recipe, t1) = (args.model.recipe(), TrainConfig::default());
    let config = TrainConfig {
        branches: args.branches.unwrap_or(t1.branches),
        hidden: args.hidden.unwrap_or(t1.hidden),
        epochs: args.epochs.unwrap_or(recipe.epochs),
        batch: args.batch.unwrap_or(recipe.batch),
        lr: args.lr.unwrap_or(recipe.lr),
        seed: args.seed,
        threads: args.threads,
        scheduler: args.scheduler,
    };
    if args.dist.distributed {
        return super::distributed::run(config, args.dist, args.save);
    }
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} steps  {msg}  ({elapsed}, eta {eta})",
        )?
        .progress_chars("=> "),
    );
    let mut running = None::<f32>;
    let (model, report) = train_model(args.model, &config, |p| {
        // Exponential moving average, so the shown loss does not jump between batches.
        let avg = running.map_or(p.loss, |r| 0.95 * r + 0.05 * p.loss);
        running = Some(avg);
        bar.set_length(p.total_steps as u64);
        bar.set_position(p.step as u64);
        if p.step % 4 == 0 || p.step == p.total_steps {
            bar.set_prefix(format!("epoch {:>2}/{}", p.epoch + 1, config.epochs));
            bar.set_message(format!("loss {avg:.4}"));
        }
    })?;
    bar.finish();
    let shape = match args.model {
        ModelName::T1 => format!("{} branches x hidden {}", config.branches, config.hidden),
        other => other.name().to_string(),
    };
    println!(
        "model: {shape} ({} parameters), {} epochs, batch {}, Adam lr {}",
        backflow::nn::Module::num_parameters(&model),
        config.epochs,
        config.batch,
        config.lr
    );
    println!("test accuracy : {:.2}%", report.test_accuracy * 100.0);
    println!(
        "final loss    : {:.4} (mean of the last epoch)",
        report.final_loss
    );
    println!(
        "training time : {:.2} s ({} steps)",
        report.train_time.as_secs_f64(),
        report.steps
    );
    println!(
        "backward time : {:.2} s",
        report.backward_time.as_secs_f64()
    );
    println!("threads       : {}", config.threads);
    println!("scheduler     : {}", config.scheduler.name());
    println!("allocator     : {}", super::allocator());
    if let Some(path) = args.save {
        save_weights(&model, &path).map_err(|e| format!("--save '{}': {e}", path.display()))?;
        println!("weights saved : {}", path.display());
    }
    Ok(())
}
