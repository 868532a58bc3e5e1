//! The loom models of the executor, one module each, in one test binary. Each model runs
//! the real release, accumulation, queue, split and completion code, compiled with
//! `--cfg loom`; `.ci/loom.sh` runs every test in a process of its own. Without
//! `--cfg loom` the binary is empty.
#![cfg(loom)]

#[path = "../common/mod.rs"]
mod common;

mod accumulate;
mod executor;
mod failure;
mod fold_tree;
mod independent;
mod nested;
mod polling;
mod release;
mod split;
mod stripes;
