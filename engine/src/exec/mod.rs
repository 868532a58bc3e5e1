//! The generic backward executor: schedules nodes that expose their successors and a backward
//! callback over any [`Gradient`] type. It knows nothing of tensors, which keeps the loom
//! models small and lets users drive their own graph types through it.
//!
//! See `README.md` beside this file for the algorithm.

pub mod accumulate;
mod budget;
#[cfg(not(loom))]
mod cost;
mod executor;
mod fold_tree;
mod parallel;
pub mod plan;
mod queue;
mod serial;
mod split;
#[cfg(test)]
mod tests;

pub use accumulate::{canonical_sum, Accumulation, Gradient, StripedBuffers, BLOCK};
#[cfg(not(loom))]
pub use budget::with_threads;
pub use executor::max_threads;
#[cfg(loom)]
pub use executor::{set_owner_helps, set_poll_decrement_late, set_split_waits, shutdown};
pub use plan::{Edge, Plan};

use crate::sync::Arc;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Which algorithm orders the backward pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Scheduler {
    /// Reverse post-order of an iterative depth-first search, on the calling thread.
    Dfs,
    /// Sequential Kahn: in-degree counts and a FIFO ready queue, on the calling thread.
    Kahn,
    /// Concurrent Kahn: atomic in-degrees release ready nodes onto a work-stealing pool.
    #[default]
    Parallel,
}

impl Scheduler {
    /// Every scheduler, for differential tests.
    pub const ALL: [Scheduler; 3] = [Scheduler::Dfs, Scheduler::Kahn, Scheduler::Parallel];

    /// Lower-case name, as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Dfs => "dfs",
            Scheduler::Kahn => "kahn",
            Scheduler::Parallel => "parallel",
        }
    }
}

impl std::str::FromStr for Scheduler {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "dfs" => Ok(Scheduler::Dfs),
            "kahn" => Ok(Scheduler::Kahn),
            "parallel" => Ok(Scheduler::Parallel),
            other => Err(format!(
                "unknown scheduler `{other}`: expected dfs, kahn or parallel"
            )),
        }
    }
}

/// The work a plan's nodes do: the backward callback of each node.
pub trait Task: Send + Sync + 'static {
    /// The gradient type flowing along edges.
    type Grad: Gradient;

    /// Runs node `node` on its accumulated gradient (`None` when no contribution carried a
    /// value) and pushes one optional contribution per successor, in successor order.
    fn run(
        &self,
        node: u32,
        grad: Option<Self::Grad>,
        outputs: &mut Vec<Option<Self::Grad>>,
    ) -> Result<(), String>;

    /// A short name for `node` (its op), used in errors.
    fn describe(&self, node: u32) -> String;
}

/// A backward callback failed or panicked; the pass stopped and drained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecError {
    /// Dense index of the failing node.
    pub node: u32,
    /// What [`Task::describe`] says of it.
    pub op: String,
    /// The error message, or the panic payload.
    pub message: String,
    /// Whether the callback panicked (as opposed to returning `Err`).
    pub panicked: bool,
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = if self.panicked { "panicked" } else { "failed" };
        write!(
            f,
            "backward of `{}` (node {}) {how}: {}",
            self.op, self.node, self.message
        )
    }
}

impl std::error::Error for ExecError {}

/// How to run one backward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecOptions {
    /// The scheduling algorithm.
    pub scheduler: Scheduler,
    /// Threads for [`Scheduler::Parallel`], the caller included: 0 means every core
    /// ([`default_threads`]); more than [`max_threads`] means [`max_threads`].
    pub threads: usize,
    /// How contributions are summed.
    pub accumulation: Accumulation,
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            scheduler: Scheduler::default(),
            threads: default_threads(),
            accumulation: Accumulation::default(),
        }
    }
}

/// The number of cores available to this process.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The thread count a pass really uses for a requested `threads`: 0 means every core, and
/// no pass uses more than [`max_threads`].
pub fn clamp_threads(threads: usize) -> usize {
    let threads = if threads == 0 {
        default_threads()
    } else {
        threads
    };
    threads.min(max_threads())
}

/// Runs the backward pass of `plan`: seed `j` is the gradient given for `plan.seeds()[j]`.
///
/// Every node runs at most once, after all of its contributions have been summed. On the
/// first failure the remaining nodes are drained without running and the error returned.
pub fn execute<T: Task>(
    plan: Arc<Plan>,
    task: Arc<T>,
    seeds: Vec<Option<T::Grad>>,
    opts: &ExecOptions,
) -> Result<(), ExecError> {
    assert_eq!(
        seeds.len(),
        plan.seeds().len(),
        "execute: one seed per plan seed"
    );
    if plan.is_empty() {
        return Ok(());
    }
    #[cfg(not(loom))]
    install_runner();
    match opts.scheduler {
        Scheduler::Dfs => whole(|| serial::run_dfs(&plan, &*task, seeds, opts.accumulation)),
        Scheduler::Kahn => whole(|| serial::run_kahn(&plan, &*task, seeds, opts.accumulation)),
        Scheduler::Parallel => parallel::run(plan, task, seeds, opts),
    }
}

/// Runs `f` with a budget of one thread: every kernel it runs stays whole on this thread.
fn whole<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(not(loom))]
    {
        budget::scoped(budget::Budget::new(1), f)
    }
    #[cfg(loom)]
    {
        f()
    }
}

/// Runs one node's callback, turning a panic into an [`ExecError`].
fn run_node<T: Task>(
    task: &T,
    node: u32,
    grad: Option<T::Grad>,
    outputs: &mut Vec<Option<T::Grad>>,
) -> Result<(), ExecError> {
    outputs.clear();
    let result = catch_unwind(AssertUnwindSafe(|| task.run(node, grad, outputs)));
    let (message, panicked) = match result {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(message)) => (message, false),
        Err(payload) => (panic_message(payload.as_ref()), true),
    };
    Err(ExecError {
        node,
        op: task.describe(node),
        message,
        panicked,
    })
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// The contribution a node's callback produced for `edge`, if any.
fn output_for<G>(outputs: &mut [Option<G>], edge: &Edge) -> Option<G> {
    outputs
        .get_mut(edge.position as usize)
        .and_then(Option::take)
}

/// The slot each seed fills at its node: seeds of one node take slots 0, 1, … in order.
fn seed_slots(plan: &Plan) -> Vec<u32> {
    let mut count = vec![0u32; plan.len()];
    plan.seeds()
        .iter()
        .map(|&s| {
            let slot = count[s as usize];
            count[s as usize] += 1;
            slot
        })
        .collect()
}

/// Calls `f(i)` once for each `i` in `0..n`, on the calling thread and on idle threads of
/// the executor (as many as the caller's budget allows: [`with_threads`], or the backward
/// pass it runs in); returns once every call has returned. With no idle thread the calls
/// run in order on the calling thread. A panic in a call is resumed here once all have
/// finished. This is what split kernels and `backflow::parallel_map` run on.
///
/// ```
/// use backflow::parallel_for;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// let sum = AtomicUsize::new(0);
/// parallel_for(10, &|i| {
///     sum.fetch_add(i, Ordering::Relaxed);
/// });
/// assert_eq!(sum.into_inner(), 45);
/// ```
#[cfg(not(loom))]
pub fn parallel_for(n: usize, f: &(dyn Fn(usize) + Sync)) {
    install_runner();
    split::run(&budget::current(), n, NO_WORK, f);
}

/// [`parallel_for`] with an explicit number of threads, for the loom models (which cannot use
/// the thread-local budget): `threads` counts the caller.
#[cfg(loom)]
pub fn parallel_for_on(threads: usize, n: usize, f: &(dyn Fn(usize) + Sync)) {
    split::run(&budget::Budget::new(threads), n, NO_WORK, f);
}

/// What the executor has learnt about splitting kernels, from the splits this process ran:
/// a kernel splits only from [`least_split_flops`](Self::least_split_flops) on (for its
/// kind), the work of twice the time a helper takes to join, so a small kernel never waits
/// for a helper that would arrive too late to shorten it. (One call in 16 tries half the
/// threshold, so that the estimates keep being measured; above 40 Mflop a kernel always
/// splits.)
///
/// ```
/// use backflow::{split_estimate, Tensor};
/// let a = Tensor::<f32>::ones(&[256, 256]);
/// let _ = a.matmul(&a).unwrap();
/// let e = split_estimate();
/// assert!(e.splitting, "the executor runs the kernels' chunks");
/// assert!(e.least_split_flops >= 200_000);
/// println!("{e}");
/// ```
#[cfg(not(loom))]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplitEstimate {
    /// Whether kernels split at all (`false` under `BACKFLOW_SPLIT=0`).
    pub splitting: bool,
    /// Whether any split has measured a helper's arrival yet; until then the figures below
    /// are first guesses.
    pub measured: bool,
    /// Recent time from a split's offer to the first helper joining it (or, for a split
    /// that no woken helper joined before every chunk was claimed, that time: a lower
    /// bound), a moving average.
    pub helper_arrival: std::time::Duration,
    /// Recent speed of products' chunks (GEMM, convolutions, pooling, sums) on one thread,
    /// in flops per second.
    pub flops_per_second: f64,
    /// The least work, in flops, of a product that splits.
    pub least_split_flops: usize,
    /// Recent speed of elementwise and row kernels' chunks on one thread, in their nominal
    /// flops (a fixed cost per element) per second.
    pub elementwise_flops_per_second: f64,
    /// The least nominal work of an elementwise or row kernel that splits.
    pub least_split_elementwise_flops: usize,
}

#[cfg(not(loom))]
impl std::fmt::Display for SplitEstimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.splitting {
            return write!(f, "off: every kernel runs whole (BACKFLOW_SPLIT=0)");
        }
        write!(
            f,
            "helpers join in {:.0} µs; products split from {:.2} Mflop ({:.0} Gflop/s), \
             elementwise kernels from {:.2} Mflop ({:.0} nominal Gflop/s)",
            self.helper_arrival.as_secs_f64() * 1e6,
            self.least_split_flops as f64 / 1e6,
            self.flops_per_second / 1e9,
            self.least_split_elementwise_flops as f64 / 1e6,
            self.elementwise_flops_per_second / 1e9,
        )?;
        if !self.measured {
            write!(f, " (first guesses: no split measured yet)")?;
        }
        Ok(())
    }
}

/// The executor's current [`SplitEstimate`].
#[cfg(not(loom))]
pub fn split_estimate() -> SplitEstimate {
    install_runner();
    let (helper_arrival, measured, [products, elementwise]) = cost::split_estimates();
    SplitEstimate {
        splitting: backflow_kernels::par::has_runner(),
        measured,
        helper_arrival,
        flops_per_second: products.0 as f64 * 1e6,
        least_split_flops: products.1,
        elementwise_flops_per_second: elementwise.0 as f64 * 1e6,
        least_split_elementwise_flops: elementwise.1,
    }
}

/// The work of a [`parallel_for`]'s items: unknown, so it teaches no speed.
const NO_WORK: backflow_kernels::par::Work = backflow_kernels::par::Work {
    flops: 0,
    kind: backflow_kernels::par::Kind::Product,
};

/// The kernels' chunk runner: the executor, within the calling thread's budget.
#[cfg(not(loom))]
struct Runner;

#[cfg(not(loom))]
impl backflow_kernels::par::ChunkRunner for Runner {
    fn run(&self, chunks: usize, work: backflow_kernels::par::Work, f: &(dyn Fn(usize) + Sync)) {
        split::run(&budget::current(), chunks, work, f);
    }

    fn least_split_flops(&self, kind: backflow_kernels::par::Kind) -> usize {
        cost::least_split_flops(kind)
    }
}

/// Installs the executor as the kernels' chunk runner, once per process, unless the
/// environment variable `BACKFLOW_SPLIT` is `0` (kernels then run whole: for measuring
/// what splitting gains). Called on first use of a tensor op, a backward pass or
/// [`parallel_for`]; cheap after the first call.
#[cfg(not(loom))]
pub fn install_runner() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var("BACKFLOW_SPLIT").map_or(true, |v| v != "0") {
            backflow_kernels::par::set_runner(&Runner);
        }
    });
}

/// `f` applied to every item by [`parallel_for`], the results in item order.
///
/// (`backflow::parallel_map` wraps it, carrying the caller's grad mode.)
///
/// ```
/// use backflow::parallel_map;
/// assert_eq!(parallel_map(&[1, 2, 3], |x| x * 10), vec![10, 20, 30]);
/// ```
#[cfg(not(loom))]
pub fn map<I: Sync, R: Send>(items: &[I], f: impl Fn(&I) -> R + Sync) -> Vec<R> {
    let results: Vec<crate::sync::Mutex<Option<R>>> = items
        .iter()
        .map(|_| crate::sync::Mutex::new(None))
        .collect();
    parallel_for(items.len(), &|i| {
        let r = f(&items[i]);
        *results[i].lock() = Some(r);
    });
    results
        .into_iter()
        .map(|r| r.into_inner().expect("parallel_for ran every item"))
        .collect()
}
