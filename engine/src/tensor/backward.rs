//! The backward entry points over tensors: `backward`, `backward_with`, multi-root
//! `backward` and `grad`, which plan the graph and hand it to the executor.

use super::node::{CachedPlan, Node};
use super::observe::Observer;
use super::task::{PlanNodes, TensorTask};
use super::{BackwardOptions, Tensor};
use crate::error::{Error, Result};
use crate::exec::{self, ExecError, Plan};
use crate::sync::{Arc, Mutex};
use backflow_kernels::Element;
use rustc_hash::{FxHashMap, FxHashSet};

fn node_key<T: Element>(n: &Arc<Node<T>>) -> usize {
    Arc::as_ptr(n) as usize
}

/// Appends the nodes `n`'s backward sends gradients to, borrowed from the graph.
fn successors_of<'a, T: Element>(n: &&'a Arc<Node<T>>, out: &mut Vec<&'a Arc<Node<T>>>) {
    let node: &'a Node<T> = n;
    out.extend(node.successors());
}

/// The gradients to seed each output with: `grad_outputs`, or ones for one-element outputs.
fn seeds<T: Element>(
    outputs: &[&Tensor<T>],
    grad_outputs: &[&Tensor<T>],
) -> Result<Vec<Tensor<T>>> {
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
            match grad_outputs.get(i).copied() {
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
    outputs: &[&Tensor<T>],
    grad_outputs: &[&Tensor<T>],
    inputs: Option<&[&Tensor<T>]>,
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
    let (plan, nodes) = plan_for(&roots, wanted.as_deref(), opts);
    // Each requested input's first position, by node identity: lookups by map keep a pass
    // with many inputs linear in their number.
    let first: Option<FxHashMap<usize, usize>> = wanted.as_ref().map(|w| {
        let mut first = FxHashMap::default();
        for (i, &key) in w.iter().enumerate() {
            first.entry(key).or_insert(i);
        }
        first
    });
    let capture = first.as_ref().map(|first| {
        (0..plan.len() as u32)
            .map(|i| first.get(&node_key(nodes.get(i))).copied())
            .collect()
    });
    let n_inputs = wanted.as_ref().map_or(0, Vec::len);
    // Seeds of pruned roots are dropped with them (only a pass with requested inputs
    // prunes); the plan's nodes are looked up in a set, so many roots stay linear.
    let planned: Option<FxHashSet<usize>> = wanted.as_ref().map(|_| {
        (0..plan.len() as u32)
            .map(|i| node_key(nodes.get(i)))
            .collect()
    });
    let seeds = seeds
        .into_iter()
        .zip(&roots)
        .filter(|(_, r)| planned.as_ref().is_none_or(|p| p.contains(&node_key(r))))
        .map(|(s, _)| Some(s.detach_if(!opts.create_graph)))
        .collect();
    let task = Arc::new(TensorTask {
        nodes,
        retain_graph: opts.retain_graph || opts.create_graph,
        create_graph: opts.create_graph,
        detect_anomaly: opts.detect_anomaly,
        capture,
        captured: Mutex::new(vec![None; n_inputs]),
        staged: Mutex::new(Vec::new()),
        error: Mutex::new(None),
        // Opens the trace file now: a path that cannot be written fails the call before
        // any gradient is computed.
        observer: Observer::new(opts.stats.as_ref(), opts.trace.as_deref())?,
        exec: opts.exec,
    });
    let result = exec::execute(plan, Arc::clone(&task), seeds, &opts.exec);
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
    // All or nothing: the leaves' `.grad()` change only once every node has succeeded.
    task.commit();
    let mut captured = std::mem::take(&mut *task.captured.lock());
    // An input listed twice is one node, captured into its first slot: copy it to the rest.
    if let (Some(wanted), Some(first)) = (&wanted, &first) {
        for (i, key) in wanted.iter().enumerate() {
            let j = first[key];
            if j != i {
                captured[i] = captured[j].clone();
            }
        }
    }
    Ok(captured)
}

/// The plan of a pass and its nodes. A pass from a single root over the whole graph reuses
/// the plan cached on that root by an earlier pass with `retain_graph` (the graph below a
/// node never changes), and caches the one it builds when it retains the graph itself.
fn plan_for<T: Element>(
    roots: &[Arc<Node<T>>],
    wanted: Option<&[usize]>,
    opts: &BackwardOptions,
) -> (Arc<Plan>, PlanNodes<T>) {
    let cacheable = wanted.is_none() && roots.len() == 1;
    if cacheable {
        let cached = roots[0].extras.lock().as_ref().and_then(|e| e.plan.clone());
        if let Some(cache) = cached {
            return (
                Arc::clone(&cache.plan),
                PlanNodes::Cached {
                    root: Arc::clone(&roots[0]),
                    cache,
                },
            );
        }
    }
    let keep = wanted.map(|w| {
        let set: FxHashSet<usize> = w.iter().copied().collect();
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
    let plan = Arc::new(plan);
    let retained = opts.retain_graph || opts.create_graph;
    if cacheable && retained && !plan.is_empty() {
        let cache = Arc::new(CachedPlan {
            plan: Arc::clone(&plan),
            below: nodes[1..].iter().map(|&n| Arc::clone(n)).collect(),
        });
        roots[0].with_extras(|e| e.plan = Some(Arc::clone(&cache)));
        let root = Arc::clone(&roots[0]);
        return (plan, PlanNodes::Cached { root, cache });
    }
    let nodes = nodes.into_iter().cloned().collect();
    (plan, PlanNodes::Fresh(nodes))
}

fn panicked<T: Element>(task: &TensorTask<T>, e: ExecError) -> Error {
    Error::Backward {
        op: e.op,
        location: task.nodes.get(e.node).location.to_string(),
        panicked: e.panicked,
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
    ///
    /// All or nothing: the leaves' gradients are summed in only once the whole pass has
    /// succeeded; a pass that returns `Err` leaves every `grad()` as it was, under every
    /// scheduler.
    pub fn backward(&self) -> Result<()> {
        self.backward_with(&BackwardOptions::default())
    }

    /// [`backward`](Tensor::backward) with explicit options.
    pub fn backward_with(&self, opts: &BackwardOptions) -> Result<()> {
        run(&[self], &[], None, opts).map(drop)
    }
}

/// Backward from several roots at once, seeding `outputs[i]` with `grad_outputs[i]` (or
/// ones for one-element outputs when `grad_outputs` is empty); sums into the leaves' grads.
///
/// Lists of tensors are `&[&Tensor]` throughout the API (`backward`, [`grad`],
/// [`checkpoint`](crate::checkpoint), [`GraphExport::new`](crate::GraphExport::new),
/// [`Tensor::apply_op`]), so no list needs clones.
///
/// ```
/// use backflow::{backward, BackwardOptions, Tensor};
/// let x = Tensor::<f32>::scalar(2.0).requires_grad();
/// let (a, b) = (&x * 3.0, x.sin());
/// backward(&[&a, &b], &[], &BackwardOptions::new()).unwrap();
/// assert!((x.grad().unwrap().item() - (3.0 + 2f32.cos())).abs() < 1e-6);
/// ```
pub fn backward<T: Element>(
    outputs: &[&Tensor<T>],
    grad_outputs: &[&Tensor<T>],
    opts: &BackwardOptions,
) -> Result<()> {
    run(outputs, grad_outputs, None, opts).map(drop)
}

/// Gradients of `outputs` with respect to `inputs`, without touching any `.grad()` (like
/// `torch.autograd.grad`). Only nodes with a path to an input run. An input that the
/// outputs do not depend on gets `None`; an input listed twice gets its gradient twice.
///
/// ```
/// use backflow::{grad, BackwardOptions, Tensor};
/// let x = Tensor::<f64>::scalar(3.0).requires_grad();
/// let y = &x * &x;                       // dy/dx = 2x = 6
/// let g = grad(&[&y], &[], &[&x], &BackwardOptions::new()).unwrap();
/// assert_eq!(g[0].as_ref().unwrap().item(), 6.0);
/// assert!(x.grad().is_none());
/// ```
pub fn grad<T: Element>(
    outputs: &[&Tensor<T>],
    grad_outputs: &[&Tensor<T>],
    inputs: &[&Tensor<T>],
    opts: &BackwardOptions,
) -> Result<Vec<Option<Tensor<T>>>> {
    run(outputs, grad_outputs, Some(inputs), opts)
}
