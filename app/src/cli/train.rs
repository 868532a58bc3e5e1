//! `backflow train`: workload T1 (or another `--model`) with a progress bar (or a line per
//! epoch when stdout is not a terminal), then accuracy and timings; with `--checkpoint`
//! and `--resume`, in one process or `--distributed`.

use super::progress::Reporter;
use super::summary::Outputs;
use super::{args, summary, CliResult};
use backflow::Scheduler;
use backflow_app::models::{build_for, ModelName};
use backflow_app::train::TrainConfig;
use backflow_app::train_loop::{SingleProcess, Trainer};
use clap::Args;
use std::path::{Path, PathBuf};

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
    /// training), with the seed and the recipe in its metadata; `backflow eval --load
    /// FILE` evaluates them on the test split of that seed.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Writes a checkpoint here after every epoch, atomically: weights, Adam's state and
    /// where training stands (with --distributed, rank 0 writes it).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Continue from the --checkpoint file, if it exists: the run ends as one run of
    /// --epochs straight through would (same model, --seed, --batch and --lr needed).
    #[arg(long, requires = "checkpoint")]
    resume: bool,
    #[command(flatten)]
    dist: super::distributed::DistributedArgs,
}

/// Trains, showing the progress, and prints the results.
pub fn run(args: TrainArgs) -> CliResult {
    if let Some(path) = &args.save {
        args::check_writable("--save", path)?;
    }
    if let Some(path) = &args.checkpoint {
        check_checkpoint(path, args.resume)?;
        if let Some(save) = args.save.as_deref().filter(|s| same_file(s, path)) {
            return Err(args::UsageError(format!(
                "invalid value '{}' for '--save': it is the --checkpoint file '{}', which \
                 the weights would overwrite; give them another file",
                save.display(),
                path.display()
            ))
            .into());
        }
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
        // Labelled with the count that runs: the forward (`with_threads`) and every
        // backward pass use at most `max_threads()`.
        threads: args::threads_as_run("--threads", &[args.threads])[0],
        scheduler: args.scheduler,
    };
    let outputs = args.outputs();
    if args.dist.distributed {
        return super::distributed::run(args.model, config, args.dist, &outputs);
    }
    let model = build_for(args.model, &config);
    let mut trainer = Trainer::new(model.as_ref(), &config)?;
    if let Some(path) = &outputs.checkpoint {
        trainer = trainer.checkpoint(path.clone(), outputs.resume)?;
    }
    let mut reporter = Reporter::new(config.epochs)?;
    let report = trainer.fit(&mut SingleProcess, |p| reporter.step(p))?;
    reporter.finish();
    summary::model_line(args.model, model.as_ref(), &config, "batch");
    summary::results(&report, "");
    println!("threads       : {}", config.threads);
    println!("scheduler     : {}", config.scheduler.name());
    println!("allocator     : {}", super::allocator());
    summary::save(args.model, model.as_ref(), &config, &outputs)?;
    Ok(())
}

impl TrainArgs {
    fn outputs(&self) -> Outputs {
        Outputs {
            save: self.save.clone(),
            checkpoint: self.checkpoint.clone(),
            resume: self.resume,
        }
    }
}

/// `--checkpoint`: a file that `--resume` reads, or a place the run can write.
fn check_checkpoint(path: &Path, resume: bool) -> Result<(), args::UsageError> {
    if resume && path.exists() && !path.is_file() {
        return Err(args::UsageError(format!(
            "invalid value '{}' for '--checkpoint': --resume reads it, and it is not a file",
            path.display()
        )));
    }
    if resume && !path.exists() {
        // Documented (a first run may say --resume), but a mistyped path must not pass
        // unnoticed.
        eprintln!(
            "note: --resume: no checkpoint at '{}' yet, so training starts from the first \
             epoch",
            path.display()
        );
    }
    // A resumed run writes it again after every epoch.
    args::check_writable("--checkpoint", path)
}

/// Whether `a` and `b` name the same file (the same folder and name once links and `..`
/// are resolved), whether or not it exists yet.
fn same_file(a: &Path, b: &Path) -> bool {
    fn resolved(p: &Path) -> Option<PathBuf> {
        if let Ok(full) = p.canonicalize() {
            return Some(full);
        }
        let folder = match p.parent() {
            Some(f) if !f.as_os_str().is_empty() => f,
            _ => Path::new("."),
        };
        Some(folder.canonicalize().ok()?.join(p.file_name()?))
    }
    match (resolved(a), resolved(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}
