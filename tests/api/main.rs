//! The public API as a whole: errors, fuzzing, plan cache, deep graphs, scheduler equivalence.
//! One test binary with a module per former test file, so that the
//! library is linked once for all of them.

mod errors;
mod fuzz_api;
mod plan_cache;
mod regress_deep_graph;
mod sched_equivalence;
