//! Re-running one test of the current test binary in a child process under a resource
//! limit, for tests of what a full disk does to code that writes files (a save that fails
//! must leave the previous file as it was).
//!
//! The parent calls [`rerun_with_file_size_limit`] with its test's name and a folder; the
//! child runs the same test, finds the folder in [`LIMITED_CHILD_DIR`], and takes the
//! branch that writes under the limit:
//!
//! ```no_run
//! use backflow_stress::limits::{rerun_with_file_size_limit, LIMITED_CHILD_DIR};
//!
//! fn a_failed_save_keeps_the_old_file() {
//!     if let Some(dir) = std::env::var_os(LIMITED_CHILD_DIR) {
//!         // The child: writes past 2 KiB fail with EFBIG here.
//!         let big = vec![0u8; 1 << 20];
//!         assert!(std::fs::write(std::path::Path::new(&dir).join("f"), big).is_err());
//!         return;
//!     }
//!     let dir = std::env::temp_dir().join("limited-example");
//!     std::fs::create_dir_all(&dir).unwrap();
//!     rerun_with_file_size_limit("a_failed_save_keeps_the_old_file", &dir);
//! }
//! ```

use crate::watchdog::run_with_deadline;
use std::path::Path;
use std::time::Duration;

/// The environment variable through which [`rerun_with_file_size_limit`] hands the child
/// its folder; a test that finds it set is the child.
pub const LIMITED_CHILD_DIR: &str = "BACKFLOW_TEST_LIMITED_CHILD_DIR";

/// Runs this test binary's test `test` again in a child process whose files cannot grow
/// past 1 KiB or 2 KiB (`ulimit -f 2`, in the shell's blocks), with `SIGXFSZ` ignored so
/// that a write past the limit fails with `EFBIG` instead of killing the child. The child
/// finds `dir` in [`LIMITED_CHILD_DIR`]. Panics (failing the calling test) if the child's
/// test did not pass, or, as a watchdog, if it has not finished within two minutes.
///
/// In a test binary that groups modules, `test` may be the bare name: the full name
/// (`module::name`) is taken from the test thread's name, which the harness sets to it.
pub fn rerun_with_file_size_limit(test: &str, dir: &Path) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let test = std::thread::current()
        .name()
        .filter(|full| full.ends_with(test))
        .unwrap_or(test)
        .to_string();
    let mut child = std::process::Command::new("sh");
    child
        .args(["-c", r#"trap "" XFSZ; ulimit -f 2 && exec "$@""#, "sh"])
        .arg(exe)
        .args(["--exact", &test, "--nocapture", "--test-threads=1"])
        .env(LIMITED_CHILD_DIR, dir);
    let out = run_with_deadline(&test, Duration::from_secs(120), None, move || {
        child.output()
    })
    .unwrap_or_else(|hang| panic!("the child under the file-size limit: {hang}"))
    .expect("start the child");
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
