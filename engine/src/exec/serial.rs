//! The sequential schedulers, on the calling thread: `Dfs` (reverse post-order) and `Kahn`
//! (FIFO ready queue). Both sum contributions in the canonical order (a left fold in slot
//! order, or the fixed tree of a node with many) through the same [`StripedBuffers`] as the
//! parallel executor, so all three agree bitwise.

use super::{
    output_for, run_node, seed_slots, Accumulation, ExecError, Plan, StripedBuffers, Task,
};
use std::collections::VecDeque;

/// In-degree bookkeeping of a single thread.
struct Inbox<G> {
    remaining: Vec<u32>,
    buffers: StripedBuffers<G>,
}

impl<G: super::Gradient> Inbox<G> {
    fn new(plan: &Plan, mode: Accumulation) -> Self {
        let remaining = plan.shared_indegrees();
        Self {
            buffers: StripedBuffers::new(&remaining, mode),
            remaining,
        }
    }

    /// Delivers `c` to `slot` of `target`; returns the final gradient once all have arrived.
    fn deliver(&mut self, plan: &Plan, target: u32, slot: u32, c: Option<G>) -> Option<Option<G>> {
        let Some(shared) = plan.shared_index(target) else {
            return Some(c);
        };
        let folded = self.buffers.deposit(shared, slot, c);
        let left = &mut self.remaining[shared as usize];
        *left -= folded;
        (folded > 0 && *left == 0).then(|| self.buffers.take(shared))
    }

    /// Delivers the seeds, handing each node they release to `ready`.
    fn seed(&mut self, plan: &Plan, seeds: Vec<Option<G>>, mut ready: impl FnMut(u32, Option<G>)) {
        for ((&node, slot), seed) in plan.seeds().iter().zip(seed_slots(plan)).zip(seeds) {
            if let Some(g) = self.deliver(plan, node, slot, seed) {
                ready(node, g);
            }
        }
    }

    /// Delivers what `node` produced along its edges, handing each node released to `ready`.
    fn finish(
        &mut self,
        plan: &Plan,
        node: u32,
        outputs: &mut [Option<G>],
        mut ready: impl FnMut(u32, Option<G>),
    ) {
        for edge in plan.edges(node) {
            let c = output_for(outputs, edge);
            if let Some(g) = self.deliver(plan, edge.target, edge.slot, c) {
                ready(edge.target, g);
            }
        }
    }
}

/// Runs nodes in reverse post-order; each is ready when reached.
pub(super) fn run_dfs<T: Task>(
    plan: &Plan,
    task: &T,
    seeds: Vec<Option<T::Grad>>,
    mode: Accumulation,
) -> Result<(), ExecError> {
    let mut inbox = Inbox::new(plan, mode);
    let mut ready: Vec<Option<Option<T::Grad>>> = (0..plan.len()).map(|_| None).collect();
    inbox.seed(plan, seeds, |n, g| ready[n as usize] = Some(g));
    let mut outputs = Vec::new();
    for &node in plan.order() {
        let grad = ready[node as usize]
            .take()
            .expect("reverse post-order reaches a node after all its consumers");
        run_node(task, node, grad, &mut outputs)?;
        inbox.finish(plan, node, &mut outputs, |n, g| ready[n as usize] = Some(g));
    }
    Ok(())
}

/// Runs nodes as their in-degree reaches zero, first released first run.
pub(super) fn run_kahn<T: Task>(
    plan: &Plan,
    task: &T,
    seeds: Vec<Option<T::Grad>>,
    mode: Accumulation,
) -> Result<(), ExecError> {
    let mut inbox = Inbox::new(plan, mode);
    let mut queue = VecDeque::new();
    inbox.seed(plan, seeds, |n, g| queue.push_back((n, g)));
    let mut outputs = Vec::new();
    while let Some((node, grad)) = queue.pop_front() {
        run_node(task, node, grad, &mut outputs)?;
        inbox.finish(plan, node, &mut outputs, |n, g| queue.push_back((n, g)));
    }
    Ok(())
}

/// Runs nodes as their in-degree reaches zero, last released first run: `Parallel` on one
/// thread. Depth first, like the parallel workers' own deques, so a branch runs to its end
/// while its data is in cache (breadth first, `Kahn` visits every branch at each step).
#[cfg_attr(loom, allow(dead_code))]
pub(super) fn run_stack<T: Task>(
    plan: &Plan,
    task: &T,
    seeds: Vec<Option<T::Grad>>,
    mode: Accumulation,
) -> Result<(), ExecError> {
    let mut inbox = Inbox::new(plan, mode);
    let mut stack = Vec::new();
    inbox.seed(plan, seeds, |n, g| stack.push((n, g)));
    // Seeds run in seed order, as the other schedulers start them.
    stack.reverse();
    let mut outputs = Vec::new();
    while let Some((node, grad)) = stack.pop() {
        run_node(task, node, grad, &mut outputs)?;
        let released = stack.len();
        inbox.finish(plan, node, &mut outputs, |n, g| stack.push((n, g)));
        // The first successor released runs next, as a parallel worker keeps it.
        stack[released..].reverse();
    }
    Ok(())
}
