//! Subcommand dispatch. Each subcommand lives in its own file with an `Args` struct (clap
//! derive) and a `run(args) -> CliResult`; adding one is one `Command` variant and one
//! match arm. Every flag's value is validated in `args.rs`.
//!
//! Exit status: 0 success, 1 a run that failed (an error, a stress mismatch), 2 a usage
//! error (a value that cannot work, an output path that cannot be written), always
//! reported on one line before any work.

mod args;
mod eval;
mod graph;
mod scale;
mod stress;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// What a subcommand returns: an [`args::UsageError`] makes the exit status 2, any other
/// error 1; either is printed on one line.
pub type CliResult = Result<(), Box<dyn std::error::Error>>;

/// backflow: automatic differentiation with a multi-threaded dataflow backward pass.
#[derive(Parser, Debug)]
#[command(
    name = "backflow",
    version,
    about,
    after_help = "The workloads (W1 chain, W2 wide, W3 fan-in, W4 deep, W5 seed, W6 fine-grained \
                  wide, T1 digits) are defined in benches/WORKLOADS.md. Every --threads or \
                  --jobs value of 0 means all cores, as BackwardOptions::threads(0) does. Exit \
                  status: 0 success, 1 a failed run, 2 a usage error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train the wide multi-branch model on the digits data (workload T1).
    Train(train::TrainArgs),
    /// Evaluate weights saved by `train --save` on the digits test split.
    Eval(eval::EvalArgs),
    /// Time the standard workloads' backward pass at several thread counts (W1–W4).
    Scale(scale::ScaleArgs),
    /// Print the seed example's or the T1 model's computation graph (Mermaid or DOT).
    Graph(graph::GraphArgs),
    /// Random DAGs under every scheduler, thread count and mode, with fault injection.
    Stress(stress::StressArgs),
}

/// What the binary did to the allocator at startup (see `src/malloc.rs`), for reports.
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
