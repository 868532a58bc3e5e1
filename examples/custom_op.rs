//! A user-defined op, softplus(x) = ln(1 + eˣ), with its derivative σ(x) = 1 / (1 + e⁻ˣ),
//! defined through the `CustomOp` trait and joined to the graph with `Tensor::apply_op`.
//! It runs under every scheduler like a built-in op, and passes a finite-difference
//! gradcheck in f64. Its backward is written with tensor ops, so it also has a second
//! derivative (σ'(x) = σ(x)(1 − σ(x))) under `create_graph`.
//!
//! Run: `cargo run --release --example custom_op`. Expected output:
//!
//! ```text
//! softplus([-2, 0, 3])    = [0.126928, 0.693147, 3.048587]
//! dfs      : d/dx Σ softplus = [0.119203, 0.500000, 0.952574]
//! kahn     : d/dx Σ softplus = [0.119203, 0.500000, 0.952574]
//! parallel : d/dx Σ softplus = [0.119203, 0.500000, 0.952574]
//! wide graph (48 branches, 192 nodes): bitwise equal across dfs, kahn, parallel at 1-4 threads
//! gradcheck (f64, central differences): max |analytic - numeric| < 1e-8: ok
//! second derivative at 0: 0.250000 (closed form σ(0)(1 − σ(0)) = 0.25)
//! ```

use backflow::{
    grad, gradcheck, BackwardCtx, BackwardOptions, CustomOp, Element, GradcheckTolerance, Result,
    Scheduler, Tensor,
};

/// softplus(x) = ln(1 + eˣ), elementwise.
struct Softplus;

impl<T: Element> CustomOp<T> for Softplus {
    fn name(&self) -> &'static str {
        "softplus"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let x = inputs[0];
        // Stable form: max(x, 0) + ln(1 + e^-|x|).
        let data = x
            .data()
            .iter()
            .map(|&v| {
                let v = Element::to_f64(v);
                <T as Element>::from_f64(v.max(0.0) + (-v.abs()).exp().ln_1p())
            })
            .collect();
        Tensor::from_vec(data, x.shape())
    }

    fn backward(
        &self,
        inputs: &[Tensor<T>],
        _output: &Tensor<T>,
        grad: &Tensor<T>,
        _ctx: &BackwardCtx,
    ) -> Result<Vec<Option<Tensor<T>>>> {
        // d/dx softplus(x) = σ(x); with tensor ops, so create_graph records it.
        Ok(vec![Some(grad * &inputs[0].sigmoid())])
    }
}

fn show(values: &[f32]) -> String {
    let parts: Vec<String> = values.iter().map(|v| format!("{v:.6}")).collect();
    format!("[{}]", parts.join(", "))
}

/// Every scheduler, `Parallel` at 1 to 4 threads.
fn configs() -> Vec<BackwardOptions> {
    let mut all = vec![
        BackwardOptions::new().scheduler(Scheduler::Dfs),
        BackwardOptions::new().scheduler(Scheduler::Kahn),
    ];
    all.extend((1..=4).map(|t| {
        BackwardOptions::new()
            .scheduler(Scheduler::Parallel)
            .threads(t)
    }));
    all
}

/// `branches` branches `Σ softplus(x @ W_b)` summed; returns x's gradient as bits.
fn wide(branches: u64, opts: &BackwardOptions) -> Result<Vec<u32>> {
    let x = Tensor::<f32>::randn(&[8, 8], 0).requires_grad();
    let mut loss: Option<Tensor> = None;
    for b in 0..branches {
        let w = &Tensor::randn(&[8, 8], 1 + b) * 0.3;
        let s = Tensor::apply_op(Softplus, &[&x.matmul(&w)?])?.sum();
        loss = Some(match loss {
            Some(l) => &l + &s,
            None => s,
        });
    }
    loss.expect("at least one branch").backward_with(opts)?;
    Ok(x.grad()
        .expect("x has a gradient")
        .data()
        .iter()
        .map(|v| v.to_bits())
        .collect())
}

fn main() -> Result<()> {
    let x0 = vec![-2.0f32, 0.0, 3.0];
    let y = Tensor::apply_op(Softplus, &[&Tensor::from_vec(x0.clone(), &[3])?])?;
    println!("softplus([-2, 0, 3])    = {}", show(&y.to_vec()));

    for scheduler in Scheduler::ALL {
        let x = Tensor::from_vec(x0.clone(), &[3])?.requires_grad();
        let opts = BackwardOptions::new().scheduler(scheduler).threads(2);
        Tensor::apply_op(Softplus, &[&x])?
            .sum()
            .backward_with(&opts)?;
        let g = x.grad().expect("x has a gradient");
        println!(
            "{:<9}: d/dx Σ softplus = {}",
            scheduler.name(),
            show(&g.to_vec())
        );
    }

    // 48 branches of matmul, softplus, sum; 47 adds; x: 3·48 + 47 + 1 = 192 nodes.
    const BRANCHES: u64 = 48;
    let reference = wide(BRANCHES, &configs()[0])?;
    for opts in configs() {
        assert_eq!(wide(BRANCHES, &opts)?, reference, "{opts:?} differs");
    }
    println!(
        "wide graph ({BRANCHES} branches, {} nodes): bitwise equal across dfs, kahn, parallel at 1-4 threads",
        3 * BRANCHES + (BRANCHES - 1) + 1
    );

    // Gradcheck in f64: f(x) = Σ w ⊙ softplus(x ⊙ x - 1), against central differences.
    let w = Tensor::<f64>::randn(&[2, 5], 7);
    let f = |x: &Tensor<f64>| -> Result<Tensor<f64>> {
        let inner = &(x * x) - 1.0;
        Ok((&Tensor::apply_op(Softplus, &[&inner])? * &w).sum())
    };
    let x = Tensor::<f64>::randn(&[2, 5], 8);
    let tol = GradcheckTolerance {
        atol: 1e-8,
        rtol: 0.0,
        ..GradcheckTolerance::default()
    };
    for opts in configs() {
        gradcheck(|v| f(&v[0]), &[&x], &opts, tol)?;
    }
    println!("gradcheck (f64, central differences): max |analytic - numeric| < 1e-8: ok");

    // Second derivative through the custom backward.
    let x = Tensor::<f64>::scalar(0.0).requires_grad();
    let y = Tensor::apply_op(Softplus, &[&x])?;
    let recorded = BackwardOptions::new().create_graph(true);
    let d1 = grad(&[&y], &[], &[&x], &recorded)?[0]
        .clone()
        .expect("y depends on x");
    let d2 = grad(&[&d1], &[], &[&x], &BackwardOptions::new())?[0]
        .clone()
        .expect("d1 depends on x");
    println!(
        "second derivative at 0: {:.6} (closed form σ(0)(1 − σ(0)) = 0.25)",
        d2.item()
    );
    Ok(())
}
