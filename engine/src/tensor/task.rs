//! The [`Task`] that adapts graph nodes to the generic executor: runs hooks, the op's
//! backward or the leaf's accumulation, and checks what comes back.

use super::grad_mode::with_grad_mode;
use super::node::{Node, NodeKind};
use super::observe::Observer;
use super::Tensor;
use crate::error::{Error, Result};
use crate::exec::{ExecOptions, Gradient, Task};
use crate::sync::{Arc, Mutex, Ordering};
use backflow_kernels::Element;
use std::cell::Cell;

impl<T: Element> Gradient for Tensor<T> {
    fn accumulate(self, later: Self) -> Self {
        // Recorded only when the contributions themselves require grad (create_graph).
        with_grad_mode(true, || &self + &later)
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

/// Adapts the graph's nodes to the executor.
pub(super) struct TensorTask<T: Element> {
    pub(super) nodes: Vec<Arc<Node<T>>>,
    pub(super) retain_graph: bool,
    pub(super) create_graph: bool,
    pub(super) detect_anomaly: bool,
    /// With `grad()`: per dense node, the index of the requested input it is, if any.
    pub(super) capture: Option<Vec<Option<usize>>>,
    pub(super) captured: Mutex<Vec<Option<Tensor<T>>>>,
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

    fn anomaly(&self, node: &Node<T>, what: &str, t: &Tensor<T>) -> Option<Error> {
        if !self.detect_anomaly || t.data().iter().all(|v| v.is_finite()) {
            return None;
        }
        Some(Error::Backward {
            op: node.op.to_string(),
            location: node.location.to_string(),
            how: "failed",
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
        let node = &self.nodes[index as usize];
        let Some(mut grad) = grad else {
            out.extend(node.successors().map(|_| None));
            return Ok(());
        };
        // Acquire: pairs with the Release in register_hook / on_grad_ready.
        let hooked = node.hooked.load(Ordering::Acquire);
        if hooked {
            let hooks = node.hooks.lock().clone();
            for hook in hooks {
                if let Some(replaced) = with_grad_mode(self.create_graph, || hook(&grad)) {
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
            NodeKind::Leaf { grad: store } => {
                if self.capture.is_none() {
                    let mut store = store.lock();
                    let total = match store.take() {
                        Some(old) => with_grad_mode(self.create_graph, || &old + &grad),
                        None => grad.clone(),
                    };
                    *store = Some(total);
                }
                if hooked {
                    let ready = node.ready_hooks.lock().clone();
                    for hook in ready {
                        hook(&grad);
                    }
                }
                Ok(())
            }
            NodeKind::Op {
                inputs,
                arity,
                backward,
                ctx,
            } => {
                let f = if self.retain_graph {
                    backward.lock().clone()
                } else {
                    backward.lock().take()
                };
                let f = f.ok_or_else(|| Error::GraphFreed {
                    op: node.op.to_string(),
                })?;
                let ctx = &ctx[usize::from(self.create_graph)];
                let mut grads = with_grad_mode(self.create_graph, || f(&grad, ctx))?;
                drop(f);
                if grads.len() != *arity {
                    return Err(self.bad_output(
                        node,
                        format!("returned {} gradients for {} inputs", grads.len(), arity),
                    ));
                }
                for e in inputs {
                    let g = grads[e.index].take();
                    if let Some(g) = &g {
                        if g.shape() != e.shape.as_slice() {
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
                                return Err(err);
                            }
                        }
                    }
                    out.push(g);
                }
                Ok(())
            }
        }
    }

    fn bad_output(&self, node: &Node<T>, message: String) -> Error {
        Error::Backward {
            op: node.op.to_string(),
            location: node.location.to_string(),
            how: "failed",
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
        let result = match &self.observer {
            None => self.run_node(node, grad, out),
            Some(observer) => observer.observe(node, || self.run_node(node, grad, out)),
        };
        result.map_err(|e| self.fail(e))
    }

    fn describe(&self, node: u32) -> String {
        self.nodes[node as usize].op.to_string()
    }
}
