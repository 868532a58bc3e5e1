//! The ready queue of one backward pass: where released nodes wait for a thread.
//!
//! It never blocks: sleeping and waking belong to the pass (`parallel.rs`) and to the
//! executor's helpers (`executor.rs`). In production it is crossbeam-deque, one LIFO deque
//! per slot, with stealing (each job is pushed by a thread holding a slot, so no shared
//! injector is needed). Under loom, whose model cannot see inside
//! crossbeam, the same interface is a `Mutex<VecDeque>`, as DESIGN.md prescribes, so the
//! models still cover release, accumulation, hand-off and completion.

#[cfg(not(loom))]
pub(super) use deque::{Local, ReadyQueue};
#[cfg(loom)]
pub(super) use locked::{Local, ReadyQueue};

#[cfg(not(loom))]
mod deque {
    use crossbeam_deque::{Steal, Stealer, Worker};

    /// One slot's own end of the queue, held by whichever thread occupies the slot.
    pub(in crate::exec) struct Local<J> {
        worker: Worker<J>,
        index: usize,
    }

    /// Work-stealing deques, one per slot.
    pub(in crate::exec) struct ReadyQueue<J> {
        stealers: Vec<Stealer<J>>,
    }

    impl<J: Send> ReadyQueue<J> {
        /// A queue with `slots` slots and their local ends.
        pub fn new(slots: usize) -> (Self, Vec<Local<J>>) {
            let locals: Vec<Local<J>> = (0..slots)
                .map(|index| Local {
                    worker: Worker::new_lifo(),
                    index,
                })
                .collect();
            let queue = Self {
                stealers: locals.iter().map(|l| l.worker.stealer()).collect(),
            };
            (queue, locals)
        }

        /// Makes `job` available to every thread of the pass. The caller wakes whoever
        /// should run it.
        pub fn push(&self, local: &Local<J>, job: J) {
            local.worker.push(job);
        }

        /// A job from `local` or another slot; `None` if none was found.
        pub fn find(&self, local: &Local<J>) -> Option<J> {
            if let Some(job) = local.worker.pop() {
                return Some(job);
            }
            loop {
                let mut retry = false;
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

        /// Whether no job is waiting (a snapshot: callers order it with `SeqCst` fences).
        pub fn is_empty(&self) -> bool {
            self.stealers.iter().all(|s| s.is_empty())
        }
    }
}

#[cfg(loom)]
mod locked {
    use crate::sync::Mutex;
    use std::collections::VecDeque;

    /// One slot's own end of the queue (nothing: the model has one shared queue).
    pub(in crate::exec) struct Local<J>(std::marker::PhantomData<J>);

    /// One locked FIFO.
    pub(in crate::exec) struct ReadyQueue<J> {
        jobs: Mutex<VecDeque<J>>,
    }

    impl<J: Send> ReadyQueue<J> {
        /// A queue with `slots` slots and their local ends.
        pub fn new(slots: usize) -> (Self, Vec<Local<J>>) {
            let queue = Self {
                jobs: Mutex::new(VecDeque::new()),
            };
            (
                queue,
                (0..slots).map(|_| Local(Default::default())).collect(),
            )
        }

        /// Makes `job` available to every thread of the pass.
        pub fn push(&self, _local: &Local<J>, job: J) {
            self.jobs.lock().push_back(job);
        }

        /// The oldest job, if any.
        pub fn find(&self, _local: &Local<J>) -> Option<J> {
            self.jobs.lock().pop_front()
        }

        /// Whether no job is waiting.
        pub fn is_empty(&self) -> bool {
            self.jobs.lock().is_empty()
        }
    }
}
