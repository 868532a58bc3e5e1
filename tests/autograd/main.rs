//! Autograd behaviour: hooks, no_grad, retain_graph, checkpoints, custom ops, traces.
//! One test binary with a module per former test file, so that the
//! library is linked once for all of them.

#[path = "../common/mod.rs"]
mod common;

mod anomaly;
mod checkpoint;
mod custom_op;
mod grad_pruning;
mod hooks;
mod multi_root;
mod no_grad;
mod retain_graph;
mod trace;
