//! The `backflow` command line: `backflow train` and the other subcommands in `cli/`.

mod cli;
mod malloc;

fn main() -> std::process::ExitCode {
    let allocator = malloc::keep_freed_memory();
    cli::main(allocator)
}
