//! Gradient accumulation: the canonical fold and the lock-striped buffers that hold it.
//!
//! A node with several consumers receives one contribution per incoming edge, each tagged
//! with its canonical slot (see [`super::plan`]). In [`Accumulation::Deterministic`] mode the
//! contributions are summed as the left fold `((c0 + c1) + c2) + …` in slot order, whatever
//! order they arrive in: each in-order prefix is folded as soon as it is complete, and only
//! out-of-order arrivals wait, parked. In [`Accumulation::Fast`] mode they are added in arrival
//! order.
//!
//! The state of node `i` lives in stripe `i % stripes`, a cache-padded mutex. Additions never
//! run under the stripe lock: the thread that finds the next contribution(s) foldable marks the
//! node busy, takes the running sum out, adds outside the lock, and puts it back (a combiner).
//! Contributions arriving meanwhile are parked and picked up by that same thread before it
//! lets go. A contribution counts as delivered, for the in-degree counter, once it is folded;
//! so when the counter reaches zero, the sum is final and nobody holds it.

use crate::sync::{CachePadded, Mutex};
use std::collections::BTreeMap;

/// How contributions to a node with several consumers are summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Accumulation {
    /// Sum in canonical slot order: bitwise identical across schedulers, thread counts and runs.
    #[default]
    Deterministic,
    /// Sum in arrival order, in place: no parking, results vary in the last bits.
    Fast,
}

/// A gradient value the executor can sum.
pub trait Gradient: Send + Sized {
    /// Returns `self + later`, where `later` comes after `self` in summation order.
    fn accumulate(self, later: Self) -> Self;
}

/// Adds an optional contribution to an optional running sum (an absent one adds nothing).
fn add<G: Gradient>(acc: Option<G>, c: Option<G>) -> Option<G> {
    match (acc, c) {
        (Some(a), Some(c)) => Some(a.accumulate(c)),
        (a, None) => a,
        (None, c) => c,
    }
}

/// The accumulation state of one node.
pub struct Fold<G> {
    /// Running sum of the contributions folded so far.
    acc: Option<G>,
    /// Next slot to fold (Deterministic mode); in Fast mode, contributions folded so far,
    /// which keys the parked ones in arrival order.
    next: u32,
    /// A thread holds `acc` outside the lock and will fold everything parked before letting go.
    busy: bool,
    /// Arrived but not yet folded, by slot (Deterministic) or arrival order (Fast). Only
    /// contributions that arrive out of turn or while another thread adds are parked.
    parked: BTreeMap<u32, Option<G>>,
}

impl<G> Default for Fold<G> {
    fn default() -> Self {
        Self {
            acc: None,
            next: 0,
            busy: false,
            parked: BTreeMap::new(),
        }
    }
}

/// What a deposit asks its caller to do next, decided under the lock.
enum Step<G> {
    /// Nothing more: the contributions were folded or parked; this call folded `folded`.
    Done { folded: u32 },
    /// Add `c` to `acc` outside the lock, then call [`Fold::resume`]; this call had folded
    /// `folded` before `c`.
    Add {
        acc: Option<G>,
        c: Option<G>,
        folded: u32,
    },
}

impl<G: Gradient> Fold<G> {
    /// Records contribution `c` for `slot` and decides what to fold. In the common case (the
    /// next slot in order, or any slot in `Fast` mode, with nobody folding) it is folded at
    /// once, without being parked.
    fn deposit(&mut self, slot: u32, c: Option<G>, mode: Accumulation) -> Step<G> {
        let in_turn = match mode {
            Accumulation::Fast => true,
            Accumulation::Deterministic => slot == self.next,
        };
        if self.busy || !in_turn {
            // Fast mode keys by arrival, so that parked contributions keep their order.
            let key = match mode {
                Accumulation::Fast => self.next + self.parked.len() as u32,
                Accumulation::Deterministic => slot,
            };
            self.parked.insert(key, c);
            return Step::Done { folded: 0 };
        }
        self.fold_or_hand_out(c, 0)
    }

    /// Folds `c`, the contribution of slot `next`, under the lock when that is a move, and
    /// then whatever parked contributions follow it; hands the first real addition out.
    fn fold_or_hand_out(&mut self, c: Option<G>, folded: u32) -> Step<G> {
        self.next += 1;
        if self.acc.is_none() || c.is_none() {
            // A move, not an addition: cheap enough to do under the lock.
            self.acc = add(self.acc.take(), c);
            return self.take_ready(folded + 1);
        }
        self.busy = true;
        Step::Add {
            acc: self.acc.take(),
            c,
            folded,
        }
    }

    /// Takes the next foldable parked contribution, if any; `folded` were already folded by
    /// the calling thread.
    fn take_ready(&mut self, folded: u32) -> Step<G> {
        match self.parked.remove(&self.next) {
            Some(c) => self.fold_or_hand_out(c, folded),
            None => {
                self.busy = false;
                Step::Done { folded }
            }
        }
    }

    /// Puts back the sum a busy thread computed and looks for more work.
    fn resume(&mut self, acc: Option<G>, folded: u32) -> Step<G> {
        self.acc = acc;
        self.take_ready(folded)
    }
}

/// One stripe: the folds of nodes `s, s + S, s + 2S, …`, at index `i / S`.
type Stripe<G> = CachePadded<Mutex<Vec<Fold<G>>>>;

/// Per-node accumulation state behind a fixed array of cache-padded stripe locks.
pub struct StripedBuffers<G> {
    stripes: Box<[Stripe<G>]>,
    mode: Accumulation,
}

/// Number of stripes; small under loom so that models share stripes and stay tractable.
#[cfg(not(loom))]
pub const STRIPES: usize = 64;
/// Number of stripes; small under loom so that models share stripes and stay tractable.
#[cfg(loom)]
pub const STRIPES: usize = 2;

impl<G: Gradient> StripedBuffers<G> {
    /// Creates empty buffers for `nodes` nodes.
    pub fn new(nodes: usize, mode: Accumulation) -> Self {
        let stripes = STRIPES.min(nodes.max(1));
        let stripes = (0..stripes)
            .map(|s| {
                let count = (nodes + stripes - 1 - s) / stripes;
                CachePadded::new(Mutex::new((0..count).map(|_| Fold::default()).collect()))
            })
            .collect();
        Self { stripes, mode }
    }

    fn locate(&self, node: u32) -> (&Mutex<Vec<Fold<G>>>, usize) {
        let s = self.stripes.len();
        (&self.stripes[node as usize % s], node as usize / s)
    }

    /// Deposits contribution `c` for `slot` of `node`. Returns how many contributions this
    /// call folded (its own and others'), which the caller then subtracts from the node's
    /// in-degree counter. Never adds under the stripe lock.
    pub fn deposit(&self, node: u32, slot: u32, c: Option<G>) -> u32 {
        let (stripe, at) = self.locate(node);
        let mut step = stripe.lock()[at].deposit(slot, c, self.mode);
        loop {
            match step {
                Step::Done { folded } => return folded,
                Step::Add { acc, c, folded } => {
                    // NOTE: the stripe is unlocked here; `busy` keeps other threads off `acc`.
                    let acc = add(acc, c);
                    step = stripe.lock()[at].resume(acc, folded + 1);
                }
            }
        }
    }

    /// Takes the final sum of `node` once its in-degree counter has reached zero.
    pub fn take(&self, node: u32) -> Option<G> {
        let (stripe, at) = self.locate(node);
        let mut guard = stripe.lock();
        let fold = &mut guard[at];
        debug_assert!(!fold.busy && fold.parked.is_empty(), "taken before final");
        fold.acc.take()
    }
}
