//! `backflow train`: workload T1 with a progress bar, then accuracy and timings.

use super::CliResult;
use backflow::nn::save_weights;
use backflow::Scheduler;
use backflow_app::train::{train_digits, TrainConfig};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

/// Flags of `backflow train`; the defaults are workload T1.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Parallel branches in the block.
    #[arg(long, default_value_t = 16)]
    branches: usize,
    /// Width of each branch's hidden layers.
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Passes over the training set.
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Rows per mini-batch.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-2)]
    lr: f32,
    /// Threads for the backward pass [default: number of cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Backward scheduler: dfs, kahn or parallel.
    #[arg(long, default_value = "parallel")]
    scheduler: Scheduler,
    /// Seeds the split, the initial weights and the batch order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Writes the trained weights to this safetensors file.
    #[arg(long)]
    save: Option<PathBuf>,
}

/// Trains, showing the running loss, and prints the results.
pub fn run(args: TrainArgs) -> CliResult {
    let config = TrainConfig {
        branches: args.branches,
        hidden: args.hidden,
        epochs: args.epochs,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        threads: args
            .threads
            .unwrap_or_else(backflow::default_threads)
            .max(1),
        scheduler: args.scheduler,
    };
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
    println!("final loss    : {:.4}", report.final_loss);
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
        save_weights(&model, &path)?;
        println!("weights saved : {}", path.display());
    }
    Ok(())
}
