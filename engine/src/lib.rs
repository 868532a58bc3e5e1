//! backflow-engine: the graph, tensor autograd metadata, the schedulers and the parallel
//! backward executor of backflow.

pub mod exec;
pub mod sync;
