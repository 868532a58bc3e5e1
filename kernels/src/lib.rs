//! Forward and backward numeric kernels of backflow over plain, contiguous, row-major slices.
//!
//! Each op's backward sits right beside its forward, with its derivation in one comment.
//! Kernels trust their callers: the engine validates shapes and reports user errors first,
//! so a kernel panics only when a documented precondition is broken.

mod axis;
mod batched;
mod binary;
mod compare;
mod conv;
mod element;
mod gelu;
mod gemm;
mod layout;
mod matmul;
mod norm;
pub mod par;
mod pool;
mod reduce;
mod select;
mod shape;
mod slice;
mod softmax;
mod split;
mod transcendental;
mod unary;

mod gradcheck;

pub use axis::{
    axis_lanes, extremum_axis, extremum_axis_backward, log_softmax_axis, log_softmax_axis_backward,
    softmax_axis, softmax_axis_backward,
};
pub use batched::{batched_matmul, batched_matmul_backward, BatchPlan};
pub use binary::{binary_backward, binary_forward, Binary};
pub use compare::{compare, select_where, Compare};
pub use conv::{conv2d, conv2d_bias_grad, conv2d_input_grad, conv2d_weight_grad, Conv2dShape};
pub use element::Element;
pub use gelu::{
    gelu, gelu_backward, gelu_tanh, gelu_tanh_backward, GELU_CUBIC, GELU_INV_SQRT_2PI,
    GELU_SQRT_2_OVER_PI, GELU_TANH_SATURATED,
};
pub use gradcheck::numeric_gradient;
pub use layout::{concat, concat_backward, permute, transpose};
pub use matmul::{matmul, matmul_backward};
pub use norm::{layer_norm, layer_norm_backward, LayerNormSaved};
pub use pool::{avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward, Pool2dShape};
pub use reduce::{sum_all, sum_axis, sum_axis_backward};
pub use select::{gather, index_add, index_select, scatter_add};
pub use shape::{broadcast_shapes, broadcast_to, checked_numel, numel, reduce_to, strides};
pub use slice::{narrow, narrow_backward};
pub use softmax::{log_softmax, log_softmax_backward, softmax, softmax_backward};
pub use unary::{unary_backward, unary_backward_in_place, unary_forward, Unary};
