//! Splits: a kernel's chunks (or a forward map's items) offered to the executor's idle
//! helpers, within the caller's thread [`Budget`].
//!
//! The caller registers the split with the executor as one more thing helpers may join,
//! wakes one, and then claims chunks itself from an atomic counter, in order, until none is
//! left. A helper that joins (holding a unit of the budget) claims from the same counter. So
//! no chunk waits for a thread that has not started it: when no helper comes, the caller
//! runs every chunk itself, in order. Once every chunk is claimed, the caller waits only
//! for the chunks other threads are running, spinning briefly, then sleeping on a
//! condition variable that the thread finishing the last chunk notifies. A chunk that
//! splits again makes its thread the caller of the inner split, which ends by the same
//! argument, so nesting cannot deadlock. A chunk that panics is caught where it runs; the
//! caller resumes the first panic once every chunk has finished.
//!
//! Each split also measures what the cost model ([`cost`](super::cost)) decides splits by: how
//! long the first helper took to arrive after the offer, and how fast the caller's chunks
//! ran.

use super::budget::Budget;
use super::executor::{self, Pass};
use crate::sync::{fence, Arc, AtomicUsize, Condvar, Mutex, Ordering};
use backflow_kernels::par::Work;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// Longest sleep of a waiting caller before it looks again: a safety net under the
/// notification of the last chunk's thread.
const NAP: Duration = Duration::from_millis(1);

/// A chunk function whose borrow the caller keeps alive until every chunk has run.
type ChunkFn = &'static (dyn Fn(usize) + Sync);

/// One split kernel (or map) in flight.
struct Split {
    /// The chunk function; called only for an index claimed below `chunks` (see `run`).
    f: ChunkFn,
    chunks: usize,
    /// The next chunk to claim; values at or past `chunks` claim nothing.
    next: AtomicUsize,
    /// Chunks finished (run, or panicked); reaches `chunks` exactly once.
    done: AtomicUsize,
    /// The threads that may work on this split: the caller's budget.
    budget: Arc<Budget>,
    /// The first panic of a chunk, resumed by the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// When the split was offered to the helpers.
    #[cfg(not(loom))]
    offered: std::time::Instant,
    /// Nanoseconds from the offer to the first helper's join; `usize::MAX` until one joins.
    #[cfg(not(loom))]
    arrived_ns: AtomicUsize,
    lock: Mutex<()>,
    finished: Condvar,
}

/// Calls `f(i)` once for each `i` in `0..chunks` (`work` together, 0 flops when
/// unknown), on the calling thread and on idle helpers of the executor, at most as many
/// threads at once as `budget` allows; returns once every call has returned (resuming the
/// first panic, if any).
pub(crate) fn run(budget: &Arc<Budget>, chunks: usize, work: Work, f: &(dyn Fn(usize) + Sync)) {
    if chunks <= 1 || budget.is_one() {
        (0..chunks).for_each(f);
        return;
    }
    // SAFETY: only the lifetime is erased; the pointer stays valid while it is used:
    // - `f` is called only by a thread that claimed an index below `chunks` from `next`;
    // - this function returns (or unwinds) only after `wait` has seen `done == chunks`,
    //   which counts every claimed index's call as finished (panics included, caught in
    //   `work`), and every later claim gets an index at or past `chunks`;
    // - so no call of `f` starts or runs after the borrow ends, though a helper may still
    //   hold the `Split` (never calling `f`) for a moment.
    let f: ChunkFn = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), ChunkFn>(f) };
    let split = Arc::new(Split {
        f,
        chunks,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        budget: Arc::clone(budget),
        panic: Mutex::new(None),
        lock: Mutex::new(()),
        finished: Condvar::new(),
        #[cfg(not(loom))]
        offered: std::time::Instant::now(),
        #[cfg(not(loom))]
        arrived_ns: AtomicUsize::new(usize::MAX),
    });
    // Registered even when the budget is full: a thread of it that falls idle (the owner of
    // the pass this kernel runs in) may still take chunks.
    let id = executor::register(Arc::new(Box::new(Arc::clone(&split))));
    let mut woke = false;
    if budget.has_room() {
        // SeqCst: `want_helper` expects the offer published, then a fence (see there).
        fence(Ordering::SeqCst);
        woke = executor::want_helper();
    }
    #[cfg(not(loom))]
    split.work_measured(work, woke);
    #[cfg(loom)]
    let _ = (split.work(), work, woke);
    if executor::split_waits() {
        split.wait();
    }
    executor::unregister(id);
    let panic = split.panic.lock().take();
    if let Some(payload) = panic {
        std::panic::resume_unwind(payload);
    }
}

impl Split {
    /// Claims and runs chunks until none is left; returns how many this thread ran.
    fn work(&self) -> usize {
        let mut ran = 0;
        loop {
            // Relaxed: the counter only hands out indices; `f` and its data were published
            // to this thread by the registry's lock (helpers) or are its own (the caller).
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.chunks {
                return ran;
            }
            ran += 1;
            let f = self.f;
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(i))) {
                let mut first = self.panic.lock();
                if first.is_none() {
                    *first = Some(payload);
                }
            }
            // AcqRel: Release publishes this chunk's writes to the caller's Acquire in
            // `wait`; the last finisher then notifies under the lock.
            if self.done.fetch_add(1, Ordering::AcqRel) + 1 == self.chunks {
                let _guard = self.lock.lock();
                self.finished.notify_one();
            }
        }
    }

    /// The caller's [`work`](Self::work), measured for the cost model: the speed of its
    /// chunks (when their flops are known), and when the first helper arrived, or, if none did
    /// before every chunk was claimed, that time as a lower bound (recorded only when a
    /// helper was on its way (`woke`) or came anyway: a busy pool says nothing of arrivals).
    #[cfg(not(loom))]
    fn work_measured(&self, Work { flops, kind }: Work, woke: bool) {
        let start = std::time::Instant::now();
        let ran = self.work();
        let claimed = self.offered.elapsed();
        if ran > 0 && flops > 0 {
            super::cost::record_speed(kind, flops / self.chunks * ran, start.elapsed());
        }
        // Relaxed: a measurement; the value is whatever a helper stored, or none.
        let arrived = self.arrived_ns.load(Ordering::Relaxed);
        if arrived != usize::MAX {
            super::cost::record_arrival(claimed.min(Duration::from_nanos(arrived as u64)));
        } else if woke {
            super::cost::record_arrival(claimed);
        }
    }

    /// Notes, once, how long after the offer the first helper joined.
    #[cfg(not(loom))]
    fn note_arrival(&self) {
        let ns = self
            .offered
            .elapsed()
            .as_nanos()
            .min(usize::MAX as u128 - 1) as usize;
        // Relaxed: a measurement (see `work_measured`); only the first join is kept.
        let _ =
            self.arrived_ns
                .compare_exchange(usize::MAX, ns, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Waits until every chunk has finished (all are claimed by now).
    fn wait(&self) {
        #[cfg(not(loom))]
        let backoff = crossbeam_utils::Backoff::new();
        // Acquire: pairs with the Release of each chunk's `done` increment.
        while self.done.load(Ordering::Acquire) < self.chunks {
            #[cfg(not(loom))]
            if !backoff.is_completed() {
                backoff.snooze();
                continue;
            }
            let guard = self.lock.lock();
            // Under the lock: the last finisher increments, then locks to notify, so either
            // this look sees its increment or the notification finds this thread waiting.
            if self.done.load(Ordering::Acquire) < self.chunks {
                drop(self.finished.wait_for(guard, NAP));
            }
        }
    }

    /// Whether a chunk is left to claim and the budget has room (a snapshot).
    fn wants_more(&self) -> bool {
        // Relaxed: a hint for choosing work; `work` re-claims through the counter.
        self.next.load(Ordering::Relaxed) < self.chunks && self.budget.has_room()
    }
}

impl Pass for Arc<Split> {
    fn wants_help(&self) -> bool {
        self.wants_more()
    }

    fn help(&self) {
        if !self.budget.try_join() {
            return;
        }
        #[cfg(not(loom))]
        self.note_arrival();
        if self.wants_more() {
            // SeqCst: as before the caller's `want_helper`.
            fence(Ordering::SeqCst);
            executor::want_helper();
        }
        #[cfg(not(loom))]
        super::budget::scoped(Arc::clone(&self.budget), || self.work());
        #[cfg(loom)]
        let _ = self.work();
        self.budget.leave();
    }

    #[cfg(not(loom))]
    fn help_from_rayon(&self) {
        self.help();
    }

    #[cfg(not(loom))]
    fn offers_to(&self, budget: &Budget) -> bool {
        // Relaxed: a hint, as in `wants_more`.
        std::ptr::eq(&*self.budget, budget) && self.next.load(Ordering::Relaxed) < self.chunks
    }

    #[cfg(not(loom))]
    fn help_within(&self) {
        // The caller holds a unit of this budget already: no join.
        #[cfg(not(loom))]
        self.note_arrival();
        self.work();
    }
}
