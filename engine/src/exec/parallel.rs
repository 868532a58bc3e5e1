//! The concurrent Kahn executor: atomic in-degree counters release ready nodes onto the
//! pass's work-stealing [`ReadyQueue`]; contributions meet in [`StripedBuffers`]. The calling
//! thread owns the pass and runs it; helpers of the process-wide executor join while it has
//! ready work (see `executor.rs`).

use super::budget::Budget;
use super::executor::{self, Pass};
use super::queue::{Local, ReadyQueue};
use super::{
    output_for, panic_message, run_node, seed_slots, ExecError, ExecOptions, Plan, StripedBuffers,
    Task,
};
use crate::sync::{fence, Arc, AtomicBool, AtomicU32, AtomicUsize, Condvar, Mutex, Ordering};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// Longest nap of a waiting owner before it looks again; a safety net under the wake-up
/// protocol, not the mechanism.
const NAP: Duration = Duration::from_millis(1);

/// A released node and its final gradient.
struct Job<G> {
    node: u32,
    grad: Option<G>,
}

/// A worker's end of the queue of jobs.
type JobLocal<T> = Local<Job<<T as Task>::Grad>>;

/// Everything the workers of one backward pass share.
struct Shared<T: Task> {
    plan: Arc<Plan>,
    task: Arc<T>,
    /// Contributions not yet folded, per shared node (see [`Plan::shared_index`]); the
    /// decrement that reaches zero releases the node.
    indegree: Vec<AtomicU32>,
    buffers: StripedBuffers<T::Grad>,
    /// Nodes not yet finished; the decrement that reaches zero closes the queue.
    remaining: AtomicUsize,
    queue: ReadyQueue<Job<T::Grad>>,
    /// Set when the pass ends: every node finished, or one failed. No job runs after it.
    closed: AtomicBool,
    /// The first failure (first error wins).
    error: Mutex<Option<ExecError>>,
    /// Threads that may run jobs at once, the owner included.
    slots: usize,
    /// The pass's threads, those running kernel chunks for it included: a helper joins only
    /// with a unit of it, so nodes and chunks together never use more than `slots`.
    budget: Arc<Budget>,
    /// The queue ends of the helper slots not taken.
    free: Mutex<Vec<JobLocal<T>>>,
    /// Helpers holding a slot.
    joined: AtomicUsize,
    /// Helpers inside [`Pass::help`]; the owner returns only once it is zero after closing.
    active: AtomicUsize,
    /// The pass's registration id (set once, before any job runs).
    id: AtomicUsize,
    /// Whether the owner is a worker of a rayon pool with a thread per slot: then that
    /// pool's threads are asked to help, rather than the executor's.
    rayon: bool,
    /// Jobs queued on that pool that have not started helping yet.
    rayon_pending: AtomicUsize,
    /// The owner announces here that it is about to sleep; read by wakers after a fence.
    owner_sleeping: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

/// Runs `plan` on the calling thread (its owner) with up to `opts.threads - 1` helpers.
pub(super) fn run<T: Task>(
    plan: Arc<Plan>,
    task: Arc<T>,
    seeds: Vec<Option<T::Grad>>,
    opts: &ExecOptions,
) -> Result<(), ExecError> {
    let threads = super::clamp_threads(opts.threads);
    let slots = if runs_alone(&plan) { 1 } else { threads };
    #[cfg(not(loom))]
    let start = std::time::Instant::now();
    #[cfg(not(loom))]
    if slots == 1 {
        // One thread, a graph with nothing to run side by side, or one too short to share:
        // a sequential loop, with no atomics, queue or wake-ups (the same canonical folds,
        // so the same bits). Its kernels may still split over the pass's threads.
        let result = super::budget::scoped(Budget::new(threads), || {
            super::serial::run_stack(&plan, &*task, seeds, opts.accumulation)
        });
        super::cost::record(plan.len(), start.elapsed());
        return result;
    }
    let (queue, mut locals) = ReadyQueue::new(slots);
    let own = locals.remove(0);
    let indegrees = plan.shared_indegrees();
    let shared = Arc::new(Shared {
        indegree: indegrees.iter().map(|&d| AtomicU32::new(d)).collect(),
        buffers: StripedBuffers::new(&indegrees, opts.accumulation),
        remaining: AtomicUsize::new(plan.len()),
        queue,
        closed: AtomicBool::new(false),
        error: Mutex::new(None),
        slots,
        budget: Budget::new(slots),
        free: Mutex::new(locals),
        joined: AtomicUsize::new(0),
        active: AtomicUsize::new(0),
        id: AtomicUsize::new(usize::MAX),
        rayon: slots > 1 && in_rayon_pool(slots),
        rayon_pending: AtomicUsize::new(0),
        owner_sleeping: AtomicBool::new(false),
        lock: Mutex::new(()),
        wake: Condvar::new(),
        plan,
        task,
    });
    let id = (slots > 1).then(|| executor::register(Arc::new(Box::new(Arc::clone(&shared)))));
    if let Some(id) = id {
        // Relaxed: read by this thread, and by helpers that found the pass through the
        // registry's lock (which orders this store before their reads).
        shared.id.store(id, Ordering::Relaxed);
    }
    {
        // Unregisters the pass on the way out; if the owner unwinds (a panic outside the
        // nodes' callbacks, which are caught), it first closes the pass and waits for its
        // helpers, so that none runs a job after `execute` has left.
        let _end = End {
            shared: &shared,
            id,
        };
        #[cfg(not(loom))]
        super::budget::scoped(Arc::clone(&shared.budget), || shared.own(seeds, &own));
        #[cfg(loom)]
        shared.own(seeds, &own);
    }
    #[cfg(not(loom))]
    super::cost::record(shared.plan.len(), start.elapsed());
    let error = shared.error.lock().take();
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Ends a pass when its owner leaves `run`, normally or by unwinding.
struct End<'a, T: Task> {
    shared: &'a Shared<T>,
    id: Option<usize>,
}

impl<T: Task> Drop for End<'_, T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.shared.close();
            // SeqCst: as in `own`, after `closed` is set.
            while self.shared.active.load(Ordering::SeqCst) > 0 {
                crate::sync::yield_now();
            }
        }
        if let Some(id) = self.id {
            executor::unregister(id);
        }
    }
}

impl<T: Task> Pass for Arc<Shared<T>> {
    fn wants_help(&self) -> bool {
        // Relaxed: a snapshot for choosing a pass; `help` re-checks under the real protocol.
        !self.closed.load(Ordering::Relaxed)
            && self.joined.load(Ordering::Relaxed) + 1 < self.slots
            && self.budget.has_room()
            && !self.queue.is_empty()
    }

    #[cfg(not(loom))]
    fn help_from_rayon(&self) {
        // Relaxed: only bounds how many jobs are queued.
        self.rayon_pending.fetch_sub(1, Ordering::Relaxed);
        self.help();
    }

    fn help(&self) {
        // SeqCst: with the owner's store of `closed` then load of `active` (in `own`), either
        // the owner sees this helper and waits for it, or this helper sees the pass closed
        // and runs nothing: no job runs after the owner returns.
        self.active.fetch_add(1, Ordering::SeqCst);
        if !self.closed.load(Ordering::SeqCst) && self.budget.try_join() {
            let local = self.free.lock().pop();
            if let Some(local) = local {
                // Relaxed: only a hint for `wants_help` and `push`.
                self.joined.fetch_add(1, Ordering::Relaxed);
                // Callbacks' panics are caught per node; this catches one outside them (a
                // `Gradient::accumulate` that panics), which would otherwise kill the helper
                // and leave the owner waiting for it. It fails the pass instead.
                let work = || catch_unwind(AssertUnwindSafe(|| self.work_as_helper(&local)));
                #[cfg(not(loom))]
                let worked = super::budget::scoped(Arc::clone(&self.budget), work);
                #[cfg(loom)]
                let worked = work();
                if let Err(payload) = worked {
                    self.fail(ExecError {
                        node: 0,
                        op: "(executor)".to_string(),
                        message: panic_message(payload.as_ref()),
                        panicked: true,
                    });
                }
                self.joined.fetch_sub(1, Ordering::Relaxed);
                self.free.lock().push(local);
            }
            self.budget.leave();
        }
        // SeqCst: pairs with the owner's load of `active` (see above and `wake_owner`).
        self.active.fetch_sub(1, Ordering::SeqCst);
        self.wake_owner();
    }
}

impl<T: Task> Shared<T> {
    /// The owner's part: seed the pass, then run its jobs, sleeping when none is ready,
    /// until it has closed and no helper is left inside it.
    fn own(&self, seeds: Vec<Option<T::Grad>>, local: &JobLocal<T>) {
        let mut outputs = Vec::new();
        // Nodes run by this thread and not yet counted against the pass (see `finished`).
        let mut done = 0;
        let mut next = self.seed(seeds, local);
        if !executor::owner_helps() {
            // Negative control (loom only): hand everything to the helpers.
            if let Some(job) = next.take() {
                self.push(local, job);
            }
        }
        #[cfg(not(loom))]
        let backoff = crossbeam_utils::Backoff::new();
        loop {
            while executor::owner_helps() {
                // Acquire: pairs with the Release side of `close` (its SeqCst store).
                if self.closed.load(Ordering::Acquire) {
                    break;
                }
                let job = match next.take() {
                    Some(job) => job,
                    None => {
                        self.finished(&mut done);
                        match self.queue.find(local) {
                            Some(job) => job,
                            None => break,
                        }
                    }
                };
                next = self.run_job(job, &mut outputs, local);
                done += 1;
                #[cfg(not(loom))]
                backoff.reset();
            }
            self.finished(&mut done);
            // SeqCst: see `help`; the owner reads `closed` before `active`.
            if self.closed.load(Ordering::SeqCst) && self.active.load(Ordering::SeqCst) == 0 {
                return;
            }
            // Before napping, take chunks of a kernel that a helper of this pass split: the
            // owner's unit of the budget would otherwise idle beside it.
            #[cfg(not(loom))]
            if !self.closed.load(Ordering::Acquire) && executor::help_within(&self.budget) {
                backoff.reset();
                continue;
            }
            #[cfg(not(loom))]
            if !backoff.is_completed() {
                backoff.snooze();
                continue;
            }
            let guard = self.lock.lock();
            // SeqCst: announce, fence, look again (Dekker with `wake_owner`): either this look
            // sees the push, close or leave that happened, or its author sees this flag.
            self.owner_sleeping.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let may_sleep = if self.closed.load(Ordering::SeqCst) {
                self.active.load(Ordering::SeqCst) > 0
            } else {
                !executor::owner_helps() || self.queue.is_empty()
            };
            let guard = if may_sleep {
                self.wake.wait_for(guard, NAP)
            } else {
                guard
            };
            // Relaxed: only this thread sets it; a stale `true` costs a waker one lock.
            self.owner_sleeping.store(false, Ordering::Relaxed);
            drop(guard);
            #[cfg(not(loom))]
            backoff.reset();
        }
    }

    /// A helper's part: run jobs while any are found (after a short spin), then return.
    fn work_as_helper(&self, local: &JobLocal<T>) {
        let mut outputs = Vec::new();
        // Nodes run by this thread and not yet counted against the pass (see `finished`).
        let mut done = 0;
        #[cfg(not(loom))]
        let backoff = crossbeam_utils::Backoff::new();
        loop {
            self.finished(&mut done);
            // Acquire: pairs with the Release side of `close` (its SeqCst store).
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            let Some(job) = self.queue.find(local) else {
                #[cfg(not(loom))]
                if !backoff.is_completed() {
                    backoff.snooze();
                    continue;
                }
                return;
            };
            let mut next = Some(job);
            while let Some(job) = next.take() {
                // Acquire: as above; after a failure queued jobs are dropped unrun.
                if self.closed.load(Ordering::Acquire) {
                    return;
                }
                next = self.run_job(job, &mut outputs, local);
                done += 1;
            }
            #[cfg(not(loom))]
            backoff.reset();
        }
    }

    /// Makes `job` available to the pass's threads: wakes the owner if it sleeps, and asks
    /// the executor for a helper if a slot is free.
    fn push(&self, local: &JobLocal<T>, job: Job<T::Grad>) {
        self.queue.push(local, job);
        // SeqCst: pairs with the owner's fence in `own` and the idle helpers' fence in the
        // executor (Dekker): either the sleeper's second look sees this job, or this thread
        // sees the sleeper and wakes it.
        fence(Ordering::SeqCst);
        self.notify_owner();
        // Relaxed: a hint; a missed helper only costs parallelism, never progress.
        let joined = self.joined.load(Ordering::Relaxed);
        if self.slots > 1 && joined + 1 < self.slots {
            if self.rayon {
                self.want_rayon_helper(joined);
            } else {
                executor::want_helper();
            }
        }
    }

    /// Queues a helping job on the owner's rayon pool, unless enough are queued already.
    fn want_rayon_helper(&self, joined: usize) {
        #[cfg(not(loom))]
        {
            // Relaxed: the counter only bounds how many jobs are queued.
            let pending = self.rayon_pending.load(Ordering::Relaxed);
            if joined + pending + 1 < self.slots
                && self
                    .rayon_pending
                    .compare_exchange(pending, pending + 1, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                // Relaxed: see where it is stored.
                executor::rayon_help(self.id.load(Ordering::Relaxed));
            }
        }
        #[cfg(loom)]
        let _ = (joined, &self.rayon_pending);
    }

    /// Fences, then wakes the owner if it announced sleep.
    fn wake_owner(&self) {
        // SeqCst: pairs with the owner's fence in `own` (see there).
        fence(Ordering::SeqCst);
        self.notify_owner();
    }

    /// Wakes the owner if it announced sleep; the caller has issued a `SeqCst` fence.
    fn notify_owner(&self) {
        // SeqCst: read after the caller's fence (Dekker with the owner's announcement).
        if self.owner_sleeping.load(Ordering::SeqCst) {
            let _guard = self.lock.lock();
            self.wake.notify_one();
        }
    }

    /// Ends the pass: no job runs from now on; the owner wakes to wait for its helpers.
    fn close(&self) {
        // SeqCst: part of the handshake in `help`; also publishes (Release) the pass's end.
        self.closed.store(true, Ordering::SeqCst);
        self.wake_owner();
    }
    /// Delivers the seeds; returns the first node they release, pushing the others.
    fn seed(
        &self,
        seeds: Vec<Option<T::Grad>>,
        local: &Local<Job<T::Grad>>,
    ) -> Option<Job<T::Grad>> {
        let mut first = None;
        let slots = seed_slots(&self.plan);
        for ((&node, slot), seed) in self.plan.seeds().iter().zip(slots).zip(seeds) {
            if let Some(job) = self.deliver(node, slot, seed) {
                self.keep_or_push(&mut first, job, local);
            }
        }
        first
    }

    fn keep_or_push(
        &self,
        kept: &mut Option<Job<T::Grad>>,
        job: Job<T::Grad>,
        local: &Local<Job<T::Grad>>,
    ) {
        if kept.is_none() {
            *kept = Some(job);
        } else {
            self.push(local, job);
        }
    }

    /// Runs one released node and delivers its contributions; returns one released
    /// successor for this thread to run next.
    fn run_job(
        &self,
        job: Job<T::Grad>,
        outputs: &mut Vec<Option<T::Grad>>,
        local: &Local<Job<T::Grad>>,
    ) -> Option<Job<T::Grad>> {
        if let Err(e) = run_node(&*self.task, job.node, job.grad, outputs) {
            self.fail(e);
            return None;
        }
        let mut kept = None;
        for edge in self.plan.edges(job.node) {
            let c = output_for(outputs, edge);
            if let Some(ready) = self.deliver(edge.target, edge.slot, c) {
                self.keep_or_push(&mut kept, ready, local);
            }
        }
        kept
    }

    /// Counts `done` finished nodes against the pass; the count that reaches zero closes it.
    /// Each thread counts the nodes it runs locally and calls this before it looks for work
    /// elsewhere, sleeps or leaves (so that a thread with nothing to run never holds an
    /// uncounted node), which spares a shared atomic per node.
    fn finished(&self, done: &mut usize) {
        if *done == 0 {
            return;
        }
        let n = std::mem::take(done);
        // AcqRel: the last finisher must see every other thread's deliveries before it
        // closes the pass (pairs with the other threads' Release here).
        if self.remaining.fetch_sub(n, Ordering::AcqRel) == n {
            self.close();
        }
    }

    /// Delivers contribution `c` to `slot` of `target`; returns the job if this released it.
    fn deliver(&self, target: u32, slot: u32, c: Option<T::Grad>) -> Option<Job<T::Grad>> {
        let Some(shared) = self.plan.shared_index(target) else {
            // The only contribution: no buffer, no counter, straight to a job.
            return Some(Job {
                node: target,
                grad: c,
            });
        };
        let folded = self.buffers.deposit(shared, slot, c);
        if folded == 0 {
            return None;
        }
        // AcqRel: Release publishes this thread's folds; the Acquire in the thread whose
        // decrement reaches zero pairs with every earlier Release decrement, so that thread
        // sees all contributions folded before it takes the sum.
        // NOTE: once the counter hits zero, only this thread may take the node.
        let before = self.indegree[shared as usize].fetch_sub(folded, Ordering::AcqRel);
        debug_assert!(before >= folded, "node {target} over-released");
        (before == folded).then(|| Job {
            node: target,
            grad: self.buffers.take(shared),
        })
    }

    /// Records the first failure and stops the pass.
    fn fail(&self, e: ExecError) {
        {
            let mut first = self.error.lock();
            if first.is_none() {
                *first = Some(e);
            }
        }
        self.close();
    }
}

/// Whether the plan runs on the calling thread alone: one chain (no node with two
/// successors or two contributions, where threads could only take turns), or a pass
/// estimated too short to share (see `cost.rs`). Never under loom, whose models run every
/// plan on the helpers.
fn runs_alone(plan: &Plan) -> bool {
    #[cfg(not(loom))]
    {
        plan.is_chain() || super::cost::too_small_to_share(plan.len())
    }
    #[cfg(loom)]
    {
        let _ = plan;
        false
    }
}

/// Whether the calling thread is a worker of a rayon pool with at least `slots` threads.
fn in_rayon_pool(slots: usize) -> bool {
    #[cfg(not(loom))]
    {
        rayon::current_thread_index().is_some() && rayon::current_num_threads() >= slots
    }
    #[cfg(loom)]
    {
        let _ = slots;
        false
    }
}
