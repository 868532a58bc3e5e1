//! backflow: automatic differentiation with a multi-threaded dataflow backward pass.
//!
//! Forward code records a graph of tensor operations as it runs; [`Tensor::backward`] walks
//! it in reverse on a work-stealing pool, running independent branches in parallel, with
//! gradients bitwise identical to the sequential schedulers.
//!
//! ```
//! use backflow::Tensor;
//! // The seed graph: t3 = t1 + t2, t4 = t2 * t5, t6 = t3 * t4, L = sin(t6)
//! let t1 = Tensor::<f32>::scalar(2.0).requires_grad();
//! let t2 = Tensor::<f32>::scalar(3.0).requires_grad();
//! let t5 = Tensor::<f32>::scalar(0.5).requires_grad();
//! let l = ((&t1 + &t2) * (&t2 * &t5)).sin();
//! l.backward().unwrap();
//! let c = 7.5f32.cos();
//! assert!((t2.grad().unwrap().item() - c * 4.0).abs() < 1e-5);
//! ```
//!
//! Data-parallel training across processes over MPI is the module `distributed`, behind the
//! feature `mpi` (it needs an MPI library to build): enable it, or read it on docs.rs,
//! which documents every feature, or locally with `cargo doc --features mpi`.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "mpi")]
#[cfg_attr(docsrs, doc(cfg(feature = "mpi")))]
pub mod distributed;
pub mod nn;
mod parallel;

pub use backflow_engine::io;

pub use backflow_engine::exec::{
    clamp_threads, default_threads, max_threads, split_estimate, SplitEstimate,
};
pub use backflow_engine::{
    backward, checkpoint, enable_grad, grad, is_grad_enabled, no_grad, Accumulation, BackwardCtx,
    BackwardOptions, Error, Result, Scheduler, Tensor,
};
pub use backflow_engine::{
    gradcheck, gradgradcheck, numeric_grads, BackwardStats, CustomOp, GradFn, GradcheckTolerance,
    GraphExport, WeakTensor,
};
pub use backflow_kernels::Element;
pub use parallel::{parallel_for, parallel_map, with_threads};

/// The README's code blocks, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
