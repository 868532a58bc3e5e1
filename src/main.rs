//! The `backflow` command line: `backflow train` and the other subcommands in `cli/`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
