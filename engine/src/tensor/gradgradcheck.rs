//! `gradgradcheck`: a function's second derivatives, from a backward pass over a recorded
//! (`create_graph`) gradient, against central finite differences of its first-order
//! gradient, in `f64`.

use super::backward::grad;
use super::{BackwardOptions, GradcheckTolerance, Tensor};
use crate::error::{Error, Result};

/// Checks the second derivatives of the one-element function `f` at `inputs`: every entry
/// `∂²f / ∂xₐ[i] ∂x_b[j]` of its Hessian over all the inputs' elements, as double backward
/// computes it (the first-order gradient recorded with `create_graph`, then differentiated
/// once per element of it, with `opts`' scheduler and threads), against central finite
/// differences of that first-order gradient (also computed with `create_graph`, step
/// `tol.step`). `f` is called on fresh leaves that require grad, with recording on, and may
/// itself call [`grad`](crate::grad) (for example to penalise a gradient); it must reduce to
/// one element.
///
/// Catches a backward that is right to first order but wrong, or not recorded, to second
/// order (a [`CustomOp`](crate::CustomOp) whose backward computes on raw values, say), which
/// [`gradcheck`](crate::gradcheck) does not see.
///
/// Returns the analytic Hessian, row `r` for element `r` of the inputs' elements taken in
/// order (input 0's first), or an [`Error::Invalid`] (op `gradgradcheck`) naming the first
/// pair of inputs and elements that disagree, with both values. It costs one recorded
/// backward pass per element, plus two first-order passes per element for the differences:
/// meant for small inputs.
///
/// ```
/// use backflow::{grad, gradgradcheck, BackwardOptions, GradcheckTolerance, Tensor};
/// let x = Tensor::<f64>::from_vec(vec![0.5, -1.0], &[2]).unwrap();
/// let opts = BackwardOptions::new();
/// // Second derivatives of x·sin(x), summed.
/// let h = gradgradcheck(|v| Ok((&v[0] * &v[0].sin()).sum()), &[&x], &opts, Default::default())
///     .unwrap();
/// let d2 = |x: f64| 2.0 * x.cos() - x * x.sin();
/// assert!((h[0][0] - d2(0.5)).abs() < 1e-12 && h[0][1] == 0.0);
/// // A function that differentiates inside: the squared norm of ∇(Σ x³).
/// gradgradcheck(
///     |v| {
///         let inner = grad(&[&v[0].powf(3.0).sum()], &[], &[&v[0]], &opts.clone().create_graph(true))?;
///         Ok(inner[0].as_ref().expect("depends on x").powf(2.0).sum())
///     },
///     &[&x],
///     &opts,
///     GradcheckTolerance::default(),
/// )
/// .unwrap();
/// ```
pub fn gradgradcheck(
    f: impl Fn(&[Tensor<f64>]) -> Result<Tensor<f64>>,
    inputs: &[&Tensor<f64>],
    opts: &BackwardOptions,
    tol: GradcheckTolerance,
) -> Result<Vec<Vec<f64>>> {
    let analytic = hessian(&f, inputs, opts)?;
    let sizes: Vec<usize> = inputs.iter().map(|t| t.numel()).collect();
    let total: usize = sizes.iter().sum();
    let mut numeric = vec![vec![0.0; total]; total];
    // Column c of the numeric Hessian: differences of the whole gradient along element c.
    let mut column = 0;
    for (b, x) in inputs.iter().enumerate() {
        for j in 0..x.numel() {
            let probe = |delta: f64| -> Result<Vec<f64>> {
                let mut values = x.to_vec();
                values[j] += delta;
                let mut xs: Vec<Tensor<f64>> = inputs.iter().map(|&t| t.clone()).collect();
                xs[b] = Tensor::from_vec(values, x.shape())?;
                gradient(&f, &xs.iter().collect::<Vec<_>>(), opts)
            };
            let (plus, minus) = (probe(tol.step)?, probe(-tol.step)?);
            for (row, (p, m)) in numeric.iter_mut().zip(plus.iter().zip(&minus)) {
                row[column] = (p - m) / (2.0 * tol.step);
            }
            column += 1;
        }
    }
    let at = |flat: usize| -> (usize, usize) {
        let mut rest = flat;
        for (input, &n) in sizes.iter().enumerate() {
            if rest < n {
                return (input, rest);
            }
            rest -= n;
        }
        unreachable!("an element of the inputs")
    };
    for (r, (arow, nrow)) in analytic.iter().zip(&numeric).enumerate() {
        for (c, (&a, &n)) in arow.iter().zip(nrow).enumerate() {
            // A NaN on either side counts as a disagreement.
            let within = (a - n).abs() <= tol.atol + tol.rtol * n.abs();
            if !within {
                let ((ia, ea), (ib, eb)) = (at(r), at(c));
                return Err(Error::Invalid {
                    op: "gradgradcheck",
                    message: format!(
                        "d²f / d(input {ia} (shape {:?}) element {ea}) d(input {ib} (shape \
                         {:?}) element {eb}): double backward gives {a}, finite differences \
                         of the gradient give {n}",
                        inputs[ia].shape(),
                        inputs[ib].shape()
                    ),
                });
            }
        }
    }
    Ok(analytic)
}

/// `f` at `inputs` on fresh leaves, with its gradient recorded (`create_graph`): the leaves,
/// and per input its gradient (`None` where `f` does not depend on it).
type Recorded = (Vec<Tensor<f64>>, Vec<Option<Tensor<f64>>>);

fn recorded_gradient(
    f: &impl Fn(&[Tensor<f64>]) -> Result<Tensor<f64>>,
    inputs: &[&Tensor<f64>],
    opts: &BackwardOptions,
) -> Result<Recorded> {
    let leaves: Vec<Tensor<f64>> = inputs.iter().map(|t| t.detach().requires_grad()).collect();
    let out = f(&leaves)?;
    if out.numel() != 1 {
        return Err(Error::Invalid {
            op: "gradgradcheck",
            message: format!(
                "the function returned shape {:?}; it must reduce to one element",
                out.shape()
            ),
        });
    }
    if !out.needs_grad() {
        return Ok((leaves, vec![None; inputs.len()]));
    }
    let g = grad(
        &[&out],
        &[],
        &leaves.iter().collect::<Vec<_>>(),
        &opts.clone().create_graph(true),
    )?;
    Ok((leaves, g))
}

/// The first-order gradient of `f` at `inputs`, all inputs' elements in order.
fn gradient(
    f: &impl Fn(&[Tensor<f64>]) -> Result<Tensor<f64>>,
    inputs: &[&Tensor<f64>],
    opts: &BackwardOptions,
) -> Result<Vec<f64>> {
    let (_, g) = recorded_gradient(f, inputs, opts)?;
    Ok(g.iter()
        .zip(inputs)
        .flat_map(|(g, x)| {
            g.as_ref()
                .map_or_else(|| vec![0.0; x.numel()], |g| g.to_vec())
        })
        .collect())
}

/// The Hessian of `f` at `inputs` by double backward: one pass over the recorded gradient
/// per element of it, seeded with that element's indicator.
fn hessian(
    f: &impl Fn(&[Tensor<f64>]) -> Result<Tensor<f64>>,
    inputs: &[&Tensor<f64>],
    opts: &BackwardOptions,
) -> Result<Vec<Vec<f64>>> {
    let (leaves, first) = recorded_gradient(f, inputs, opts)?;
    let targets: Vec<&Tensor<f64>> = leaves.iter().collect();
    let total: usize = inputs.iter().map(|t| t.numel()).sum();
    let again = opts.clone().retain_graph(true);
    let mut rows = Vec::with_capacity(total);
    for (g, x) in first.iter().zip(inputs) {
        for i in 0..x.numel() {
            let row: Vec<f64> = match g {
                // A gradient that records nothing is constant: its derivatives are zero.
                Some(g) if g.needs_grad() => {
                    let mut seed = vec![0.0; g.numel()];
                    seed[i] = 1.0;
                    let seed = Tensor::from_vec(seed, g.shape())?;
                    let second = grad(&[g], &[&seed], &targets, &again)?;
                    second
                        .iter()
                        .zip(inputs)
                        .flat_map(|(s, x)| {
                            s.as_ref()
                                .map_or_else(|| vec![0.0; x.numel()], |s| s.to_vec())
                        })
                        .collect()
                }
                _ => vec![0.0; total],
            };
            rows.push(row);
        }
    }
    Ok(rows)
}
