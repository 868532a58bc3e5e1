//! backflow-engine: the graph, tensor autograd metadata, the schedulers and the parallel
//! backward executor of backflow.

pub mod error;
pub mod exec;
pub mod io;
// The tensor layer is not model-checked: loom builds keep only the executor and the shim.
#[cfg(not(loom))]
mod ops;
// Public to the loom models only (engine/tests/loom/*.rs); the library's users never see it.
#[cfg(loom)]
pub mod sync;
#[cfg(not(loom))]
pub(crate) mod sync;
#[cfg(not(loom))]
pub mod tensor;

pub use error::{Error, Result};
pub use exec::{Accumulation, Scheduler};
#[cfg(not(loom))]
pub use tensor::grad_mode::{enable_grad, is_grad_enabled, no_grad};
#[cfg(not(loom))]
pub use tensor::{
    backward, checkpoint, grad, gradcheck, gradgradcheck, numeric_grads, BackwardCtx,
    BackwardOptions, BackwardStats, CustomOp, GradFn, GradcheckTolerance, GraphExport, Tensor,
    WeakTensor,
};
