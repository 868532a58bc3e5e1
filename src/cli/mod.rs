//! Subcommand dispatch. Each subcommand lives in its own file with an `Args` struct (clap
//! derive) and a `run(args) -> CliResult`; adding one is one `Command` variant and one
//! match arm.

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
}

/// Parses the command line and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => train::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
