//! The sync shim: the only place in the engine that names atomics, locks, `Arc` and threads.
//!
//! Under `--cfg loom` it re-exports loom's checked types, otherwise std's and parking_lot's,
//! so the loom models in `engine/tests/loom_*.rs` exercise the code that ships (the pattern
//! of tokio's `src/loom/mod.rs`).

#[cfg(not(loom))]
mod std_impl;
#[cfg(not(loom))]
pub use std_impl::*;

#[cfg(loom)]
mod loom_impl;
#[cfg(loom)]
pub use loom_impl::*;
