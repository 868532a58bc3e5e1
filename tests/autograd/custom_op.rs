//! Custom ops through `CustomOp` and `Tensor::apply_op`: closed-form gradients, a
//! finite-difference gradcheck in f64, gradients of gradients, bitwise agreement across
//! schedulers on a wide graph, and errors that name the op. Under every scheduler,
//! `Parallel` at 2 and 4 threads.

use backflow::{
    grad, gradcheck, no_grad, BackwardCtx, BackwardOptions, CustomOp, Error, GradcheckTolerance,
    Result, Scheduler, Tensor,
};

type T64 = Tensor<f64>;

use crate::common::configs;

/// y = x³; dy/dx = 3x², written with tensor ops so that it can be differentiated again.
struct Cube;

impl<T: backflow::Element> CustomOp<T> for Cube {
    fn name(&self) -> &'static str {
        "cube"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let x = inputs[0];
        Ok(&(x * x) * x)
    }
    fn backward(
        &self,
        inputs: &[Tensor<T>],
        _: &Tensor<T>,
        g: &Tensor<T>,
        _: &BackwardCtx,
    ) -> Result<Vec<Option<Tensor<T>>>> {
        let x = &inputs[0];
        Ok(vec![Some(g * &(&(x * x) * T::from_f64(3.0)))])
    }
}

/// z = a·sin(b) with broadcasting of b; dz/da = sin b, dz/db = a·cos b summed back to b's
/// shape. Uses its saved output: z / a would be sin b, but it recomputes to stay exact.
struct ScaledSin;

impl CustomOp<f64> for ScaledSin {
    fn name(&self) -> &'static str {
        "scaled_sin"
    }
    fn forward(&self, inputs: &[&T64]) -> Result<T64> {
        inputs[0].try_mul(&inputs[1].sin())
    }
    fn backward(
        &self,
        inputs: &[T64],
        output: &T64,
        g: &T64,
        ctx: &BackwardCtx,
    ) -> Result<Vec<Option<T64>>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        assert_eq!(output.shape(), g.shape());
        let ga = ctx
            .needs(0)
            .then(|| (g * &b.sin()).sum_to(a.shape()))
            .transpose()?;
        let gb = ctx
            .needs(1)
            .then(|| (&(g * a) * &b.cos()).sum_to(b.shape()))
            .transpose()?;
        Ok(vec![ga, gb])
    }
}

#[test]
fn cube_has_the_closed_form_gradient() {
    // d/dx Σ x³ = 3x².
    for opts in configs() {
        let x = T64::from_vec(vec![-1.5, 0.0, 2.0], &[3])
            .unwrap()
            .requires_grad();
        let y = Tensor::apply_op(Cube, &[&x]).unwrap();
        assert_eq!(y.to_vec(), vec![-3.375, 0.0, 8.0]);
        assert_eq!(y.grad_fn().unwrap().op(), "cube");
        y.sum().backward_with(&opts).unwrap();
        assert_eq!(
            x.grad().unwrap().to_vec(),
            vec![6.75, 0.0, 12.0],
            "{opts:?}"
        );
    }
}

#[test]
fn gradcheck_against_finite_differences() {
    let w = T64::randn(&[3, 4], 1);
    let f = move |x: &T64| -> T64 {
        let cubed = Tensor::apply_op(Cube, &[&x.tanh()]).unwrap();
        let b = T64::randn(&[1, 4], 2);
        let s = Tensor::apply_op(ScaledSin, &[&cubed, &b]).unwrap();
        (&s * &w).sum()
    };
    let x0 = T64::randn(&[3, 4], 3);
    let tol = GradcheckTolerance {
        atol: 1e-7,
        rtol: 1e-6,
        ..GradcheckTolerance::default()
    };
    for opts in configs() {
        gradcheck(|v| Ok(f(&v[0])), &[&x0], &opts, tol).unwrap_or_else(|e| panic!("{opts:?}: {e}"));
    }
}

#[test]
fn both_inputs_get_gradients_and_needs_is_respected() {
    // z = a·sin(b), b [1, 3] broadcast over a [2, 3]; only b requires grad.
    for opts in configs() {
        let a = T64::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
        let b = T64::from_vec(vec![0.1, 0.2, 0.3], &[1, 3])
            .unwrap()
            .requires_grad();
        Tensor::apply_op(ScaledSin, &[&a, &b])
            .unwrap()
            .sum()
            .backward_with(&opts)
            .unwrap();
        // dz/db_j = Σ_i a_ij cos b_j
        let want: Vec<f64> = [5.0, 7.0, 9.0]
            .iter()
            .zip([0.1f64, 0.2, 0.3])
            .map(|(s, b)| s * b.cos())
            .collect();
        for (g, w) in b.grad().unwrap().to_vec().iter().zip(&want) {
            assert!((g - w).abs() < 1e-12, "{opts:?}: {g} vs {w}");
        }
    }
}

#[test]
fn second_derivative_through_a_custom_backward() {
    // y = x³: y' = 3x², y'' = 6x.
    for opts in configs() {
        let x = T64::scalar(1.5).requires_grad();
        let y = Tensor::apply_op(Cube, &[&x]).unwrap();
        let d1 = grad(&[&y], &[], &[&x], &opts.clone().create_graph(true)).unwrap();
        let d1 = d1[0].clone().unwrap();
        assert_eq!(d1.item(), 6.75);
        let d2 = grad(&[&d1], &[], &[&x], &opts).unwrap();
        assert_eq!(d2[0].as_ref().unwrap().item(), 9.0, "{opts:?}");
    }
}

#[test]
fn a_wide_graph_of_custom_ops_is_bitwise_equal_across_schedulers() {
    let run = |opts: &BackwardOptions| {
        let x = T64::randn(&[4, 4], 0).requires_grad();
        let branches: Vec<T64> = (0..40)
            .map(|b| {
                let h = x.matmul(&(&T64::randn(&[4, 4], 1 + b) * 0.3)).unwrap();
                Tensor::apply_op(Cube, &[&h.tanh()]).unwrap().sum()
            })
            .collect();
        let loss = branches
            .iter()
            .skip(1)
            .fold(branches[0].clone(), |acc, s| &acc + s);
        loss.backward_with(opts).unwrap();
        x.grad()
            .unwrap()
            .data()
            .iter()
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    let reference = run(&BackwardOptions::new().scheduler(Scheduler::Dfs));
    for opts in configs() {
        assert_eq!(run(&opts), reference, "{opts:?}");
    }
}

/// Returns a gradient of the wrong shape, or panics, as its field says.
struct Broken {
    panics: bool,
}

impl CustomOp<f64> for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }
    fn forward(&self, inputs: &[&T64]) -> Result<T64> {
        Ok(inputs[0].clone())
    }
    fn backward(&self, _: &[T64], _: &T64, _: &T64, _: &BackwardCtx) -> Result<Vec<Option<T64>>> {
        assert!(!self.panics, "broken backward");
        Ok(vec![Some(T64::zeros(&[7]))])
    }
}

#[test]
fn a_broken_custom_backward_is_an_error_naming_the_op_and_the_line() {
    for opts in configs() {
        for panics in [false, true] {
            let x = T64::ones(&[2]).requires_grad();
            let line = line!() + 1;
            let y = Tensor::apply_op(Broken { panics }, &[&x]).unwrap();
            let err = y.sum().backward_with(&opts).unwrap_err();
            let message = err.to_string();
            assert!(matches!(err, Error::Backward { .. }), "{err:?}");
            assert!(message.contains("broken"), "{message}");
            assert!(
                message.contains(&format!("{}:{line}:", file!())),
                "{message}"
            );
            if !panics {
                assert!(
                    message.contains("[7]") && message.contains("[2]"),
                    "{message}"
                );
            }
        }
    }
}

#[test]
fn under_no_grad_a_custom_op_records_nothing() {
    let x = T64::scalar(2.0).requires_grad();
    let y = no_grad(|| Tensor::apply_op(Cube, &[&x])).unwrap();
    assert!(!y.needs_grad());
    assert_eq!(y.item(), 8.0);
}
