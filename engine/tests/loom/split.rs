//! loom model of a split kernel's waiting path: the caller offers three chunks through the
//! real `parallel_for_on` with a budget of two threads, so at most one helper of the shared
//! executor joins. Under every interleaving each chunk runs exactly once, and the caller
//! returns only after all have run: each chunk writes a plain (loom-tracked) cell that the
//! caller reads after the call, so a return that does not wait for a chunk still running
//! elsewhere (or that does not publish its writes) is caught.
//!
//! The negative control lets the caller return once every chunk is claimed, without
//! waiting for those still running on the helper; loom must find the interleaving where the
//! caller reads a cell the helper has not written yet.
//!
//! A third model nests a split inside a chunk.
//!
//! Run with `RUSTFLAGS="--cfg loom"` (see `.ci/loom.sh`).
#![cfg(loom)]

use crate::common::{check_exec, check_fails};

use backflow_engine::exec::{parallel_for_on, set_split_waits, shutdown};
use loom::cell::UnsafeCell;

const CHUNKS: usize = 3;

/// Per chunk: how many times it ran, written by whichever thread runs it.
struct Runs([UnsafeCell<u32>; CHUNKS]);

// SAFETY: the cells are accessed through loom's `UnsafeCell`, which reports any pair of
// accesses not ordered by happens-before; the split's claims and wait must order them.
unsafe impl Sync for Runs {}

/// The model: split `CHUNKS` chunks over two threads, then check every chunk ran once.
fn split(waits: bool) {
    set_split_waits(waits);
    let runs = Runs(std::array::from_fn(|_| UnsafeCell::new(0)));
    parallel_for_on(2, CHUNKS, &|i| {
        // Captures the whole `Runs` (which is `Sync`), not just its array.
        let runs = &runs;
        // SAFETY: only the thread that claimed chunk `i` writes its cell; loom checks it.
        runs.0[i].with_mut(|r| unsafe { *r += 1 });
    });
    for (i, cell) in runs.0.iter().enumerate() {
        // SAFETY: read after the split returned; loom reports a chunk still running.
        let n = cell.with(|r| unsafe { *r });
        assert_eq!(n, 1, "chunk {i} ran {n} times before the caller returned");
    }
}

#[test]
fn every_chunk_runs_once_before_the_caller_returns() {
    check_exec(|| split(true));
}

#[test]
fn a_caller_that_does_not_wait_is_caught() {
    let message = check_fails(|| {
        split(false);
        shutdown();
    });
    assert!(
        message.contains("ran 0 times") || message.contains("Causality violation"),
        "{message}"
    );
}

/// A chunk that splits again makes its thread the caller of the inner split: on the caller
/// or on the helper, every inner chunk runs once and nothing deadlocks. Bounded to two
/// preemptions: at three it takes minutes.
#[test]
fn nested_splits_finish() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        let runs = Runs(std::array::from_fn(|_| UnsafeCell::new(0)));
        parallel_for_on(2, 2, &|outer| {
            let runs = &runs;
            // Chunk 0 splits into cells 0 and 1; chunk 1 writes cell 2 alone.
            if outer == 0 {
                parallel_for_on(2, 2, &|inner| {
                    let runs = &runs;
                    // SAFETY: each inner chunk owns its cell; loom checks it.
                    runs.0[inner].with_mut(|r| unsafe { *r += 1 });
                });
            } else {
                // SAFETY: only chunk 1 writes cell 2; loom checks it.
                runs.0[2].with_mut(|r| unsafe { *r += 1 });
            }
        });
        for cell in &runs.0 {
            // SAFETY: read after the split returned.
            assert_eq!(cell.with(|r| unsafe { *r }), 1);
        }
        shutdown();
    });
}
