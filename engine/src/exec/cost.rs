//! What sharing work between threads costs, learnt from what this process has run
//! (exponential moving averages, as TensorFlow's executor keeps per node). Each estimate only
//! picks between paths that give the same bits.
//!
//! - Passes: whether a pass is worth sharing is its node count times the recent cost of a
//!   node. A pass estimated under [`ALONE_BELOW`] runs on the calling thread alone, since
//!   waking helpers would cost more than it saves; a small graph of expensive nodes
//!   (convolutions) is still shared, a small graph of cheap ones is not.
//! - Kernel splits: a kernel is worth splitting when it takes at least twice as long as a
//!   helper takes to join a split ([`least_split_flops`]). A helper joining after time `L`
//!   then shares the rest, which ends a kernel of `T ≥ 2L` by `(T + L) / 2 ≤ 0.75·T`, while
//!   a shorter kernel, which a helper could shorten little or not at all, runs whole. Both
//!   factors are measured by the splits themselves: the time from the offer to the first
//!   helper's join, and the speed of the chunks the caller runs, kept per [`Kind`] (a
//!   product's flops are arithmetic, an elementwise kernel's a nominal cost per element).
//!   Since only splits measure, one call in [`EXPLORE_EVERY`] lowers the threshold to half,
//!   so kernels just under it still split now and then and a stale estimate recovers.

use crate::sync::{AtomicBool, AtomicUsize, Ordering};
use backflow_kernels::par::Kind;
use std::cell::Cell;
use std::time::Duration;

/// Passes estimated shorter than this run alone.
const ALONE_BELOW: Duration = Duration::from_micros(30);

/// The cost assumed before any pass has been measured: a node of light tensor work.
const FIRST_GUESS_NS: usize = 2_000;

/// Recent cost of a node, in nanoseconds (shared by every pass of the process).
static NS_PER_NODE: AtomicUsize = AtomicUsize::new(FIRST_GUESS_NS);

/// Whether a pass of `nodes` nodes is estimated too short to share.
pub(super) fn too_small_to_share(nodes: usize) -> bool {
    // Relaxed: a heuristic; a stale estimate only picks the other, equally correct, path.
    short(nodes, NS_PER_NODE.load(Ordering::Relaxed))
}

/// Whether `nodes` nodes of `per_node` ns each take less than [`ALONE_BELOW`].
fn short(nodes: usize, per_node: usize) -> bool {
    (nodes.saturating_mul(per_node) as u128) < ALONE_BELOW.as_nanos()
}

/// Folds one pass's measured time into the estimate (weight 1/8).
pub(super) fn record(nodes: usize, elapsed: Duration) {
    if nodes == 0 {
        return;
    }
    fold(&NS_PER_NODE, elapsed.as_nanos() / nodes as u128);
}

/// The moving average after one more measurement (weight 1/8), at least 1 ns.
fn averaged(old: usize, measured: usize) -> usize {
    (old - old / 8 + measured / 8).max(1)
}

/// The time assumed, before any split has been measured, for a helper to join one.
const FIRST_ARRIVAL_NS: usize = 10_000;

/// The kernel speed assumed before any chunk has been measured, in flops per µs.
const FIRST_FLOPS_PER_US: usize = 10_000;

/// Bounds of [`least_split_flops`]: never less than the runner's default (what the splits
/// were tuned with before they were measured), and never so much that a long kernel stays
/// on one thread because of a stale estimate.
const LEAST_SPLIT_FLOPS: std::ops::RangeInclusive<usize> =
    backflow_kernels::par::DEFAULT_LEAST_SPLIT_FLOPS..=40_000_000;

/// Recent time from a split's offer to the first helper's claim, in nanoseconds.
static ARRIVAL_NS: AtomicUsize = AtomicUsize::new(FIRST_ARRIVAL_NS);

/// Recent speed of the chunks of split kernels, in flops per microsecond, per [`Kind`].
static FLOPS_PER_US: [AtomicUsize; 2] = [
    AtomicUsize::new(FIRST_FLOPS_PER_US),
    AtomicUsize::new(FIRST_FLOPS_PER_US),
];

/// Whether any split has measured a helper's arrival yet.
static MEASURED: AtomicBool = AtomicBool::new(false);

/// One call of [`least_split_flops`] in this many (per thread) answers half the threshold.
const EXPLORE_EVERY: usize = 16;

thread_local! {
    /// Calls of [`least_split_flops`] on this thread, for [`EXPLORE_EVERY`].
    static CALLS: Cell<usize> = const { Cell::new(0) };
}

/// The index of `kind` in [`FLOPS_PER_US`].
fn slot(kind: Kind) -> usize {
    match kind {
        Kind::Product => 0,
        Kind::Elementwise => 1,
    }
}

/// The least work of `kind` worth splitting: the flops one thread computes in twice the
/// time a helper recently took to join a split, within [`LEAST_SPLIT_FLOPS`]; on one call
/// in [`EXPLORE_EVERY`], half of it.
pub(super) fn least_split_flops(kind: Kind) -> usize {
    let call = CALLS.with(|c| {
        c.set(c.get().wrapping_add(1));
        c.get()
    });
    explore(call, threshold(kind))
}

/// The threshold for `kind` from the current estimates.
fn threshold(kind: Kind) -> usize {
    // Relaxed: heuristics, as in `too_small_to_share`.
    split_flops(
        ARRIVAL_NS.load(Ordering::Relaxed),
        FLOPS_PER_US[slot(kind)].load(Ordering::Relaxed),
    )
}

/// `least` on most calls; half of it (not under the lower bound) on every
/// [`EXPLORE_EVERY`]-th.
fn explore(call: usize, least: usize) -> usize {
    if call % EXPLORE_EVERY == 0 {
        (least / 2).max(*LEAST_SPLIT_FLOPS.start())
    } else {
        least
    }
}

/// The flops done at `flops_per_us` in twice `arrival_ns`, within [`LEAST_SPLIT_FLOPS`].
fn split_flops(arrival_ns: usize, flops_per_us: usize) -> usize {
    let flops = 2 * arrival_ns as u128 * flops_per_us as u128 / 1_000;
    flops.clamp(
        *LEAST_SPLIT_FLOPS.start() as u128,
        *LEAST_SPLIT_FLOPS.end() as u128,
    ) as usize
}

/// Folds in how long a split's first helper took to arrive after the offer (or, when none
/// arrived before the caller had claimed every chunk, that time: a lower bound).
pub(super) fn record_arrival(elapsed: Duration) {
    if !MEASURED.load(Ordering::Relaxed) {
        // Relaxed: a report flag. The first measurement replaces the first guess.
        MEASURED.store(true, Ordering::Relaxed);
        ARRIVAL_NS.store(
            elapsed.as_nanos().min(usize::MAX as u128) as usize,
            Ordering::Relaxed,
        );
        return;
    }
    fold(&ARRIVAL_NS, elapsed.as_nanos());
}

/// Folds in the speed of `flops` of chunks of `kind` that took `elapsed` on one thread.
pub(super) fn record_speed(kind: Kind, flops: usize, elapsed: Duration) {
    let micros = elapsed.as_nanos().max(1) as f64 / 1_000.0;
    fold(&FLOPS_PER_US[slot(kind)], (flops as f64 / micros) as u128);
}

/// Folds `measured` into the moving average `at` (weight 1/8).
fn fold(at: &AtomicUsize, measured: u128) {
    let measured = measured.min(usize::MAX as u128) as usize;
    // Relaxed: a lost update between two splits costs nothing.
    at.store(
        averaged(at.load(Ordering::Relaxed), measured),
        Ordering::Relaxed,
    );
}

/// The current estimates, for reports: the helper arrival, whether it was measured, and
/// per kind (products, elementwise) the chunk speed in flops per µs and the threshold.
pub(crate) fn split_estimates() -> (Duration, bool, [(usize, usize); 2]) {
    // Relaxed: a report of heuristics.
    let arrival = ARRIVAL_NS.load(Ordering::Relaxed);
    let per_kind = [Kind::Product, Kind::Elementwise].map(|kind| {
        let speed = FLOPS_PER_US[slot(kind)].load(Ordering::Relaxed);
        (speed, split_flops(arrival, speed))
    });
    (
        Duration::from_nanos(arrival as u64),
        MEASURED.load(Ordering::Relaxed),
        per_kind,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cheap_passes_run_alone_and_expensive_ones_are_shared() {
        // After many passes of 100 ns per node, a 64-node pass (6.4 µs) runs alone.
        let mut per_node = FIRST_GUESS_NS;
        for _ in 0..64 {
            per_node = averaged(per_node, 100);
        }
        assert!((100..200).contains(&per_node), "{per_node}");
        assert!(short(64, per_node));
        assert!(!short(10_000, per_node));
        // Then passes of 5 ms per node (convolutions): a 16-node pass is shared.
        for _ in 0..64 {
            per_node = averaged(per_node, 5_000_000);
        }
        assert!(!short(16, per_node));
        // Before any measurement, a 64-node pass is shared and a 7-node one is not.
        assert!(!short(64, FIRST_GUESS_NS) && short(7, FIRST_GUESS_NS));
    }

    #[test]
    fn a_split_kernel_takes_twice_what_a_helper_takes_to_arrive() {
        // Before any measurement: the kernels' default.
        assert_eq!(
            split_flops(FIRST_ARRIVAL_NS, FIRST_FLOPS_PER_US),
            backflow_kernels::par::DEFAULT_LEAST_SPLIT_FLOPS
        );
        // Helpers taking 30 µs, chunks running at 40 flops/ns: 2.4 Mflop (60 µs of work).
        assert_eq!(split_flops(30_000, 40_000), 2_400_000);
        // Within the bounds whatever was measured.
        assert_eq!(split_flops(1, 1), *LEAST_SPLIT_FLOPS.start());
        assert_eq!(
            split_flops(usize::MAX, usize::MAX),
            *LEAST_SPLIT_FLOPS.end()
        );
    }

    #[test]
    fn one_call_in_sixteen_explores_half_the_threshold() {
        let least = 10_000_000;
        let answers: Vec<usize> = (1..=64).map(|call| explore(call, least)).collect();
        assert_eq!(answers.iter().filter(|&&a| a == least / 2).count(), 4);
        assert_eq!(answers.iter().filter(|&&a| a == least).count(), 60);
        // Never under the lower bound.
        assert_eq!(explore(16, 300_000), *LEAST_SPLIT_FLOPS.start());
    }

    #[test]
    fn measurements_move_the_estimates() {
        // Local averages, as `record_arrival` and `record_speed` fold into the process's.
        let (arrival, speed) = (
            AtomicUsize::new(FIRST_ARRIVAL_NS),
            AtomicUsize::new(FIRST_FLOPS_PER_US),
        );
        for _ in 0..100 {
            fold(&arrival, Duration::from_micros(40).as_nanos());
            fold(&speed, 30_000);
        }
        let (arrival, speed) = (arrival.into_inner(), speed.into_inner());
        assert!((39_000..=40_000).contains(&arrival), "{arrival}");
        assert!((29_000..=30_000).contains(&speed), "{speed}");
        assert!((2_340_000..=2_400_000).contains(&split_flops(arrival, speed)));
    }
}
