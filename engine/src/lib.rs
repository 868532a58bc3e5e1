//! backflow-engine: the graph, tensor autograd metadata, the schedulers and the parallel
//! backward executor of backflow.

pub mod error;
pub mod exec;
mod ops;
pub mod sync;
pub mod tensor;

pub use error::{Error, Result};
pub use exec::{Accumulation, Scheduler};
pub use tensor::grad_mode::{is_grad_enabled, no_grad};
pub use tensor::{backward, grad, BackwardCtx, BackwardOptions, Tensor};
