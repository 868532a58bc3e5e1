//! Thread budgets: how many threads may work at once for one backward pass, or for the
//! forward work of one caller, counting the threads that run its kernel chunks.
//!
//! A pass's owner (or a [`with_threads`] caller) holds one unit of its budget; every helper
//! that joins the pass, and every helper that takes chunks of a kernel split inside it (or a
//! [`parallel_map`](crate::exec::for_each) item), holds one more while it works. A thread
//! that works for a budget makes it its *current* budget, so the kernels it runs split
//! within the same bound: a pass at `threads(n)` never has more than `n` threads working
//! for it, nodes and chunks together.

use crate::sync::{Arc, AtomicUsize, Ordering};

/// A bound on the threads working together, and how many do now.
#[derive(Debug)]
pub(crate) struct Budget {
    /// The most threads that may work for this budget at once, its creator included.
    limit: usize,
    /// Threads working for it now; starts at 1 (the creator), never exceeds `limit`.
    busy: AtomicUsize,
}

impl Budget {
    /// A budget of `limit` threads (at least 1), one of which (the caller) is busy.
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit: limit.max(1),
            busy: AtomicUsize::new(1),
        })
    }

    /// Whether it allows one thread only (then nothing splits).
    pub(crate) fn is_one(&self) -> bool {
        self.limit == 1
    }

    /// Whether another thread may join now (a snapshot).
    pub(crate) fn has_room(&self) -> bool {
        // Relaxed: a hint; `try_join` decides.
        self.busy.load(Ordering::Relaxed) < self.limit
    }

    /// Takes a unit for the calling thread if one is free; pair with [`leave`](Self::leave).
    pub(crate) fn try_join(&self) -> bool {
        // Relaxed: the count bounds threads; it publishes no data.
        let mut busy = self.busy.load(Ordering::Relaxed);
        while busy < self.limit {
            match self.busy.compare_exchange_weak(
                busy,
                busy + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => busy = now,
            }
        }
        false
    }

    /// Gives back the unit taken by [`try_join`](Self::try_join).
    pub(crate) fn leave(&self) {
        // Relaxed: as in `try_join`.
        self.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(not(loom))]
pub use current::with_threads;
#[cfg(not(loom))]
pub(crate) use current::{current, scoped};

/// The calling thread's current budget (a thread-local: not under loom, whose threads share
/// one OS thread; the models pass budgets explicitly).
#[cfg(not(loom))]
mod current {
    use super::Budget;
    use crate::sync::Arc;
    use std::cell::RefCell;

    thread_local! {
        /// The budget this thread works for now; `None` outside any (then a fresh one of
        /// every core is used).
        static CURRENT: RefCell<Option<Arc<Budget>>> = const { RefCell::new(None) };
    }

    /// The calling thread's budget: the one it works for, or (outside any) a budget of every
    /// core for this call alone.
    pub(crate) fn current() -> Arc<Budget> {
        CURRENT
            .with(|c| c.borrow().clone())
            .unwrap_or_else(|| Budget::new(crate::exec::clamp_threads(0)))
    }

    /// Runs `f` with `budget` as the calling thread's current budget, restoring the previous
    /// one afterwards (also when `f` unwinds).
    pub(crate) fn scoped<R>(budget: Arc<Budget>, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Arc<Budget>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = previous);
            }
        }
        let previous = CURRENT.with(|c| c.borrow_mut().replace(budget));
        let _restore = Restore(previous);
        f()
    }

    /// Runs `f` with at most `threads` threads (the caller included; 0 means every core,
    /// at most [`max_threads`](crate::exec::max_threads)) working for the forward work and
    /// split kernels it starts on this thread: what `BackwardOptions::threads` is to a
    /// backward pass. With 1, every kernel and `parallel_map` runs whole, in order, on the
    /// calling thread. A backward pass started inside is bounded by its own options.
    ///
    /// ```
    /// use backflow::{with_threads, Tensor};
    /// let a = Tensor::<f32>::ones(&[64, 64]);
    /// let y = with_threads(1, || a.matmul(&a)).unwrap();
    /// assert_eq!(y.to_vec()[0], 64.0);
    /// ```
    pub fn with_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
        crate::exec::install_runner();
        scoped(Budget::new(crate::exec::clamp_threads(threads)), f)
    }
}
