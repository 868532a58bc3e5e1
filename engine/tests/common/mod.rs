//! Helpers shared by the loom models (`engine/tests/loom_*.rs`): the gradient types they
//! sum, the small graphs they run, and the model runners. Each model uses a part of it.
#![allow(dead_code)]

use backflow_engine::exec::Gradient;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A gradient that spells out its sum: `accumulate` is neither commutative nor associative,
/// so the result shows which contributions were folded, in which order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr(pub String);

impl Gradient for Expr {
    fn accumulate(self, later: Self) -> Self {
        Expr(format!("({}+{})", self.0, later.0))
    }
}

/// A gradient that only counts the contributions it sums.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Count(pub u32);

impl Gradient for Count {
    fn accumulate(self, later: Self) -> Self {
        Count(self.0 + later.0)
    }
}

/// Successors of a diamond: 0 → {1, 2} → 3.
pub const DIAMOND: [&[u32]; 4] = [&[1, 2], &[3], &[3], &[]];

/// Successors of a two-node chain: 0 → 1.
pub const CHAIN: [&[u32]; 2] = [&[1], &[]];

/// Runs `f` under loom; bounded to 3 preemptions unless `LOOM_MAX_PREEMPTIONS` says otherwise.
pub fn check(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound.get_or_insert(3);
    builder.check(f);
}

/// [`check`] for models that run the executor: its helper threads must finish before each
/// execution ends, as loom requires.
pub fn check_exec(f: impl Fn() + Sync + Send + 'static) {
    check(move || {
        f();
        backflow_engine::exec::shutdown();
    });
}

/// Runs a model expected to fail; returns loom's panic message.
pub fn check_fails(f: impl Fn() + Sync + Send + 'static) -> String {
    let payload = catch_unwind(AssertUnwindSafe(|| check(f)))
        .expect_err("loom found no interleaving that breaks the model");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Runs the ignored test `name` of this binary in a child process (a deadlock that loom
/// finds aborts its whole process); returns the child's output if it failed, and panics if
/// it passed.
pub fn child_failure(name: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            name,
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .output()
        .expect("run the child");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{name} passed:\n{text}");
    text
}
