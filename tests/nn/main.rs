//! The nn layer: modules, layers, optimisers, parameter hooks.
//! One test binary with a module per former test file, so that the
//! library is linked once for all of them.

#[path = "../common/mod.rs"]
mod common;

mod generic;
mod layers;
mod modules;
mod optim;
mod param_hooks;
