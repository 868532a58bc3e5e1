//! A user-defined custom op stress-tested as a user would: `backflow-stress` as a
//! dev-dependency, `check_graph` over a wide graph that shares the op's inputs between
//! branches, under every scheduler × thread count × accumulation mode, alone and from
//! concurrent callers. A broken op (its backward depends on which thread runs it) is caught.

use backflow::{BackwardCtx, CustomOp, Result, Tensor};
use backflow_stress::{check_graph, GraphStress};
use std::sync::atomic::{AtomicU64, Ordering};

/// softplus(x) = ln(1 + eˣ), with d/dx = sigmoid(x).
struct Softplus;

impl CustomOp<f64> for Softplus {
    fn name(&self) -> &'static str {
        "softplus"
    }
    fn forward(&self, inputs: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
        Ok((&inputs[0].exp() + 1.0).ln())
    }
    fn backward(
        &self,
        inputs: &[Tensor<f64>],
        _output: &Tensor<f64>,
        g: &Tensor<f64>,
        _ctx: &BackwardCtx,
    ) -> Result<Vec<Option<Tensor<f64>>>> {
        Ok(vec![Some(g * &inputs[0].sigmoid())])
    }
}

/// A broken softplus: its gradient is off by a tiny amount on every other call, as a racy
/// cache inside an op would be.
struct FlakySoftplus(&'static AtomicU64);

impl CustomOp<f64> for FlakySoftplus {
    fn name(&self) -> &'static str {
        "flaky_softplus"
    }
    fn forward(&self, inputs: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
        Softplus.forward(inputs)
    }
    fn backward(
        &self,
        inputs: &[Tensor<f64>],
        output: &Tensor<f64>,
        g: &Tensor<f64>,
        ctx: &BackwardCtx,
    ) -> Result<Vec<Option<Tensor<f64>>>> {
        let calls = self.0.fetch_add(1, Ordering::Relaxed);
        let good = Softplus.backward(inputs, output, g, ctx)?;
        if calls % 2 == 1 {
            return Ok(vec![good[0].as_ref().map(|t| t * (1.0 + 1e-12))]);
        }
        Ok(good)
    }
}

/// 24 branches over two shared leaves, each through the op, summed.
fn wide_graph(
    op: impl Fn(&Tensor<f64>) -> Result<Tensor<f64>>,
) -> Result<(Tensor<f64>, Vec<Tensor<f64>>)> {
    let x = Tensor::<f64>::randn(&[8], 1).requires_grad();
    let w = Tensor::<f64>::randn(&[8], 2).requires_grad();
    let mut total: Option<Tensor<f64>> = None;
    for k in 0..24 {
        let h = op(&(&(&x * (0.1 * k as f64)) + &w))?;
        let branch = (&op(&(&h * &w))? * &x).sum();
        total = Some(match total {
            None => branch,
            Some(t) => &t + &branch,
        });
    }
    Ok((total.expect("24 branches"), vec![x, w]))
}

fn quick() -> GraphStress {
    GraphStress {
        threads: vec![1, 2, 4],
        repeats: 2,
        concurrent_callers: 3,
        ..GraphStress::default()
    }
}

#[test]
fn a_correct_custom_op_passes_every_configuration() {
    let report = check_graph("softplus", &quick(), || {
        wide_graph(|t| Tensor::apply_op(Softplus, &[t]))
    })
    .unwrap();
    // 2 modes × (Dfs + Kahn + Parallel at 3 thread counts) = 10 configurations.
    assert_eq!(report.configs, 10);
    assert_eq!(report.runs, 1 + 10 * 2 + 3 * 10);
}

#[test]
fn a_flaky_custom_op_is_caught_with_its_configuration() {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let err = check_graph("flaky", &quick(), || {
        wide_graph(|t| Tensor::apply_op(FlakySoftplus(&CALLS), &[t]))
    })
    .unwrap_err();
    assert!(err.starts_with("flaky under "), "{err}");
    assert!(err.contains("vs reference"), "{err}");
}

#[test]
fn a_failing_build_is_reported() {
    let err = check_graph("bad shapes", &quick(), || {
        let x = Tensor::<f64>::zeros(&[2]).requires_grad();
        let y = x.try_add(&Tensor::zeros(&[3]))?;
        Ok((y.sum(), vec![x]))
    })
    .unwrap_err();
    assert!(
        err.contains("bad shapes") && err.contains("[2]") && err.contains("[3]"),
        "{err}"
    );
}
