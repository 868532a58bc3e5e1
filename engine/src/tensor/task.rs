//! The [`Task`] that adapts graph nodes to the generic executor: runs hooks, the op's
//! backward or the leaf's accumulation, and checks what comes back.

use super::grad_mode::with_grad_mode;
use super::node::{BackwardCtx, CachedPlan, Node, NodeKind};
use super::observe::Observer;
use super::Tensor;
use crate::error::{Error, Result};
use crate::exec::{ExecOptions, Gradient, Task};
use crate::sync::{Arc, Mutex, Ordering};
use backflow_kernels::Element;
use std::cell::Cell;

impl<T: Element> Gradient for Tensor<T> {
    fn accumulate(self, later: Self) -> Self {
        sum_reusing(self, later, true)
    }
}

/// `earlier + later`, written into whichever buffer is held by its handle alone, else into
/// a new one. When a contribution requires grad (`create_graph`) it is never in place, and
/// recorded if `record`.
///
/// Every path adds with [`add_in_order`], so the bits never depend on which buffer was free
/// (which varies with the scheduler and the thread count): IEEE addition commutes for
/// numbers, but not for NaN payloads, and the compiler may swap the operands of `+`.
fn sum_reusing<T: Element>(
    mut earlier: Tensor<T>,
    mut later: Tensor<T>,
    record: bool,
) -> Tensor<T> {
    if earlier.shape() == later.shape() && !earlier.needs_grad() && !later.needs_grad() {
        if earlier.unique_data_mut().is_none() && later.unique_data_mut().is_some() {
            return later.zip_reusing(earlier.data(), |l, e| add_in_order(e, l));
        }
        // In place when `earlier` is free, else into a new buffer.
        return earlier.zip_reusing(later.data(), add_in_order);
    }
    with_grad_mode(record, || &earlier + &later)
}

/// `a + b` where `a` comes first in summation order, with a NaN result fixed by that order:
/// the first NaN operand, its bits unchanged; a NaN made from numbers (`inf - inf`) is the
/// machine's default NaN. Hardware keeps one operand's payload, which one depends on the
/// instruction the compiler picked, so it is not left to `+`.
///
/// Written as selects, not branches, so that a loop over two buffers vectorises.
#[inline(always)]
fn add_in_order<T: Element>(a: T, b: T) -> T {
    let sum = a + b;
    let first_nan = if a.is_nan() { a } else { b };
    let nan = if a.is_nan() || b.is_nan() {
        first_nan
    } else {
        sum
    };
    if sum.is_nan() {
        nan
    } else {
        sum
    }
}

thread_local! {
    /// The options of the pass whose node this thread is running, if any.
    static CURRENT_EXEC: Cell<Option<ExecOptions>> = const { Cell::new(None) };
}

/// The scheduler, threads and accumulation of the pass whose node runs on this thread (for
/// nested passes such as [`checkpoint`](super::checkpoint)'s).
pub(super) fn current_exec() -> Option<ExecOptions> {
    CURRENT_EXEC.with(Cell::get)
}

/// The nodes of a pass's plan, by dense index.
pub(super) enum PlanNodes<T: Element> {
    /// Planned for this pass.
    Fresh(Vec<Arc<Node<T>>>),
    /// A single root's cached plan: the root is index 0, the rest come from its cache.
    Cached {
        root: Arc<Node<T>>,
        cache: Arc<CachedPlan<T>>,
    },
}

impl<T: Element> PlanNodes<T> {
    /// The node of dense index `i`.
    pub(super) fn get(&self, i: u32) -> &Arc<Node<T>> {
        match self {
            PlanNodes::Fresh(nodes) => &nodes[i as usize],
            PlanNodes::Cached { root, cache } => match i {
                0 => root,
                i => &cache.below[i as usize - 1],
            },
        }
    }
}

/// Adapts the graph's nodes to the executor.
pub(super) struct TensorTask<T: Element> {
    pub(super) nodes: PlanNodes<T>,
    pub(super) retain_graph: bool,
    pub(super) create_graph: bool,
    pub(super) detect_anomaly: bool,
    /// With `grad()`: per dense node, the index of the requested input it is, if any.
    pub(super) capture: Option<Vec<Option<usize>>>,
    pub(super) captured: Mutex<Vec<Option<Tensor<T>>>>,
    /// Without `capture`: each leaf's gradient from this pass, by dense index, summed into
    /// its `.grad()` by [`commit`](Self::commit) only once the whole pass has succeeded, so
    /// that a failed pass leaves every `.grad()` as it was, under every scheduler.
    pub(super) staged: Mutex<Vec<(u32, Tensor<T>)>>,
    /// The typed error behind the first `Err` a node returned.
    pub(super) error: Mutex<Option<Error>>,
    /// Stats and trace, when asked for; `None` costs one branch per node.
    pub(super) observer: Option<Observer>,
    /// How this pass runs, for passes nested in its nodes.
    pub(super) exec: ExecOptions,
}

impl<T: Element> TensorTask<T> {
    fn fail(&self, e: Error) -> String {
        let message = e.to_string();
        self.error.lock().get_or_insert(e);
        message
    }

    /// Sums the staged gradients of a successful pass into their leaves' `.grad()`.
    pub(super) fn commit(&self) {
        let staged = std::mem::take(&mut *self.staged.lock());
        for (index, grad) in staged {
            if let NodeKind::Leaf { grad: store } = &self.nodes.get(index).kind {
                let mut store = store.lock();
                let total = match store.take() {
                    Some(old) => sum_reusing(old, grad, self.create_graph),
                    None => grad,
                };
                *store = Some(total);
            }
        }
    }

    fn anomaly(&self, node: &Node<T>, what: &str, t: &Tensor<T>) -> Option<Error> {
        if !self.detect_anomaly || t.data().iter().all(|v| v.is_finite()) {
            return None;
        }
        Some(Error::Backward {
            op: node.op.to_string(),
            location: node.location.to_string(),
            panicked: false,
            message: format!(
                "anomaly: {what} of shape {:?} holds NaN or infinity",
                t.shape()
            ),
        })
    }

    fn run_node(
        &self,
        index: u32,
        grad: Option<Tensor<T>>,
        out: &mut Vec<Option<Tensor<T>>>,
    ) -> Result<()> {
        let node = self.nodes.get(index);
        let Some(mut grad) = grad else {
            out.extend(node.successors().map(|_| None));
            return Ok(());
        };
        // Acquire: pairs with the Release in register_hook / on_grad_ready.
        let hooked = node.hooked.load(Ordering::Acquire);
        let (hooks, ready) = if hooked {
            node.hooks()
        } else {
            Default::default()
        };
        if hooked {
            for hook in hooks {
                if let Some(replaced) = with_grad_mode(self.create_graph, || hook(&grad)) {
                    if replaced.shape() != grad.shape() {
                        return Err(self.bad_output(
                            node,
                            format!(
                                "a hook on this tensor returned a gradient of shape {:?} for \
                                 the tensor's shape {:?}",
                                replaced.shape(),
                                grad.shape()
                            ),
                        ));
                    }
                    grad = replaced;
                }
            }
        }
        if self.detect_anomaly {
            if let Some(e) = self.anomaly(node, "incoming gradient", &grad) {
                return Err(e);
            }
        }
        let captured = self.capture.as_ref().and_then(|c| c[index as usize]);
        if let Some(slot) = captured {
            self.captured.lock()[slot] = Some(grad.clone());
        }
        match &node.kind {
            NodeKind::Leaf { .. } => {
                // Each leaf runs once per pass, on the sum of its contributions: `grad` is
                // final here, so the ready hooks see it mid-pass, while `.grad()` is only
                // written by `commit` once the whole pass has succeeded.
                // Under the pass's mode, as the hooks and backward functions: never the
                // mode of whichever thread happens to run the leaf.
                for hook in ready {
                    with_grad_mode(self.create_graph, || hook(&grad));
                }
                if self.capture.is_none() {
                    self.staged.lock().push((index, grad));
                }
                Ok(())
            }
            NodeKind::Op {
                inputs,
                arity,
                backward,
            } => {
                let f = if self.retain_graph {
                    backward.lock().clone()
                } else {
                    backward.lock().take()
                };
                let f = f.ok_or_else(|| Error::GraphFreed {
                    op: node.op.to_string(),
                })?;
                let ctx = &BackwardCtx::new(self.create_graph, *arity, inputs);
                // The backward pushes one entry per input onto `out`, which the executor
                // hands over empty; they are then compacted in place to one per edge (edges
                // are in increasing input order, so each moves down or stays).
                let start = out.len();
                with_grad_mode(self.create_graph, || f(grad, ctx, out))?;
                drop(f);
                let returned = out.len() - start;
                if returned != *arity {
                    out.truncate(start);
                    return Err(self.bad_output(
                        node,
                        format!("returned {returned} gradients for {arity} inputs"),
                    ));
                }
                for (k, e) in inputs.iter().enumerate() {
                    let g = out[start + e.index as usize].take();
                    if let Some(g) = &g {
                        if g.shape() != e.shape.as_slice() {
                            out.truncate(start);
                            return Err(self.bad_output(
                                node,
                                format!(
                                    "returned a gradient of shape {:?} for input {} of shape {:?}",
                                    g.shape(),
                                    e.index,
                                    e.shape
                                ),
                            ));
                        }
                        if self.detect_anomaly {
                            if let Some(err) = self.anomaly(node, "gradient of an input", g) {
                                out.truncate(start);
                                return Err(err);
                            }
                        }
                    }
                    out[start + k] = g;
                }
                out.truncate(start + inputs.len());
                Ok(())
            }
        }
    }

    fn bad_output(&self, node: &Node<T>, message: String) -> Error {
        Error::Backward {
            op: node.op.to_string(),
            location: node.location.to_string(),
            panicked: false,
            message,
        }
    }
}

impl<T: Element> Task for TensorTask<T> {
    type Grad = Tensor<T>;

    fn run(
        &self,
        node: u32,
        grad: Option<Tensor<T>>,
        out: &mut Vec<Option<Tensor<T>>>,
    ) -> Result<(), String> {
        struct Restore(Option<ExecOptions>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT_EXEC.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(CURRENT_EXEC.with(|c| c.replace(Some(self.exec))));
        // A node run on a thread that is inside a checkpointed segment's function (which
        // started a pass, or waits on the pool) is not part of that segment.
        let _segments = super::checkpoint_scope::suspend();
        let result = match &self.observer {
            None => self.run_node(node, grad, out),
            Some(observer) => observer.observe(node, || self.run_node(node, grad, out)),
        };
        result.map_err(|e| self.fail(e))
    }

    fn describe(&self, node: u32) -> String {
        self.nodes.get(node).op.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::add_in_order;

    #[test]
    fn a_nan_sum_is_the_first_nan_operand_whatever_the_vector_width() {
        let (p, q) = (f32::from_bits(0x7fc0_0001), f32::from_bits(0x7fc0_0002));
        // Long enough for every vector width and a scalar tail; the NaNs sit at every lane.
        let a: Vec<f32> = (0..37).map(|i| [p, 1.0, p, f32::INFINITY][i % 4]).collect();
        let b: Vec<f32> = (0..37)
            .map(|i| [q, q, 2.0, f32::NEG_INFINITY][i % 5 % 4])
            .collect();
        let sums: Vec<f32> = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| add_in_order(x, y))
            .collect();
        for ((&x, &y), &s) in a.iter().zip(&b).zip(&sums) {
            let want = if x.is_nan() {
                x.to_bits()
            } else if y.is_nan() {
                y.to_bits()
            } else {
                (x + y).to_bits()
            };
            if (x + y).is_nan() && !x.is_nan() && !y.is_nan() {
                assert!(s.is_nan(), "{x} + {y}");
            } else {
                assert_eq!(s.to_bits(), want, "{x} + {y}");
            }
        }
    }
}
