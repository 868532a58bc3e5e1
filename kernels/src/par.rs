//! Splitting one kernel into chunks that other threads may run.
//!
//! The kernels know nothing of threads. A kernel that is large enough calls [`for_each`]
//! with a number of chunks, their work in flops and a function of the chunk index; whoever
//! installed a [`ChunkRunner`] (the engine installs its executor's pool) decides which
//! threads run which chunks, and how much work a kernel must hold to be worth splitting at
//! all ([`least_split_flops`]). Without one, nothing splits.
//!
//! Determinism is the kernel's side of the contract: each chunk writes its own disjoint part
//! of the output, and a chunk's arithmetic must not depend on how many chunks there are or
//! which thread runs it. So the bits never depend on the split.

use std::sync::OnceLock;

/// Runs the chunks of a split kernel, on as many threads as it sees fit.
pub trait ChunkRunner: Sync {
    /// Calls `f(i)` once for each `i` in `0..chunks`, in any order and on any threads, and
    /// returns once every call has returned. Nested calls (a chunk that splits again) must
    /// be allowed and must not deadlock. `work` is the work of all chunks together (0 flops
    /// when unknown), from which a runner may learn how fast chunks of its kind run.
    fn run(&self, chunks: usize, work: Work, f: &(dyn Fn(usize) + Sync));

    /// The least work, in flops, worth splitting: kernels under it run whole on the calling
    /// thread, since the threads that would take their chunks would join too late to help.
    fn least_split_flops(&self, kind: Kind) -> usize {
        let _ = kind;
        DEFAULT_LEAST_SPLIT_FLOPS
    }
}

/// What a split kernel's flops count, so that a runner keeps a speed per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Products and reductions (GEMM, batched GEMM, convolutions, pooling, sums): their
    /// flops are the arithmetic they do.
    Product,
    /// Elementwise and row kernels (unary and binary ops, GELU, softmax, layer norm): a
    /// nominal cost per element, for sizing (memory-bound, or transcendental).
    Elementwise,
}

/// The work of a split kernel: its flops (0 when unknown) and what they count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Work {
    /// Flops of all chunks together; 0 when unknown.
    pub flops: usize,
    /// What the flops count.
    pub kind: Kind,
}

/// [`ChunkRunner::least_split_flops`] of a runner that does not estimate it.
pub const DEFAULT_LEAST_SPLIT_FLOPS: usize = 200_000;

static RUNNER: OnceLock<&'static dyn ChunkRunner> = OnceLock::new();

/// Installs the process's chunk runner. Only the first call has an effect; it returns
/// whether this call installed `runner`.
pub fn set_runner(runner: &'static dyn ChunkRunner) -> bool {
    RUNNER.set(runner).is_ok()
}

/// Calls `f(i)` for each `i` in `0..chunks` (`work` together), on the installed runner's
/// threads, or in order on this thread when none is installed or there is at most one
/// chunk.
pub fn for_each(chunks: usize, work: Work, f: &(dyn Fn(usize) + Sync)) {
    match RUNNER.get() {
        Some(runner) if chunks > 1 => runner.run(chunks, work, f),
        _ => (0..chunks).for_each(f),
    }
}

/// The installed runner's [`least_split_flops`](ChunkRunner::least_split_flops), or
/// `usize::MAX` when none is installed (chunks would run one after another anyway).
pub fn least_split_flops(kind: Kind) -> usize {
    RUNNER
        .get()
        .map_or(usize::MAX, |r| r.least_split_flops(kind))
}

/// Whether a runner is installed (else every kernel runs whole).
pub fn has_runner() -> bool {
    RUNNER.get().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn without_a_runner_every_chunk_runs_once() {
        let hits: Vec<AtomicUsize> = (0..5).map(|_| AtomicUsize::new(0)).collect();
        let work = Work {
            flops: 0,
            kind: Kind::Product,
        };
        for_each(5, work, &|i| {
            hits[i].fetch_add(1, Ordering::Relaxed);
        });
        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
    }
}
