//! The concurrent Kahn executor: atomic in-degree counters release ready nodes onto the
//! work-stealing [`ReadyQueue`]; contributions meet in [`StripedBuffers`].

use super::queue::{Local, ReadyQueue};
use super::{
    output_for, pool, run_node, seed_slots, ExecError, ExecOptions, Gradient, Plan, StripedBuffers,
    Task,
};
use crate::sync::{Arc, AtomicBool, AtomicU32, AtomicUsize, Mutex, Ordering};

/// Plans smaller than this run on the calling thread alone: waking helpers costs more than
/// such a graph's whole backward pass.
#[cfg(not(loom))]
const INLINE_BELOW: usize = 64;
/// Under loom every (non-empty) plan uses the helpers, so the models exercise them.
#[cfg(loom)]
const INLINE_BELOW: usize = 1;

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
    /// Set by the first failure; workers then stop running nodes.
    failed: AtomicBool,
    /// The first failure (first error wins).
    error: Mutex<Option<ExecError>>,
    /// Each worker's end of the queue, taken by that worker when it starts.
    locals: Mutex<Vec<Option<JobLocal<T>>>>,
}

/// Runs `plan` with `opts.threads` workers, the calling thread among them.
pub(super) fn run<T: Task>(
    plan: Arc<Plan>,
    task: Arc<T>,
    seeds: Vec<Option<T::Grad>>,
    opts: &ExecOptions,
) -> Result<(), ExecError> {
    let workers = if plan.len() < INLINE_BELOW {
        1
    } else {
        opts.threads.max(1)
    };
    let (queue, locals) = ReadyQueue::new(workers);
    let shared = Arc::new(Shared {
        indegree: (0..plan.len() as u32)
            .filter(|&i| plan.shared_index(i).is_some())
            .map(|i| AtomicU32::new(plan.indegree(i)))
            .collect(),
        buffers: StripedBuffers::new(plan.shared_count(), opts.accumulation),
        remaining: AtomicUsize::new(plan.len()),
        queue,
        failed: AtomicBool::new(false),
        error: Mutex::new(None),
        locals: Mutex::new(locals.into_iter().map(Some).collect()),
        plan,
        task,
    });
    let seeded = Mutex::new(Some(seeds));
    let work = {
        let shared = Arc::clone(&shared);
        Arc::new(move |i: usize| {
            let local = shared.locals.lock()[i]
                .take()
                .expect("one worker per local");
            let first = if i == 0 {
                let seeds = seeded.lock().take().unwrap_or_default();
                shared.seed(seeds, &local)
            } else {
                None
            };
            shared.work(first, &local);
        })
    };
    pool::run_workers(workers, work);
    let error = shared.error.lock().take();
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

impl<T: Task> Shared<T> {
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
            self.queue.push(local, job);
        }
    }

    /// The worker loop: run the kept successor, else take from the queue, until closed.
    fn work(&self, mut next: Option<Job<T::Grad>>, local: &Local<Job<T::Grad>>) {
        let mut outputs = Vec::new();
        loop {
            let job = match next.take() {
                Some(job) => job,
                None => match self.queue.pop(local) {
                    Some(job) => job,
                    None => return,
                },
            };
            if self.failed.load(Ordering::Acquire) {
                // Drain: a failure stopped the pass; the job is dropped unrun.
                return;
            }
            next = self.run_job(job, &mut outputs, local);
        }
    }

    /// Runs one released node and delivers its contributions; returns one released
    /// successor for this worker to run next.
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
        // AcqRel: the last finisher must see every other worker's deliveries before it
        // closes the queue (pairs with the other workers' Release here).
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.queue.close();
        }
        kept
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
        self.failed.store(true, Ordering::Release);
        self.queue.close();
    }
}

// The gradient type must cross threads inside jobs.
#[allow(dead_code)]
fn assert_send<G: Gradient>() {}
