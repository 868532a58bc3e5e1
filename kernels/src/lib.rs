//! Forward and backward numeric kernels of backflow over plain, contiguous, row-major slices.
//!
//! Each op's backward sits right beside its forward, with its derivation in one comment.
//! Kernels trust their callers: the engine validates shapes and reports user errors first,
//! so a kernel panics only when a documented precondition is broken.

mod binary;
mod element;
mod gemm;
mod layout;
mod matmul;
mod reduce;
mod shape;
mod softmax;
mod transcendental;
mod unary;

mod gradcheck;

pub use binary::{binary_backward, binary_forward, Binary};
pub use element::Element;
pub use gradcheck::numeric_gradient;
pub use layout::{concat, concat_backward, transpose};
pub use matmul::{matmul, matmul_backward};
pub use reduce::{sum_all, sum_axis, sum_axis_backward};
pub use shape::{broadcast_shapes, broadcast_to, checked_numel, numel, reduce_to, strides};
pub use softmax::{log_softmax, log_softmax_backward, softmax, softmax_backward};
pub use unary::{unary_backward, unary_forward, Unary};
