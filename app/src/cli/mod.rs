//! Subcommand dispatch. Each subcommand lives in its own file with an `Args` struct (clap
//! derive) and a `run(args) -> CliResult`; adding one is one `Command` variant and one
//! match arm. Every flag's value is validated in `args.rs`.
//!
//! Exit status: 0 success, 1 a run that failed (an error, a stress mismatch), 2 a usage
//! error (a value that cannot work, an output path that cannot be written), always
//! reported on one line before any work. No subcommand at all prints the whole help (on
//! stderr), with exit status 2.

mod args;
mod distributed;
mod eval;
mod graph;
mod progress;
mod scale;
mod stress;
mod summary;
mod train;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// What a subcommand returns: an [`args::UsageError`] makes the exit status 2, any other
/// error 1; either is printed on one line.
pub type CliResult = Result<(), Box<dyn std::error::Error>>;

/// The end of `backflow --help`: the workloads in a line each, thread counts, exit status.
const AFTER_HELP: &str = "\
Workloads (defined in full in benches/WORKLOADS.md):
  W1 chain    100,000 scalar ops in a row: per-node overhead, in ns/node
  W2 wide     64 independent branches of 8 tanh(h @ W) layers: parallelism between branches
  W3 fan-in   10,000 consumers of one tensor: contention on a shared node
  W4 deep     the W1 chain with 1,000,000 ops: no stack overflow, ns/node, peak memory
  W5 seed     a five-node graph with known gradients (backflow graph --model seed)
  W6 fine     1,000 branches of 100 scalar ops: parallelism between nodes of tens of ns
  T1 digits   training a 16-branch model on the digits data (backflow train)
  models      inception, attention, moe on the same data (backflow train --model NAME)

Threads: every --threads or --jobs value of 0 means all cores, as
BackwardOptions::threads(0) does.

Exit status: 0 success, 1 a failed run, 2 a usage error (reported before any work).";

/// backflow: automatic differentiation with a multi-threaded dataflow backward pass.
#[derive(Parser, Debug)]
#[command(
    name = "backflow",
    version,
    about,
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train the wide multi-branch model on the digits data (workload T1).
    ///
    /// Train workload T1: the embedded digits data (1,797 8x8 images), shuffled with --seed
    /// and split 80/20; a model of --branches parallel branches, each Linear(64,h) -> tanh
    /// -> Linear(h,h) -> tanh on the same input, concatenated, then Linear(branches*h, 10);
    /// cross-entropy, Adam, mini-batches. Prints the test accuracy, the mean loss of the
    /// last epoch, the training and backward wall times. Full definition:
    /// benches/WORKLOADS.md (T1). --model inception, attention or moe trains another
    /// model on the same data and split instead (docs/models.md). Progress is a bar on a
    /// terminal, else one line per epoch with its mean loss. --checkpoint FILE and
    /// --resume stop and continue a run exactly; --distributed trains data-parallel.
    Train(train::TrainArgs),
    /// Evaluate weights saved by `train --save` on the digits test split.
    ///
    /// Evaluate a model saved by `backflow train --save FILE` on the digits test split
    /// (the 20 % of rows that training held out: the seed is read from the file, or
    /// --seed for a file without one) and print its test accuracy. The model is recognised from the file's tensor names; for T1 the numbers
    /// of branches and hidden units are read from its shapes. See benches/WORKLOADS.md
    /// (T1) and docs/models.md.
    Eval(eval::EvalArgs),
    /// Time the standard workloads' backward pass at several thread counts (W1–W4, W6).
    ///
    /// Time the backward pass of the standard workloads (benches/WORKLOADS.md): W1, a
    /// 100,000-op scalar chain (per-node overhead, ns/node); W2, 64 independent branches of
    /// 8 tanh(h @ W) layers (parallelism between branches); W3, 10,000 consumers of one
    /// 64-element tensor (contention on a shared node); W4, the W1 chain with 1,000,000 ops
    /// (depth, peak memory and the graph's bytes per node); W6, 1,000 branches of 100 scalar
    /// ops (parallelism between nodes of tens of ns). Dfs and Kahn are measured once, Parallel at each --threads
    /// count; speedup and efficiency are against Parallel at 1 thread. Prints a table,
    /// writes JSON and an SVG plot.
    Scale(scale::ScaleArgs),
    /// Print the seed example's, the T1 model's or one model block's graph (Mermaid or DOT).
    ///
    /// Print a computation graph: the seed example W5 (t3 = t1 + t2, t4 = t2*t5, t6 =
    /// t3*t4, t7 = sin(t6)), the T1 digits model on one batch, or one block of another
    /// model (an Inception block, an attention layer, the MoE layer) on a batch of 2, as a
    /// Mermaid flowchart or Graphviz DOT. See benches/WORKLOADS.md (W5, T1) and
    /// docs/models.md.
    Graph(graph::GraphArgs),
    /// Random DAGs under every scheduler, thread count and mode, with fault injection.
    ///
    /// Check the backward pass on random DAGs: every graph runs under Dfs (the reference),
    /// Kahn and Parallel at each --threads count, in both accumulation modes, at executor
    /// level too; some get injected faults, an f64 finite-difference check or concurrent
    /// callers; a watchdog reports hangs. Exits 1 on any mismatch, hang or panicking check,
    /// printing the command that reproduces the first failing seed.
    Stress(stress::StressArgs),
}

/// What the binary did to the allocator at startup (see `app/src/malloc.rs`), for reports.
static ALLOCATOR: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// The allocator setting, as printed in reports.
fn allocator() -> &'static str {
    ALLOCATOR.get().copied().unwrap_or("system default")
}

/// Parses the command line and runs the subcommand; `allocator` says what `main` did to
/// the allocator, for the reports.
pub fn main(allocator: &'static str) -> ExitCode {
    let _ = ALLOCATOR.set(allocator);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version: clap's own text, exit 0.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // No subcommand: the whole help, as clap lays it out (on stderr), exit 2.
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("{}", one_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Scale(args) => scale::run(args),
        Command::Graph(args) => graph::run(args),
        Command::Stress(args) => stress::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<args::UsageError>() => {
            eprintln!("error: {}", one_line(&e.to_string()));
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {}", one_line(&e.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// Folds a message onto one line, leaving out clap's "Usage:" and "For more
/// information" lines.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more"))
        .collect::<Vec<_>>()
        .join(" ")
}
