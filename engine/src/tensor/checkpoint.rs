//! Gradient checkpointing: run a segment of the forward pass without recording it, and run
//! it again, recorded, when the backward pass reaches it (a nested pass on whichever thread
//! gets there).

use super::backward::grad;
use super::checkpoint_scope::{self, key, Scope};
use super::grad_mode::{enable_grad, is_grad_enabled};
use super::node::{Node, NodeKind};
use super::task::current_exec;
use super::{BackwardOptions, Shape, Tensor};
use crate::error::{Error, Result};
use crate::sync::Arc;
use backflow_kernels::Element;
use rustc_hash::FxHashSet;

/// Runs `f(inputs)` without recording its graph, and records it as one node whose backward
/// runs `f` again under recording and differentiates it with a nested backward pass (with
/// the scheduler, threads and accumulation of the pass that reaches it). Memory for `f`'s
/// intermediate tensors is spent only while `f` runs: they are freed as in an unrecorded
/// forward, and the recomputation holds them only while that node's backward runs.
///
/// Tensors that `f` uses from outside rather than through `inputs` get their gradients too:
/// weights captured by its closure (a `move`d tensor, an `Arc` of a module and its
/// parameters), results of ops recorded before the call, and those of nested checkpoints.
/// Every tensor requiring grad that an op in `f` uses, other than its inputs' own values, is
/// found during the first call and joins the node's inputs; the recomputation puts fresh
/// leaves in their place, so the nested pass stops at them, and their gradients flow on from
/// this node in the enclosing pass (committed, as every gradient, only once that whole pass
/// succeeds). [`grad`](crate::grad) with respect to such a tensor sees them as well.
///
/// `f` must compute the same values with the same tensors each time, recording its ops on
/// the calling thread. The backward pass fails with an error of op `checkpoint`, naming the
/// tensor, rather than losing a gradient, when the recomputation uses an outside tensor
/// the first call did not (or leaves out one it used), including a leaf requiring grad that
/// `f` creates itself or a result recorded on another thread: the branch-parallel `nn`
/// modules (`Branches`, attention heads, experts) run their branches on other threads, so
/// checkpoint their branches one by one rather than the whole module. If `f` itself calls
/// `grad` or `backward`, its first call, which records nothing, fails.
///
/// Gradients equal those without the checkpoint (in `Deterministic` mode, bit for bit when
/// the segment's inputs and the tensors it uses from outside receive no other contributions
/// to their gradients, from the rest of the graph or from a second checkpoint). Higher-order
/// gradients do not flow through a checkpoint: with `create_graph`, its gradients are
/// recorded only with respect to the recomputed segment (where fresh leaves stand for its
/// inputs and the tensors it uses from outside).
///
/// ```
/// use backflow::{checkpoint, Tensor};
/// let w = Tensor::<f64>::scalar(3.0).requires_grad();
/// let x = Tensor::<f64>::scalar(2.0);
/// // y = sin(w·x)², recomputed during backward
/// let y = checkpoint(|t| Ok((&t[0] * &t[1]).sin().powf(2.0)), &[&w, &x]).unwrap();
/// y.backward().unwrap();
/// let expected = 2.0 * 6f64.sin() * 6f64.cos() * 2.0;
/// assert!((w.grad().unwrap().item() - expected).abs() < 1e-12);
///
/// // A weight moved into the closure gets its gradient too.
/// let v = Tensor::<f64>::scalar(0.5).requires_grad();
/// let vc = v.clone();
/// let y = checkpoint(move |t| Ok((&t[0] * &vc).tanh()), &[&w]).unwrap();
/// y.backward().unwrap();
/// let d = 1.0 - 1.5f64.tanh().powi(2);
/// assert!((v.grad().unwrap().item() - d * 3.0).abs() < 1e-12);
/// ```
#[track_caller]
pub fn checkpoint<T, F>(f: F, inputs: &[&Tensor<T>]) -> Result<Tensor<T>>
where
    T: Element,
    F: Fn(&[Tensor<T>]) -> Result<Tensor<T>> + Send + Sync + 'static,
{
    let saved: Vec<Tensor<T>> = inputs.iter().map(|&t| t.clone()).collect();
    if !is_grad_enabled() {
        // Nothing is recorded, so nothing is recomputed.
        return Ok(f(&saved)?.detach());
    }
    // The first call records nothing and lists what `f` uses from outside; its inputs are
    // passed detached, so that they are not among those.
    let detached: Vec<Tensor<T>> = saved.iter().map(Tensor::detach).collect();
    let (out, mut scope) = checkpoint_scope::run(Scope::discover(), || f(&detached));
    let out = out?;
    // `f` may return an outside tensor as it is.
    scope.note_use(&out);
    let Scope::Discover { found, .. } = scope else {
        unreachable!("the first call's scope")
    };
    let outside: Vec<Outside<T>> = found
        .iter()
        .map(|t| Outside {
            node: Arc::clone(t.node().expect("an outside tensor requires grad")),
            shape: t.inner.shape.clone(),
        })
        .collect();
    let n = saved.len();
    let edges: Vec<&Tensor<T>> = inputs.iter().copied().chain(&found).collect();
    let out = out.detach();
    Ok(Tensor::record(
        "checkpoint",
        out.shared_data(),
        out.shape().to_vec(),
        &edges,
        move |gy, ctx| {
            // Fresh leaves stand for the inputs, so the nested pass stops at the segment's
            // boundary; their gradients are the node's outputs.
            let leaves: Vec<Tensor<T>> = saved
                .iter()
                .zip(&ctx.needs)
                .map(|(x, &need)| {
                    let x = x.detach();
                    if need {
                        x.requires_grad()
                    } else {
                        x
                    }
                })
                .collect();
            let scope = Scope::recompute(outside.iter().map(|o| key(&o.node)));
            let (y, scope) = checkpoint_scope::run(scope, || enable_grad(|| f(&leaves)));
            let y = y?;
            let Scope::Recompute {
                mut stand_ins,
                created,
            } = scope
            else {
                unreachable!("the recomputation's scope")
            };
            // `f` returned an outside tensor as it is.
            let y = match y.node().and_then(|node| stand_ins.get_mut(&key(node))) {
                Some(slot) => slot
                    .get_or_insert_with(|| y.detach().requires_grad())
                    .clone(),
                None => y,
            };
            let mut targets: Vec<Tensor<T>> = Vec::with_capacity(n + outside.len());
            let mut wanted: Vec<usize> = (0..n).filter(|&i| ctx.needs[i]).collect();
            targets.extend(wanted.iter().map(|&i| leaves[i].clone()));
            for (j, o) in outside.iter().enumerate() {
                let Some(stand_in) = stand_ins.remove(&key(&o.node)).flatten() else {
                    return Err(invalid(format!(
                        "{} was used by f's first call but not by its recomputation: {SAME}",
                        describe(&o.node, &o.shape)
                    )));
                };
                targets.push(stand_in);
                wanted.push(n + j);
            }
            check_boundary(&y, &targets, &created)?;
            let mut grads = vec![None; n + outside.len()];
            if !y.needs_grad() {
                return Ok(grads);
            }
            let mut opts = BackwardOptions::new().create_graph(ctx.create_graph);
            if let Some(exec) = current_exec() {
                opts.exec = exec;
            }
            let got = grad(&[&y], &[gy], &targets.iter().collect::<Vec<_>>(), &opts)?;
            for (i, g) in wanted.into_iter().zip(got) {
                grads[i] = g;
            }
            Ok(grads)
        },
    ))
}

/// A tensor the segment uses from outside: its node (also an edge of the checkpoint node,
/// which keeps it alive, and so its identity) and shape.
struct Outside<T: Element> {
    node: Arc<Node<T>>,
    shape: Shape,
}

/// What the errors about a recomputation that differs from the first call ask of `f`.
const SAME: &str = "f must compute the same thing each time with the same tensors, record \
                    its ops on the calling thread (not on other threads, as branch-parallel \
                    modules do) and create no leaf that requires grad";

fn invalid(message: String) -> Error {
    Error::Invalid {
        op: "checkpoint",
        message,
    }
}

/// How an error names the tensor of `node`.
fn describe<T: Element>(node: &Node<T>, shape: &[usize]) -> String {
    match node.kind {
        NodeKind::Leaf { .. } => format!(
            "the leaf of shape {shape:?} made to require grad at {}",
            node.location
        ),
        NodeKind::Op { .. } => format!(
            "the result of `{}` of shape {shape:?} created at {}",
            node.op, node.location
        ),
    }
}

/// Checks that the recomputed graph below `y` ends at the stand-ins in `targets`: every
/// other node it reaches was recorded by the recomputation (in `created`). Anything else
/// would take the nested pass into the enclosing graph, or lose a gradient.
fn check_boundary<T: Element>(
    y: &Tensor<T>,
    targets: &[Tensor<T>],
    created: &FxHashSet<usize>,
) -> Result<()> {
    let Some(root) = y.node() else {
        return Ok(());
    };
    let stops: FxHashSet<usize> = targets.iter().filter_map(|t| t.node().map(key)).collect();
    let mut seen: FxHashSet<usize> = FxHashSet::default();
    let mut stack: Vec<(&Arc<Node<T>>, &[usize])> = vec![(root, y.shape())];
    while let Some((node, shape)) = stack.pop() {
        let k = key(node);
        if stops.contains(&k) || !seen.insert(k) {
            continue;
        }
        match &node.kind {
            NodeKind::Op { inputs, .. } if created.contains(&k) => {
                stack.extend(inputs.iter().map(|e| (&e.node, e.shape.as_slice())));
            }
            _ => {
                return Err(invalid(format!(
                    "the recomputation of f reached {}, which its first call did not use: \
                     {SAME}",
                    describe(node, shape)
                )));
            }
        }
    }
    Ok(())
}
