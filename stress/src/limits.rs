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
//!         // The child: writes past 1 KiB fail with EFBIG here.
//!         let big = vec![0u8; 1 << 20];
//!         assert!(std::fs::write(std::path::Path::new(&dir).join("f"), big).is_err());
//!         return;
//!     }
//!     let dir = std::env::temp_dir().join("limited-example");
//!     std::fs::create_dir_all(&dir).unwrap();
//!     rerun_with_file_size_limit("a_failed_save_keeps_the_old_file", &dir);
//! }
//! ```

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable through which [`rerun_with_file_size_limit`] hands the child
/// its folder; a test that finds it set is the child.
pub const LIMITED_CHILD_DIR: &str = "BACKFLOW_TEST_LIMITED_CHILD_DIR";

/// How long the child may run before it is killed and the calling test fails.
const CHILD_DEADLINE: Duration = Duration::from_secs(120);

/// Runs this test binary's test `test` again in a child process whose files cannot grow
/// past 1 KiB or 2 KiB (`ulimit -f 2`, in the blocks of the system's `sh`: 512 bytes in
/// dash, 1 KiB in bash), with `SIGXFSZ` ignored so that a write past the limit fails with
/// `EFBIG` instead of killing the child. The child finds `dir` in [`LIMITED_CHILD_DIR`],
/// and runs the test even when it is `#[ignore]`d. Panics (failing the calling test) if the
/// child's test did not pass, or, as a watchdog, if it has not finished within two minutes
/// (the child is then killed).
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
    let mut child = Command::new("sh")
        .args(["-c", r#"trap "" XFSZ; ulimit -f 2 && exec "$@""#, "sh"])
        .arg(exe)
        .args(["--exact", &test, "--include-ignored", "--nocapture"])
        .arg("--test-threads=1")
        .env(LIMITED_CHILD_DIR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child");
    // The output is read on threads of its own, so a chatty child never blocks on a pipe.
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if start.elapsed() > CHILD_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{test}: the child under the file-size limit ran past {CHILD_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let text = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    assert!(
        status.success() && text.contains("1 passed"),
        "the child under the file-size limit failed:\n{text}"
    );
}

/// Reads `pipe` to its end on a thread of its own; the thread returns the text.
fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}
