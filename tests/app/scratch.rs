//! Scratch folders and path strings shared by the app's CLI tests.

use std::path::{Path, PathBuf};

/// A fresh, empty folder for the test `name` (names are unique across the app's tests).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("backflow-app-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `p` as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
