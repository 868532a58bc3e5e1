//! Every op's forward values, gradcheck and errors.
//! One test binary with a module per former test file, so that the
//! library is linked once for all of them.

#[path = "../ops_common/mod.rs"]
mod ops_common;

mod axis;
mod compare;
mod conv;
mod elementwise;
mod matmul;
mod norm;
mod pool;
mod select;
mod slice;
