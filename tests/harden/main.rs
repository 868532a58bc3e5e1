//! Hardening: bad inputs, shapes and numerics give clear errors, never wrong gradients.
//! One test binary with a module per former test file, so that the
//! library is linked once for all of them.

#[path = "../common/mod.rs"]
mod common;

mod grads;
mod inputs;
mod numerics;
mod shapes;
