//! Running the backward pass over tensors: options, entry points, and the [`Task`] that
//! adapts graph nodes to the generic executor.

use super::grad_mode::with_grad_mode;
use super::node::{Node, NodeKind};
use super::observe::{BackwardStats, Observer, SharedStats};
use super::Tensor;
use crate::error::{Error, Result};
use crate::exec::{self, Accumulation, ExecError, ExecOptions, Gradient, Plan, Scheduler, Task};
use crate::sync::{Arc, Mutex, Ordering};
use backflow_kernels::Element;
use std::path::PathBuf;

/// How to run a backward pass (a builder).
///
/// ```
/// use backflow_engine::{Accumulation, BackwardOptions, Scheduler, Tensor};
/// let x = Tensor::<f32>::scalar(2.0).requires_grad();
/// let y = x.sin();
/// let opts = BackwardOptions::new()
///     .scheduler(Scheduler::Kahn)
///     .accumulation(Accumulation::Deterministic)
///     .retain_graph(true);
/// y.backward_with(&opts).unwrap();
/// y.backward_with(&opts).unwrap(); // the graph was retained
/// assert_eq!(x.grad().unwrap().item(), 2.0 * 2f32.cos());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackwardOptions {
    pub(crate) exec: ExecOptions,
    pub(crate) retain_graph: bool,
    pub(crate) create_graph: bool,
    pub(crate) detect_anomaly: bool,
    pub(crate) stats: Option<SharedStats>,
    pub(crate) trace: Option<PathBuf>,
}

impl BackwardOptions {
    /// The defaults: `Parallel` on every core, `Deterministic`, graph freed after use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Chooses the scheduler.
    pub fn scheduler(mut self, scheduler: Scheduler) -> Self {
        self.exec.scheduler = scheduler;
        self
    }

    /// Worker threads for `Parallel`, the caller included (0 means one).
    pub fn threads(mut self, threads: usize) -> Self {
        self.exec.threads = threads.max(1);
        self
    }

    /// How contributions to shared tensors are summed.
    pub fn accumulation(mut self, accumulation: Accumulation) -> Self {
        self.exec.accumulation = accumulation;
        self
    }

    /// Keeps saved tensors after the pass, so the graph can be differentiated again.
    pub fn retain_graph(mut self, retain: bool) -> Self {
        self.retain_graph = retain;
        self
    }

    /// Records the backward pass itself, so gradients can be differentiated again.
    /// Implies `retain_graph`.
    pub fn create_graph(mut self, create: bool) -> Self {
        self.create_graph = create;
        self
    }

    /// After each node, checks its gradients for NaN and infinity; the error names the op
    /// and where it was created.
    pub fn detect_anomaly(mut self, detect: bool) -> Self {
        self.detect_anomaly = detect;
        self
    }

    /// Counts the nodes each pass runs into `stats` (to see what `grad` prunes, or how far
    /// a pass has got from inside a hook).
    pub fn stats(mut self, stats: Arc<BackwardStats>) -> Self {
        self.stats = Some(SharedStats(stats));
        self
    }

    /// Writes a Chrome/Perfetto trace of each pass to `path` (trace-event JSON: one span per
    /// node run, on the thread that ran it, named by its op). Open it at ui.perfetto.dev.
    /// A later pass with the same options overwrites the file.
    pub fn trace(mut self, path: impl Into<PathBuf>) -> Self {
        self.trace = Some(path.into());
        self
    }

    /// The scheduler chosen.
    pub fn get_scheduler(&self) -> Scheduler {
        self.exec.scheduler
    }

    /// The thread count chosen.
    pub fn get_threads(&self) -> usize {
        self.exec.threads
    }
}

impl<T: Element> Gradient for Tensor<T> {
    fn accumulate(self, later: Self) -> Self {
        // Recorded only when the contributions themselves require grad (create_graph).
        with_grad_mode(true, || &self + &later)
    }
}

/// Adapts the graph's nodes to the executor.
struct TensorTask<T: Element> {
    nodes: Vec<Arc<Node<T>>>,
    retain_graph: bool,
    create_graph: bool,
    detect_anomaly: bool,
    /// With `grad()`: per dense node, the index of the requested input it is, if any.
    capture: Option<Vec<Option<usize>>>,
    captured: Mutex<Vec<Option<Tensor<T>>>>,
    /// The typed error behind the first `Err` a node returned.
    error: Mutex<Option<Error>>,
    /// Stats and trace, when asked for; `None` costs one branch per node.
    observer: Option<Observer>,
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

fn node_key<T: Element>(n: &Arc<Node<T>>) -> usize {
    Arc::as_ptr(n) as usize
}

/// Appends the nodes `n`'s backward sends gradients to, borrowed from the graph.
fn successors_of<'a, T: Element>(n: &&'a Arc<Node<T>>, out: &mut Vec<&'a Arc<Node<T>>>) {
    let node: &'a Node<T> = n;
    out.extend(node.successors());
}

/// The gradients to seed each output with: `grad_outputs`, or ones for one-element outputs.
fn seeds<T: Element>(outputs: &[Tensor<T>], grad_outputs: &[Tensor<T>]) -> Result<Vec<Tensor<T>>> {
    if !grad_outputs.is_empty() && grad_outputs.len() != outputs.len() {
        return Err(Error::Invalid {
            op: "backward",
            message: format!(
                "{} grad_outputs given for {} outputs",
                grad_outputs.len(),
                outputs.len()
            ),
        });
    }
    outputs
        .iter()
        .enumerate()
        .map(|(i, out)| {
            if out.node().is_none() {
                return Err(Error::NoGraph {
                    shape: out.shape().to_vec(),
                });
            }
            match grad_outputs.get(i) {
                Some(g) if g.shape() != out.shape() => Err(Error::Shape {
                    op: "backward",
                    lhs: out.shape().to_vec(),
                    rhs: g.shape().to_vec(),
                    reason: format!("grad_outputs[{i}] must have the shape of outputs[{i}]"),
                }),
                Some(g) => Ok(g.clone()),
                None if out.numel() == 1 => Ok(Tensor::ones(out.shape())),
                None => Err(Error::NonScalarRoot {
                    shape: out.shape().to_vec(),
                    numel: out.numel(),
                }),
            }
        })
        .collect()
}

/// Runs one backward pass; with `inputs`, captures their gradients instead of touching
/// leaves, and runs only the nodes with a path to them.
fn run<T: Element>(
    outputs: &[Tensor<T>],
    grad_outputs: &[Tensor<T>],
    inputs: Option<&[Tensor<T>]>,
    opts: &BackwardOptions,
) -> Result<Vec<Option<Tensor<T>>>> {
    let seeds = seeds(outputs, grad_outputs)?;
    let roots: Vec<Arc<Node<T>>> = outputs.iter().filter_map(|o| o.node().cloned()).collect();
    let wanted: Option<Vec<usize>> = match inputs {
        None => None,
        Some(inputs) => Some(
            inputs
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    t.node().map(node_key).ok_or_else(|| Error::Invalid {
                        op: "grad",
                        message: format!(
                            "inputs[{i}] (shape {:?}) does not require grad",
                            t.shape()
                        ),
                    })
                })
                .collect::<Result<_>>()?,
        ),
    };
    let keep = wanted.as_ref().map(|w| {
        let set: rustc_hash::FxHashSet<usize> = w.iter().copied().collect();
        move |n: &&Arc<Node<T>>| set.contains(&node_key(n))
    });
    // The traversal borrows the graph (no reference counting per edge); only the kept nodes
    // are cloned into the task, which outlives this call on the pool.
    let root_refs: Vec<&Arc<Node<T>>> = roots.iter().collect();
    let (plan, nodes) = Plan::build(
        &root_refs,
        |n| node_key(n),
        successors_of,
        keep.as_ref().map(|k| k as &dyn Fn(&&Arc<Node<T>>) -> bool),
    );
    let nodes: Vec<Arc<Node<T>>> = nodes.into_iter().cloned().collect();
    let capture = wanted.as_ref().map(|w| {
        nodes
            .iter()
            .map(|n| w.iter().position(|&k| k == node_key(n)))
            .collect()
    });
    let n_inputs = wanted.as_ref().map_or(0, Vec::len);
    // Seeds of pruned roots are dropped with them.
    let seeds = seeds
        .into_iter()
        .zip(&roots)
        .filter(|(_, r)| nodes.iter().any(|n| Arc::ptr_eq(n, r)))
        .map(|(s, _)| Some(s.detach_if(!opts.create_graph)))
        .collect();
    let task = Arc::new(TensorTask {
        nodes,
        retain_graph: opts.retain_graph || opts.create_graph,
        create_graph: opts.create_graph,
        detect_anomaly: opts.detect_anomaly,
        capture,
        captured: Mutex::new(vec![None; n_inputs]),
        error: Mutex::new(None),
        observer: Observer::new(opts.stats.as_ref(), opts.trace.as_deref()),
    });
    let result = exec::execute(Arc::new(plan), Arc::clone(&task), seeds, &opts.exec);
    let written = match &task.observer {
        Some(observer) => observer.finish(&task.nodes),
        None => Ok(()),
    };
    if let Err(e) = result {
        return Err(task
            .error
            .lock()
            .take()
            .unwrap_or_else(|| panicked(&task, e)));
    }
    written?;
    let captured = std::mem::take(&mut *task.captured.lock());
    Ok(captured)
}

fn panicked<T: Element>(task: &TensorTask<T>, e: ExecError) -> Error {
    Error::Backward {
        op: e.op,
        location: task.nodes[e.node as usize].location.to_string(),
        how: if e.panicked { "panicked" } else { "failed" },
        message: e.message,
    }
}

impl<T: Element> Tensor<T> {
    fn detach_if(self, detach: bool) -> Self {
        if detach {
            self.detach()
        } else {
            self
        }
    }

    /// Computes the gradient of this one-element tensor with respect to every leaf it
    /// depends on, summing into their [`grad`](Tensor::grad), with the default options.
    pub fn backward(&self) -> Result<()> {
        self.backward_with(&BackwardOptions::default())
    }

    /// [`backward`](Tensor::backward) with explicit options.
    pub fn backward_with(&self, opts: &BackwardOptions) -> Result<()> {
        run(std::slice::from_ref(self), &[], None, opts).map(drop)
    }
}

/// Backward from several roots at once, seeding `outputs[i]` with `grad_outputs[i]` (or
/// ones for one-element outputs when `grad_outputs` is empty); sums into the leaves' grads.
pub fn backward<T: Element>(
    outputs: &[Tensor<T>],
    grad_outputs: &[Tensor<T>],
    opts: &BackwardOptions,
) -> Result<()> {
    run(outputs, grad_outputs, None, opts).map(drop)
}

/// Gradients of `outputs` with respect to `inputs`, without touching any `.grad()` (like
/// `torch.autograd.grad`). Only nodes with a path to an input run. An input that the
/// outputs do not depend on gets `None`.
///
/// ```
/// use backflow_engine::{grad, BackwardOptions, Tensor};
/// let x = Tensor::<f64>::scalar(3.0).requires_grad();
/// let y = &x * &x;                       // dy/dx = 2x = 6
/// let g = grad(&[y], &[], &[x.clone()], &BackwardOptions::new()).unwrap();
/// assert_eq!(g[0].as_ref().unwrap().item(), 6.0);
/// assert!(x.grad().is_none());
/// ```
pub fn grad<T: Element>(
    outputs: &[Tensor<T>],
    grad_outputs: &[Tensor<T>],
    inputs: &[Tensor<T>],
    opts: &BackwardOptions,
) -> Result<Vec<Option<Tensor<T>>>> {
    run(outputs, grad_outputs, Some(inputs), opts)
}
