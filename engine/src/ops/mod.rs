//! The differentiable ops on [`Tensor`](crate::Tensor). Each op computes its forward with a
//! kernel and records a backward that uses the fused kernel backward, or, under
//! `create_graph`, the same derivative written with differentiable ops.

mod axis;
mod binary;
mod broadcast;
mod clamp;
mod compare;
mod conv;
mod dims;
mod dropout;
mod extremum;
mod gelu;
mod layout;
mod matmul;
mod norm;
mod pool;
mod reduce;
mod scalar;
mod select;
mod slice;
mod softmax;
mod unary;
