//! The `backflow` command line: `backflow train` and the other subcommands in `cli/`.

mod cli;
mod malloc;

fn main() -> std::process::ExitCode {
    end_quietly_on_a_closed_pipe();
    let allocator = malloc::keep_freed_memory();
    cli::main(allocator)
}

/// Makes a write to a closed pipe (`backflow train | head -1`) end the process as it ends
/// any Unix tool, by `SIGPIPE`, instead of the panic that Rust's default (the signal
/// ignored, `println!` failing with `EPIPE`) gives. Every file the app writes is written
/// atomically, so a run ended this way leaves its last checkpoint whole. On Linux with
/// glibc, where the app links `libc`; elsewhere Rust's default stays.
fn end_quietly_on_a_closed_pipe() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY:
    // - called first thing in `main`, before any thread is started, so no other thread
    //   changes signal dispositions at the same time;
    // - `SIG_DFL` installs no handler of ours, so nothing of ours runs in signal context.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
