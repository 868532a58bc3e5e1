//! The executor: concurrent callers, panics, rayon pools, re-entrant passes.
//! One test binary with a module per former test file, so that the
//! library is linked once for all of them.

#[path = "../common/mod.rs"]
mod common;

mod concurrent_callers;
mod panic;
mod rayon_pool;
mod reentrant;
mod split;
