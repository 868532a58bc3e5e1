//! Anomaly mode (`BackwardOptions::detect_anomaly`): after each node the gradients are
//! checked for NaN and infinity, and the `Err` names the op and the line of this file where
//! the forward op was created (the ops carry `#[track_caller]`). Under every scheduler,
//! `Parallel` at 2 and 4 threads.

use backflow::{BackwardCtx, BackwardOptions, CustomOp, Error, Tensor};

type T64 = Tensor<f64>;

use crate::common;

/// Every scheduler, `Parallel` at 2 and 4 threads, all detecting anomalies.
fn configs() -> Vec<BackwardOptions> {
    common::configs()
        .into_iter()
        .map(|o| o.detect_anomaly(true))
        .collect()
}

/// Asserts that `err` is a backward error of `op` created at `line` of this file.
fn assert_blames(err: &Error, op: &str, line: u32) {
    let Error::Backward {
        op: got, location, ..
    } = err
    else {
        panic!("expected a backward error, got {err:?}");
    };
    assert_eq!(got, op, "{err}");
    let want = format!("{}:{line}:", file!());
    assert!(
        location.starts_with(&want),
        "{location} is not {want}…: {err}"
    );
    let message = err.to_string();
    assert!(message.contains(op) && message.contains(&want), "{message}");
    assert!(message.contains("NaN or infinity"), "{message}");
}

/// A wide healthy part (more than 64 nodes), so that `Parallel` uses its workers.
fn healthy(x: &T64) -> T64 {
    (0..24).fold(x.sin(), |acc, i| &acc + &(x * (i as f64)).tanh())
}

#[test]
fn ln_of_zero_blames_ln_at_its_line() {
    // d/dx ln x = 1/x: infinite at 0.
    for opts in configs() {
        let x = T64::scalar(0.0).requires_grad();
        let line = line!() + 1;
        let y = x.ln();
        let err = (&y + &healthy(&x)).backward_with(&opts).unwrap_err();
        assert_blames(&err, "ln", line);
    }
}

#[test]
fn nan_from_ln_of_minus_one_blames_the_first_op_whose_gradient_is_nan() {
    // ln(-1) is NaN; d/dy y² = 2y carries it into the gradient at powf.
    for opts in configs() {
        let x = T64::scalar(-1.0).requires_grad();
        let y = x.ln();
        assert!(y.item().is_nan());
        let line = line!() + 1;
        let z = y.powf(2.0);
        let err = (&z + &healthy(&x)).backward_with(&opts).unwrap_err();
        assert_blames(&err, "powf", line);
    }
}

#[test]
fn zero_over_zero_blames_div_at_its_line() {
    // d(a/b)/da = 1/b, d(a/b)/db = -a/b²: infinite and NaN at a = b = 0.
    for opts in configs() {
        let a = T64::scalar(0.0).requires_grad();
        let b = T64::scalar(0.0).requires_grad();
        let line = line!() + 1;
        let q = &a / &b;
        let err = (&q + &healthy(&a)).backward_with(&opts).unwrap_err();
        assert_blames(&err, "div", line);
    }
}

#[test]
fn every_op_reports_the_callers_line() -> backflow::Result<()> {
    // Each case produces an infinite gradient at one op; the location must be this file's
    // line, not a line inside the engine.
    type Case = (&'static str, u32, T64);
    for opts in configs() {
        let zero = T64::from_vec(vec![0.0, 1.0], &[2]).unwrap().requires_grad();
        let cases: Vec<Case> = vec![
            ("sqrt", line!(), zero.sqrt()),
            ("ln", line!(), zero.ln()),
            ("powf", line!(), zero.powf(0.5)),
            ("div", line!(), &T64::ones(&[2]) / &zero),
            ("div", line!(), T64::ones(&[2]) / zero.clone()),
            ("cbrt", line!(), Tensor::apply_op(CubeRoot, &[&zero])?),
        ];
        for (op, line, y) in cases {
            let err = (&y.sum() + &healthy(&zero).sum())
                .backward_with(&opts)
                .unwrap_err();
            assert_blames(&err, op, line);
        }
    }
    Ok(())
}

/// A custom op whose backward is infinite at 0: d/dx x^(1/3) = x^(-2/3) / 3.
struct CubeRoot;

impl CustomOp<f64> for CubeRoot {
    fn name(&self) -> &'static str {
        "cbrt"
    }
    fn forward(&self, inputs: &[&T64]) -> backflow::Result<T64> {
        Ok(inputs[0].powf(1.0 / 3.0))
    }
    fn backward(
        &self,
        inputs: &[T64],
        _: &T64,
        grad: &T64,
        _: &BackwardCtx,
    ) -> backflow::Result<Vec<Option<T64>>> {
        Ok(vec![Some(grad * &(&inputs[0].powf(-2.0 / 3.0) / 3.0))])
    }
}

#[test]
fn without_detect_anomaly_the_pass_succeeds_with_non_finite_gradients() {
    for opts in configs() {
        let x = T64::scalar(0.0).requires_grad();
        (&x.ln() + &healthy(&x))
            .backward_with(&opts.detect_anomaly(false))
            .unwrap();
        assert!(x.grad().unwrap().item().is_infinite());
    }
}

#[test]
fn the_engine_stays_usable_after_an_anomaly() {
    for opts in configs() {
        let x = T64::scalar(0.0).requires_grad();
        assert!((&x.ln() + &healthy(&x)).backward_with(&opts).is_err());
        let y = T64::scalar(0.5).requires_grad();
        (&y.ln() + &healthy(&y)).backward_with(&opts).unwrap();
        assert!(y.grad().unwrap().item().is_finite());
    }
}
