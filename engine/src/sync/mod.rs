//! The sync shim: the only place in the engine that names atomics, locks, `Arc` and threads.
//!
//! Under `--cfg loom` it re-exports loom's checked types, otherwise std's and parking_lot's,
//! so the loom models in `engine/tests/loom/*.rs` exercise the code that ships (the pattern
//! of tokio's `src/loom/mod.rs`).

#[cfg(not(loom))]
mod std_impl;
#[cfg(not(loom))]
pub use std_impl::*;

#[cfg(loom)]
mod loom_impl;
#[cfg(loom)]
pub use loom_impl::*;

/// Declares `$vis fn $name() -> &'static $ty`: one value for the process, created by `$init`
/// on first use. Under loom it is a `loom::lazy_static`, created afresh in every execution of
/// a model (and dropped at its end), so models do not leak state into each other.
macro_rules! global {
    ($(#[$meta:meta])* $vis:vis fn $name:ident() -> $ty:ty = $init:expr;) => {
        $(#[$meta])*
        $vis fn $name() -> &'static $ty {
            #[cfg(not(loom))]
            {
                static CELL: std::sync::OnceLock<$ty> = std::sync::OnceLock::new();
                CELL.get_or_init(|| $init)
            }
            #[cfg(loom)]
            {
                loom::lazy_static! {
                    static ref CELL: $ty = $init;
                }
                &CELL
            }
        }
    };
}
pub(crate) use global;
