//! Gradient values: closed forms, finite differences, higher order, buffer reuse.
//! One test binary with a module per former test file, so that the
//! library is linked once for all of them.

mod buffer_reuse;
mod check;
mod closed_form;
mod higher_order;
