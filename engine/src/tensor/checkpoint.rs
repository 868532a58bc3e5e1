//! Gradient checkpointing: run a segment of the forward pass without recording it, and run
//! it again, recorded, when the backward pass reaches it (a nested pass on whichever thread
//! gets there).

use super::backward::grad;
use super::grad_mode::{enable_grad, no_grad};
use super::task::current_exec;
use super::{BackwardOptions, Tensor};
use crate::error::Result;
use backflow_kernels::Element;

/// Runs `f(inputs)` without recording its graph, and records it as one node whose backward
/// runs `f` again under recording and differentiates it with a nested backward pass (with
/// the scheduler, threads and accumulation of the pass that reaches it). Memory for `f`'s
/// intermediate tensors is spent only while that node's backward runs.
///
/// `f` must compute the same values each time (the recomputation must match the forward).
/// Gradients equal those without the checkpoint (in `Deterministic` mode, bit for bit when
/// the segment's inputs receive no other contributions). Higher-order gradients do not flow
/// through a checkpoint: with `create_graph`, its gradients are recorded only with respect
/// to the recomputed segment.
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
/// ```
#[track_caller]
pub fn checkpoint<T, F>(f: F, inputs: &[&Tensor<T>]) -> Result<Tensor<T>>
where
    T: Element,
    F: Fn(&[Tensor<T>]) -> Result<Tensor<T>> + Send + Sync + 'static,
{
    let saved: Vec<Tensor<T>> = inputs.iter().map(|&t| t.clone()).collect();
    let out = no_grad(|| f(&saved))?.detach();
    Ok(Tensor::record(
        "checkpoint",
        out.shared_data(),
        out.shape().to_vec(),
        inputs,
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
            let y = enable_grad(|| f(&leaves))?;
            let mut grads = vec![None; leaves.len()];
            if !y.needs_grad() {
                return Ok(grads);
            }
            let wanted: Vec<usize> = (0..leaves.len()).filter(|&i| ctx.needs[i]).collect();
            let targets: Vec<Tensor<T>> = wanted.iter().map(|&i| leaves[i].clone()).collect();
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
