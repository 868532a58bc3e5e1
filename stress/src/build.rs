//! Turning a [`Recipe`] into tensors: leaves, ops, roots and their `grad_outputs`.
//!
//! Every op accepts any shape of the broadcast family and coerces where it must (matmul
//! broadcasts both sides to `[d, d]`; concat broadcasts both sides to a common shape). A
//! bound on each tensor's magnitude is tracked, and an output whose bound passes
//! [`SQUASH_ABOVE`] goes through `tanh`, so values and gradients stay finite at any depth.

use super::recipe::{FaultKind, OpKind, Recipe};
use backflow::{Error, Result, Tensor};
use backflow_kernels::{broadcast_shapes, Element};

/// Outputs whose magnitude bound exceeds this pass through `tanh`.
pub const SQUASH_ABOVE: f64 = 4.0;

/// The op name of an injected fault, as backward errors report it.
pub const FAULT_OP: &str = "stress_fault";

/// The marker in every injected fault's message (and panic payload).
pub const INJECTED: &str = "injected fault";

/// A recipe's tensors.
pub struct TensorGraph<T: Element> {
    /// The leaves, in recipe order; they require grad unless built for a forward only.
    pub leaves: Vec<Tensor<T>>,
    /// The roots, one per seed (repeats allowed).
    pub roots: Vec<Tensor<T>>,
    /// The gradient seeded at each root.
    pub grad_outputs: Vec<Tensor<T>>,
    /// Tensor nodes recorded: leaves, ops, coercions, squashes and faults.
    pub nodes: usize,
}

impl Recipe {
    /// The leaf values (plain tensors, no grad), from `value_seed`.
    pub fn leaf_values<T: Element>(&self) -> Vec<Tensor<T>> {
        self.leaves
            .iter()
            .enumerate()
            .map(|(j, shape)| {
                let dims = shape.dims(self.dim);
                let seed = self.value_seed.wrapping_mul(31).wrapping_add(j as u64);
                scaled(&Tensor::<T>::randn(&dims, seed), &dims)
            })
            .collect()
    }

    /// Builds the graph on fresh leaves that require grad.
    pub fn build<T: Element>(&self) -> Result<TensorGraph<T>> {
        let leaves: Vec<Tensor<T>> = self
            .leaf_values()
            .into_iter()
            .map(Tensor::requires_grad)
            .collect();
        self.build_on(&leaves)
    }

    /// Builds the graph on the given leaves (one per recipe leaf, any family shape), so
    /// that several recipes can share them.
    pub fn build_on<T: Element>(&self, leaves: &[Tensor<T>]) -> Result<TensorGraph<T>> {
        self.build_with(leaves, &mut |_, t| Ok(t))
    }

    /// Builds the graph on the given leaves like [`Recipe::build_on`], passing each op's
    /// output through `each(op index, output)` before anything consumes it: the function
    /// may register hooks on it or wrap it in an op of its own (the re-entrant check's
    /// custom op does). Whatever it returns takes the output's place, as input of later
    /// ops and as root.
    pub fn build_with<T: Element>(
        &self,
        leaves: &[Tensor<T>],
        each: &mut dyn FnMut(usize, Tensor<T>) -> Result<Tensor<T>>,
    ) -> Result<TensorGraph<T>> {
        assert_eq!(
            leaves.len(),
            self.leaves.len(),
            "build_on: one tensor per recipe leaf"
        );
        let mut tensors: Vec<Tensor<T>> = leaves.to_vec();
        let mut bounds: Vec<f64> = leaves.iter().map(|_| 2.0).collect();
        let mut nodes = leaves.len();
        for (i, op) in self.ops.iter().enumerate() {
            let inputs: Vec<&Tensor<T>> = op.inputs.iter().map(|&j| &tensors[j as usize]).collect();
            let b: Vec<f64> = op.inputs.iter().map(|&j| bounds[j as usize]).collect();
            let (mut t, mut bound, n) = apply(op.kind, &inputs, &b, self.dim)?;
            nodes += n;
            if bound > SQUASH_ABOVE {
                (t, bound) = (t.tanh(), 1.0);
                nodes += 1;
            }
            if let Some(&(_, kind)) = self.faults.iter().find(|f| f.0 as usize == i) {
                t = fault(&t, kind);
                nodes += 1;
            }
            let t = each(i, t)?;
            tensors.push(t);
            bounds.push(bound);
        }
        let roots: Vec<Tensor<T>> = self
            .roots
            .iter()
            .map(|&r| tensors[r as usize].clone())
            .collect();
        let grad_outputs = roots
            .iter()
            .enumerate()
            .map(|(k, r)| {
                let seed = self.value_seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(k as u64 + 1));
                scaled(&Tensor::<T>::randn(r.shape(), seed), r.shape())
            })
            .collect();
        Ok(TensorGraph {
            leaves: leaves.to_vec(),
            roots,
            grad_outputs,
            nodes,
        })
    }

    /// The objective whose gradient a backward pass computes, `Σ_k ⟨grad_outputs[k],
    /// roots[k]⟩`, evaluated in f64 on the given leaf values (for finite differences).
    pub fn objective(&self, leaf_values: &[Tensor<f64>]) -> Result<f64> {
        let g = self.build_on(leaf_values)?;
        Ok(g.roots
            .iter()
            .zip(&g.grad_outputs)
            .map(|(r, go)| {
                r.data()
                    .iter()
                    .zip(go.data())
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
            })
            .sum())
    }
}

/// Half the given samples, clamped to `[-2, 2]`.
fn scaled<T: Element>(t: &Tensor<T>, dims: &[usize]) -> Tensor<T> {
    let two = T::from_f64(2.0);
    let data = t
        .data()
        .iter()
        .map(|&v| (v * T::from_f64(0.5)).max(-two).min(two))
        .collect();
    Tensor::from_vec(data, dims).expect("same shape")
}

/// An identity op whose backward fails as `kind` says.
fn fault<T: Element>(t: &Tensor<T>, kind: FaultKind) -> Tensor<T> {
    Tensor::from_op(
        FAULT_OP,
        t.to_vec(),
        t.shape().to_vec(),
        &[t],
        move |_, _| match kind {
            FaultKind::Panic => panic!("{INJECTED}: panic in backward"),
            FaultKind::Error => Err(Error::Invalid {
                op: FAULT_OP,
                message: format!("{INJECTED}: error in backward"),
            }),
        },
    )
}

/// A reshape that stays in the shape family.
fn reshaped(shape: &[usize]) -> Vec<usize> {
    match *shape {
        [] => vec![1, 1],
        [1] => vec![],
        [n] => vec![n, 1],
        [1, n] => vec![n],
        [n, 1] => vec![1, n],
        _ => shape.to_vec(),
    }
}

/// `t` broadcast to `shape`, and the nodes that took (0 when it already had it).
fn widen<T: Element>(t: &Tensor<T>, shape: &[usize]) -> Result<(Tensor<T>, usize)> {
    if t.shape() == shape {
        Ok((t.clone(), 0))
    } else {
        Ok((t.broadcast_to(shape)?, 1))
    }
}

/// Records `kind` on `x`; returns the output, its magnitude bound, and the nodes recorded.
fn apply<T: Element>(
    kind: OpKind,
    x: &[&Tensor<T>],
    b: &[f64],
    dim: usize,
) -> Result<(Tensor<T>, f64, usize)> {
    use OpKind::*;
    let c = T::from_f64;
    let a = x[0];
    let rank = a.rank();
    let last = a.shape().last().copied().unwrap_or(1) as f64;
    Ok(match kind {
        Affine(m, d) => (a.affine(c(m), c(d)), m.abs() * b[0] + d.abs(), 1),
        Neg => (-a, b[0], 1),
        DivScalar(k) => (a / c(k), b[0] / k.abs(), 1),
        Sin => (a.sin(), 1.0, 1),
        Cos => (a.cos(), 1.0, 1),
        Tanh => (a.tanh(), 1.0, 1),
        Sigmoid => (a.sigmoid(), 1.0, 1),
        Exp if b[0] <= 2.0 => (a.exp(), b[0].exp(), 1),
        Exp => (a.tanh().exp(), 1f64.exp(), 2),
        Add => (a.try_add(x[1])?, b[0] + b[1], 1),
        Sub => (a.try_sub(x[1])?, b[0] + b[1], 1),
        Mul => (a.try_mul(x[1])?, b[0] * b[1], 1),
        Div => (a.try_div(&(x[1].tanh() + c(2.0)))?, b[0], 3),
        Matmul => {
            let (p, n1) = widen(a, &[dim, dim])?;
            let (q, n2) = widen(x[1], &[dim, dim])?;
            (p.matmul(&q)?, dim as f64 * b[0] * b[1], 1 + n1 + n2)
        }
        Sum => (a.sum(), a.numel() as f64 * b[0], 1),
        Mean => (a.mean(), b[0], 1),
        SumAxis | Softmax | LogSoftmax if rank == 0 => (a.tanh(), 1.0, 1),
        SumAxis => (a.sum_axis(rank - 1)?, last * b[0], 1),
        Softmax => (a.softmax(), 1.0, 1),
        LogSoftmax => (a.log_softmax(), 2.0 * b[0] + last.ln() + 1.0, 1),
        Transpose if rank == 2 => (a.t()?, b[0], 1),
        Reshape | Transpose => (a.reshape(&reshaped(a.shape()))?, b[0], 1),
        Concat => {
            let shape =
                broadcast_shapes(a.shape(), x[1].shape()).ok_or_else(|| Error::Invalid {
                    op: "stress concat",
                    message: format!(
                        "shapes {:?} and {:?} do not broadcast",
                        a.shape(),
                        x[1].shape()
                    ),
                })?;
            let (mut p, n1) = widen(a, &shape)?;
            let (mut q, n2) = widen(x[1], &shape)?;
            let mut n = 2 + n1 + n2;
            if shape.is_empty() {
                (p, q, n) = (p.reshape(&[1])?, q.reshape(&[1])?, n + 2);
            }
            let rows = p.shape()[0] as f64;
            let joined = Tensor::concat(&[&p, &q], 0)?;
            (joined.sum_axis(0)?, rows * (b[0] + b[1]), n)
        }
    })
}
