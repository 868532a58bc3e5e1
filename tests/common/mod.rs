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

/// The environment variable through which [`rerun_with_file_size_limit`] hands the child
/// its folder; a test that finds it set is the child.
#[allow(dead_code)]
pub const LIMITED_CHILD_DIR: &str = "BACKFLOW_TEST_LIMITED_CHILD_DIR";

/// Runs this test binary's test `test` again in a child process whose files cannot grow
/// past 1 KiB or 2 KiB (`ulimit -f 2`, in the shell's blocks), with `SIGXFSZ` ignored so
/// that a write past the limit fails with `EFBIG` instead of killing the child. The child
/// finds `dir` in [`LIMITED_CHILD_DIR`]. Fails the test if the child's test did not pass,
/// or (as a watchdog) if it has not finished within two minutes.
#[allow(dead_code)]
pub fn rerun_with_file_size_limit(test: &str, dir: &std::path::Path) {
    let exe = std::env::current_exe().expect("the test binary's path");
    // In a grouped test binary the test's full name has its module in front
    // (`trace::name`); the harness names the test's thread with it.
    let test = std::thread::current()
        .name()
        .filter(|full| full.ends_with(test))
        .unwrap_or(test)
        .to_string();
    let test = test.as_str();
    let mut child = std::process::Command::new("sh");
    child
        .args(["-c", r#"trap "" XFSZ; ulimit -f 2 && exec "$@""#, "sh"])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(LIMITED_CHILD_DIR, dir);
    let out = watchdog(test, 120, move || child.output()).expect("start the child");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "the child under the file-size limit failed:\n{text}"
    );
}
