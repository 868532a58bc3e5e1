//! The ready queue that workers take released nodes from.
//!
//! In production: crossbeam-deque, one LIFO deque per worker plus a shared injector, with
//! stealing; idle workers sleep on a condition variable. Under loom, whose model cannot see
//! inside crossbeam, the same interface is a `Mutex<VecDeque>` with a `Condvar`, as
//! DESIGN.md prescribes, so the models still cover release, accumulation and completion.

#[cfg(not(loom))]
use crate::sync::{fence, AtomicUsize};
use crate::sync::{AtomicBool, Condvar, Mutex, Ordering};
use std::time::Duration;

/// Longest nap of an idle worker before it looks again; a safety net under the wake-up
/// protocol, not the mechanism.
const NAP: Duration = Duration::from_millis(1);

#[cfg(not(loom))]
pub(super) use deque::{Local, ReadyQueue};
#[cfg(loom)]
pub(super) use locked::{Local, ReadyQueue};

#[cfg(not(loom))]
mod deque {
    use super::*;
    use crossbeam_deque::{Injector, Steal, Stealer, Worker};

    /// A worker's own end of the queue.
    pub(in crate::exec) struct Local<J> {
        worker: Worker<J>,
        index: usize,
    }

    /// Work-stealing deques with sleeping idle workers.
    pub(in crate::exec) struct ReadyQueue<J> {
        injector: Injector<J>,
        stealers: Vec<Stealer<J>>,
        closed: AtomicBool,
        /// Workers between announcing sleep and waking; read by pushers after a SeqCst fence.
        sleepers: AtomicUsize,
        lock: Mutex<()>,
        wake: Condvar,
    }

    impl<J: Send> ReadyQueue<J> {
        /// A queue for `workers` workers and their local ends.
        pub fn new(workers: usize) -> (Self, Vec<Local<J>>) {
            let locals: Vec<Local<J>> = (0..workers)
                .map(|index| Local {
                    worker: Worker::new_lifo(),
                    index,
                })
                .collect();
            let queue = Self {
                injector: Injector::new(),
                stealers: locals.iter().map(|l| l.worker.stealer()).collect(),
                closed: AtomicBool::new(false),
                sleepers: AtomicUsize::new(0),
                lock: Mutex::new(()),
                wake: Condvar::new(),
            };
            (queue, locals)
        }

        /// Makes `job` available to every worker.
        pub fn push(&self, local: &Local<J>, job: J) {
            local.worker.push(job);
            // SeqCst: pairs with the fence in pop() (Dekker): either the sleeper sees the job,
            // or this thread sees the sleeper and wakes it.
            fence(Ordering::SeqCst);
            if self.sleepers.load(Ordering::SeqCst) > 0 {
                let _guard = self.lock.lock();
                self.wake.notify_one();
            }
        }

        fn find(&self, local: &Local<J>) -> Option<J> {
            if let Some(job) = local.worker.pop() {
                return Some(job);
            }
            loop {
                let mut retry = false;
                match self.injector.steal_batch_and_pop(&local.worker) {
                    Steal::Success(job) => return Some(job),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
                let n = self.stealers.len();
                for k in 1..n {
                    match self.stealers[(local.index + k) % n].steal() {
                        Steal::Success(job) => return Some(job),
                        Steal::Retry => retry = true,
                        Steal::Empty => {}
                    }
                }
                if !retry {
                    return None;
                }
            }
        }

        /// The next job, waiting while there is none; `None` once the queue is closed.
        pub fn pop(&self, local: &Local<J>) -> Option<J> {
            let backoff = crossbeam_utils::Backoff::new();
            loop {
                if self.closed.load(Ordering::Acquire) {
                    return None;
                }
                if let Some(job) = self.find(local) {
                    return Some(job);
                }
                if !backoff.is_completed() {
                    backoff.snooze();
                    continue;
                }
                let guard = self.lock.lock();
                self.sleepers.fetch_add(1, Ordering::SeqCst);
                // SeqCst: pairs with the fence in push().
                fence(Ordering::SeqCst);
                let idle = !self.closed.load(Ordering::Acquire)
                    && self.injector.is_empty()
                    && self.stealers.iter().all(|s| s.is_empty());
                let guard = if idle {
                    self.wake.wait_for(guard, NAP)
                } else {
                    guard
                };
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
                drop(guard);
                backoff.reset();
            }
        }

        /// Wakes every worker and makes `pop` return `None` from now on.
        pub fn close(&self) {
            self.closed.store(true, Ordering::Release);
            let _guard = self.lock.lock();
            self.wake.notify_all();
        }
    }
}

#[cfg(loom)]
mod locked {
    use super::*;
    use std::collections::VecDeque;

    /// A worker's own end of the queue (nothing: the model has one shared queue).
    pub(in crate::exec) struct Local<J>(std::marker::PhantomData<J>);

    /// One locked FIFO with a condition variable.
    pub(in crate::exec) struct ReadyQueue<J> {
        jobs: Mutex<VecDeque<J>>,
        closed: AtomicBool,
        wake: Condvar,
    }

    impl<J: Send> ReadyQueue<J> {
        /// A queue for `workers` workers and their local ends.
        pub fn new(workers: usize) -> (Self, Vec<Local<J>>) {
            let queue = Self {
                jobs: Mutex::new(VecDeque::new()),
                closed: AtomicBool::new(false),
                wake: Condvar::new(),
            };
            (
                queue,
                (0..workers).map(|_| Local(Default::default())).collect(),
            )
        }

        /// Makes `job` available to every worker.
        pub fn push(&self, _local: &Local<J>, job: J) {
            self.jobs.lock().push_back(job);
            self.wake.notify_one();
        }

        /// The next job, waiting while there is none; `None` once the queue is closed.
        pub fn pop(&self, _local: &Local<J>) -> Option<J> {
            let mut jobs = self.jobs.lock();
            loop {
                if self.closed.load(Ordering::Acquire) {
                    return None;
                }
                if let Some(job) = jobs.pop_front() {
                    return Some(job);
                }
                jobs = self.wake.wait_for(jobs, NAP);
            }
        }

        /// Wakes every worker and makes `pop` return `None` from now on.
        pub fn close(&self) {
            let _jobs = self.jobs.lock();
            self.closed.store(true, Ordering::Release);
            self.wake.notify_all();
        }
    }
}
