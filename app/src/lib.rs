//! The `backflow` command line's library half: the standard workloads, the digits data
//! loader, the T1 trainer and the other digits models (`models`). The binary (`src/main.rs`, `src/cli/`) and the benches and
//! tests under the repository's top-level `benches/` and `tests/app/` use them.
//!
//! This crate is not published: a user of backflow depends on the `backflow` crate (and on
//! `backflow-stress` as a dev-dependency), never on this one.

pub mod canonical;
pub mod checkpoint;
pub mod data;
pub mod models;
pub mod train;
#[cfg(feature = "mpi")]
pub mod train_distributed;
pub mod train_loop;
pub mod trained_weights;
pub mod workloads;
