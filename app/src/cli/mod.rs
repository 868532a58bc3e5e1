//! Subcommand dispatch. Each subcommand lives in its own file with an `Args` struct (clap
//! derive) and a `run(args) -> CliResult`; adding one is one `Command` variant and one
//! match arm.

mod graph;
mod scale;
mod stress;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// What a subcommand returns: any error is printed and makes the exit status 1.
pub type CliResult = Result<(), Box<dyn std::error::Error>>;

/// backflow: automatic differentiation with a multi-threaded dataflow backward pass.
#[derive(Parser, Debug)]
#[command(name = "backflow", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train the wide multi-branch model on the digits data (workload T1).
    Train(train::TrainArgs),
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
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Scale(args) => scale::run(args),
        Command::Graph(args) => graph::run(args),
        Command::Stress(args) => stress::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
