//! `backflow train`: workload T1 with a progress bar, then accuracy and timings.

use super::args;
use super::CliResult;
use backflow::nn::save_weights;
use backflow::Scheduler;
use backflow_app::train::{train_digits, TrainConfig};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

/// The most branches `train` and `graph` accept.
pub const MAX_BRANCHES: usize = 256;
/// The most hidden units per layer `train` accepts.
pub const MAX_HIDDEN: usize = 512;

/// Flags of `backflow train`; the defaults are workload T1.
#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// Parallel branches in the block (1 to 256).
    #[arg(long, default_value_t = 16, value_parser = args::count(1, MAX_BRANCHES))]
    branches: usize,
    /// Width of each branch's hidden layers (1 to 512).
    #[arg(long, default_value_t = 64, value_parser = args::count(1, MAX_HIDDEN))]
    hidden: usize,
    /// Passes over the training set (1 to 100000).
    #[arg(long, default_value_t = 30, value_parser = args::count(1, 100_000))]
    epochs: usize,
    /// Rows per mini-batch (1 to 1000000; the last batch of an epoch may be smaller).
    #[arg(long, default_value_t = 64, value_parser = args::count(1, 1_000_000))]
    batch: usize,
    /// Adam's learning rate (more than 0, at most 10).
    #[arg(long, default_value_t = 1e-2, value_parser = args::learning_rate)]
    lr: f32,
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
    let config = TrainConfig {
        branches: args.branches,
        hidden: args.hidden,
        epochs: args.epochs,
        batch: args.batch,
        lr: args.lr,
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
    let (model, report) = train_digits(&config, |p| {
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
    println!(
        "model: {} branches x hidden {} ({} parameters), {} epochs, batch {}, Adam lr {}",
        config.branches,
        config.hidden,
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
