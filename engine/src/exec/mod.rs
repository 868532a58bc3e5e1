//! The generic backward executor: schedules nodes that expose their successors and a backward
//! callback over any [`Gradient`] type. It knows nothing of tensors, which keeps the loom
//! models small and lets users drive their own graph types through it.
//!
//! See `README.md` beside this file for the algorithm.

pub mod accumulate;
#[cfg(not(loom))]
mod cost;
mod executor;
mod fold_tree;
mod parallel;
pub mod plan;
mod queue;
mod serial;
#[cfg(test)]
mod tests;

pub use accumulate::{canonical_sum, Accumulation, Gradient, StripedBuffers, BLOCK};
pub use executor::max_threads;
#[cfg(loom)]
pub use executor::{set_owner_helps, shutdown};
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
    match opts.scheduler {
        Scheduler::Dfs => serial::run_dfs(&plan, &*task, seeds, opts.accumulation),
        Scheduler::Kahn => serial::run_kahn(&plan, &*task, seeds, opts.accumulation),
        Scheduler::Parallel => parallel::run(plan, task, seeds, opts),
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
