//! `rerun_with_file_size_limit`: the child runs the named test (even an ignored one) under
//! the limit, and the parent fails when the child's test fails.
#![cfg(unix)]

use backflow_stress::limits::{rerun_with_file_size_limit, LIMITED_CHILD_DIR};
use std::path::{Path, PathBuf};

/// A fresh folder for one test.
fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("limits-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
#[ignore = "the child of `an_ignored_test_runs_in_the_child_under_the_limit`"]
fn a_large_write_fails_with_efbig() {
    let Some(dir) = std::env::var_os(LIMITED_CHILD_DIR) else {
        return;
    };
    let err = std::fs::write(Path::new(&dir).join("big"), vec![0u8; 64 * 1024]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(27), "EFBIG: {err}");
}

#[test]
fn an_ignored_test_runs_in_the_child_under_the_limit() {
    let dir = folder("efbig");
    rerun_with_file_size_limit("a_large_write_fails_with_efbig", &dir);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
#[ignore = "the child of `a_failing_child_fails_the_parent`"]
fn fails_in_the_child() {
    assert!(
        std::env::var_os(LIMITED_CHILD_DIR).is_none(),
        "fails when run as the child"
    );
}

#[test]
#[should_panic(expected = "the child under the file-size limit failed")]
fn a_failing_child_fails_the_parent() {
    rerun_with_file_size_limit("fails_in_the_child", &folder("fails"));
}
