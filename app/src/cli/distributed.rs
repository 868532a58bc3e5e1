//! `backflow train --distributed`: any `--model` trained data-parallel across the ranks of
//! an `mpirun` job (built with `--features mpi`); rank 0 prints the progress and the
//! summary.

use super::args;
use super::summary::Outputs;
use super::CliResult;
use backflow_app::models::ModelName;
use backflow_app::train::TrainConfig;
use clap::Args;
use std::time::Duration;

/// The flags of `backflow train` that concern data-parallel training.
#[derive(Args, Debug)]
pub struct DistributedArgs {
    /// Train data-parallel across the ranks of an MPI job: run as `mpirun -np N backflow
    /// train --distributed` (a build with `--features mpi`). The global batch stays
    /// --batch; each rank takes its share of every batch.
    #[arg(long)]
    pub distributed: bool,
    /// Gradients are reduced in buckets of this many KiB (1 to 1048576; with
    /// --distributed).
    #[arg(long, default_value_t = 128, value_parser = args::count(1, 1 << 20), requires = "distributed")]
    pub bucket_kib: usize,
    /// Bucket order: `observed` (rebuilt after the first step in the order rank 0's
    /// gradients became final) or `registration` (last-registered first); with
    /// --distributed.
    #[arg(long, default_value = "observed", value_parser = ["observed", "registration"], requires = "distributed")]
    pub bucket_order: String,
    /// Start the allreduce only after backward instead of during it (with --distributed;
    /// for comparison).
    #[arg(long, requires = "distributed")]
    pub no_overlap: bool,
    /// Longest wait for one allreduce, like 60, 60s or 2m, before the job is aborted (with
    /// --distributed).
    #[arg(long, default_value = "60", value_parser = args::duration, requires = "distributed")]
    pub allreduce_timeout: Duration,
    /// Check after every step that every rank holds bitwise the same parameters (with
    /// --distributed).
    #[arg(long, requires = "distributed")]
    pub verify_replicas: bool,
    /// For tests: RANK:STEP:error|abort|stall makes that rank fail in that step.
    #[arg(long, hide = true, value_parser = fault, requires = "distributed")]
    pub inject_fault: Option<(usize, usize, String)>,
}

/// `RANK:STEP:error|abort|stall` (STEP from 1), as (rank, step, kind).
fn fault(s: &str) -> Result<(usize, usize, String), String> {
    let bad = || "not RANK:STEP:error|abort|stall (STEP from 1)".to_string();
    let parts: Vec<&str> = s.trim().split(':').collect();
    let [rank, step, kind] = parts[..] else {
        return Err(bad());
    };
    let rank: usize = rank.parse().map_err(|_| bad())?;
    let step: usize = step.parse().map_err(|_| bad())?;
    if step == 0 || !["error", "abort", "stall"].contains(&kind) {
        return Err(bad());
    }
    Ok((rank, step, kind.to_string()))
}

/// Runs `config` data-parallel; without the `mpi` feature, a usage error saying how to
/// rebuild.
#[cfg(not(feature = "mpi"))]
pub fn run(
    _name: ModelName,
    _config: TrainConfig,
    _args: DistributedArgs,
    _outputs: &Outputs,
) -> CliResult {
    Err(Box::new(args::UsageError(
        "'--distributed' needs MPI support, which this build of backflow lacks: rebuild with \
         `cargo build --release --features mpi` (Open MPI's libopenmpi-dev, openmpi-bin and \
         libclang-dev installed) and run under `mpirun -np N`"
            .into(),
    )))
}

/// Runs `config` data-parallel on this rank; rank 0 prints.
#[cfg(feature = "mpi")]
pub fn run(
    name: ModelName,
    config: TrainConfig,
    args: DistributedArgs,
    outputs: &Outputs,
) -> CliResult {
    use super::{progress::Reporter, summary};
    use backflow::distributed::DistributedConfig;
    use backflow_app::models::build_for;
    use backflow_app::train_distributed::{
        train_distributed, DistributedOptions, Fault, FaultKind,
    };

    let options = DistributedOptions {
        dp: DistributedConfig::new()
            .bucket_bytes(args.bucket_kib * 1024)
            .overlap(!args.no_overlap)
            .observed_order(args.bucket_order == "observed")
            .timeout(args.allreduce_timeout),
        checkpoint: outputs.checkpoint.clone(),
        resume: outputs.resume,
        verify_every_step: args.verify_replicas,
        fault: args.inject_fault.as_ref().map(|(rank, step, kind)| Fault {
            rank: *rank,
            step: *step,
            kind: match kind.as_str() {
                "abort" => FaultKind::Abort,
                "stall" => FaultKind::Stall,
                _ => FaultKind::Error,
            },
        }),
    };
    let model = build_for(name, &config);
    // Under mpirun there is no terminal: one line per epoch, on rank 0.
    let mut reporter = Reporter::lines(config.epochs);
    let report = train_distributed(model.as_ref(), &config, &options, |p| reporter.step(p))?;
    if report.rank != 0 {
        return Ok(());
    }
    let mut times: Vec<f64> = report.step_times.iter().map(|t| t.as_secs_f64()).collect();
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
    let hidden =
        report.hidden_shares.iter().sum::<f64>() / report.hidden_shares.len().max(1) as f64;
    summary::model_line(name, model.as_ref(), &config, "global batch");
    println!(
        "ranks         : {} (data-parallel over MPI)",
        report.world_size
    );
    summary::results(
        &report.train,
        &format!(", median step {:.2} ms", median * 1e3),
    );
    println!(
        "allreduce     : {} buckets of {} KiB or less, {}; {:.0}% hidden behind backward, {:.2} s waited",
        report.buckets.len(),
        args.bucket_kib,
        if args.no_overlap {
            "after backward".to_string()
        } else {
            format!("overlapped, {} order", args.bucket_order)
        },
        hidden * 100.0,
        report.sync_wait.as_secs_f64()
    );
    println!("threads       : {} per rank", config.threads);
    println!("scheduler     : {}", config.scheduler.name());
    summary::save(name, model.as_ref(), &config, outputs)?;
    Ok(())
}
