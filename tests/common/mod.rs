//! Helpers shared by the integration tests.

use backflow::{BackwardOptions, Scheduler};

/// Every scheduler, with `Parallel` at 2 and 4 threads.
#[allow(dead_code)]
pub fn configs() -> Vec<BackwardOptions> {
    let base = BackwardOptions::new();
    Scheduler::ALL
        .into_iter()
        .flat_map(|s| match s {
            Scheduler::Parallel => vec![
                base.clone().scheduler(s).threads(2),
                base.clone().scheduler(s).threads(4),
            ],
            _ => vec![base.clone().scheduler(s)],
        })
        .collect()
}

/// Every scheduler, with each at 1, 2, 4 and 8 threads (the count only matters to
/// `Parallel`), for the executor's re-entrancy and thread tests.
#[allow(dead_code)]
pub fn exec_configs() -> Vec<BackwardOptions> {
    Scheduler::ALL
        .into_iter()
        .flat_map(|s| [1, 2, 4, 8].map(|t| BackwardOptions::new().scheduler(s).threads(t)))
        .collect()
}

/// Runs `f` on its own thread and returns its result, failing the test (instead of hanging
/// it) if `f` has not returned within `secs` seconds. A hung `f` is left behind; the test
/// process ends anyway.
#[allow(dead_code)]
pub fn watchdog<R: Send + 'static>(
    label: &str,
    secs: u64,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("watched {label}"))
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(result);
        })
        .expect("start the watched thread");
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(Ok(r)) => r,
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(_) => panic!("{label}: no result after {secs} s (deadlock?)"),
    }
}

#[allow(unused_imports)]
pub use backflow_stress::limits::{rerun_with_file_size_limit, LIMITED_CHILD_DIR};
