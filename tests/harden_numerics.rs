//! Numerics: NaN propagation through relu, the derivative of `x^0` at 0, and
//! cross-entropy with `-inf` logits on non-target classes.

mod common;

use backflow::nn::cross_entropy;
use backflow::{grad, BackwardOptions, Tensor};

#[test]
fn relu_of_nan_is_nan() {
    let x = Tensor::<f32>::from_vec(vec![f32::NAN, -1.0, 0.0, -0.0, 2.0], &[5]).unwrap();
    let y = x.relu().to_vec();
    // Used to be 0 (as PyTorch and NumPy, it must propagate).
    assert!(y[0].is_nan(), "{y:?}");
    assert_eq!(&y[1..], &[0.0, 0.0, 0.0, 2.0]);
    let x64 = Tensor::<f64>::scalar(f64::NAN);
    assert!(x64.relu().item().is_nan());
}

#[test]
fn relu_gradient_is_unchanged_for_numbers() {
    for opts in common::configs() {
        let x = Tensor::<f64>::from_vec(vec![-2.0, 0.0, 3.0], &[3])
            .unwrap()
            .requires_grad();
        x.relu().sum().backward_with(&opts).unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![0.0, 0.0, 1.0]);
    }
}

#[test]
fn derivative_of_x_to_the_zero_is_zero_at_zero() {
    for opts in common::configs() {
        let x = Tensor::<f64>::from_vec(vec![0.0, 2.0, -3.0], &[3])
            .unwrap()
            .requires_grad();
        let y = x.powf(0.0);
        assert_eq!(y.to_vec(), vec![1.0; 3]);
        y.sum().backward_with(&opts).unwrap();
        // Used to be [NaN, 0, 0]: 0 · 0^-1 = 0 · ∞.
        assert_eq!(x.grad().unwrap().to_vec(), vec![0.0; 3], "{opts:?}");
    }
}

#[test]
fn derivative_of_x_to_the_zero_is_zero_at_zero_with_create_graph() {
    let x = Tensor::<f64>::scalar(0.0).requires_grad();
    let opts = BackwardOptions::new().create_graph(true);
    let g = grad(&[&x.powf(0.0)], &[], &[&x], &opts).unwrap();
    assert_eq!(g[0].as_ref().unwrap().item(), 0.0);
    // Other exponents keep p·x^(p-1).
    let x = Tensor::<f64>::scalar(2.0).requires_grad();
    x.powf(3.0).backward().unwrap();
    assert_eq!(x.grad().unwrap().item(), 12.0);
}

#[test]
fn cross_entropy_with_a_minus_infinity_logit_off_target_is_finite() {
    for opts in common::configs() {
        let logits = Tensor::from_vec(vec![f32::NEG_INFINITY, 0.0, 0.0, 0.0], &[2, 2])
            .unwrap()
            .requires_grad();
        let loss = cross_entropy(&logits, &[1, 0]).unwrap();
        // Used to be NaN through 0 · (-inf) in the one-hot mask.
        let expect = (0.0 + 2f32.ln()) / 2.0;
        assert!((loss.item() - expect).abs() < 1e-7, "{}", loss.item());
        loss.backward_with(&opts).unwrap();
        // (softmax - onehot) / batch: row 0 is [0, 1] - [0, 1], row 1 [½, ½] - [1, 0].
        assert_eq!(logits.grad().unwrap().to_vec(), vec![0.0, 0.0, -0.25, 0.25]);
    }
}

#[test]
fn cross_entropy_gradient_matches_finite_differences() {
    let data: Vec<f32> = vec![0.3, -1.2, 2.0, 0.5, 0.1, -0.7];
    let labels = [2, 0];
    let logits = Tensor::from_vec(data.clone(), &[2, 3])
        .unwrap()
        .requires_grad();
    cross_entropy(&logits, &labels).unwrap().backward().unwrap();
    let g = logits.grad().unwrap().to_vec();
    let loss_at = |d: &[f32]| {
        let t = Tensor::from_vec(d.to_vec(), &[2, 3]).unwrap();
        f64::from(cross_entropy(&t, &labels).unwrap().item())
    };
    for i in 0..data.len() {
        let h = 1e-2f32;
        let (mut up, mut down) = (data.clone(), data.clone());
        up[i] += h;
        down[i] -= h;
        let fd = (loss_at(&up) - loss_at(&down)) / (2.0 * f64::from(h));
        assert!((fd - f64::from(g[i])).abs() < 1e-3, "{i}: {fd} vs {}", g[i]);
    }
}

#[test]
fn cross_entropy_records_its_backward_under_create_graph() {
    let logits = Tensor::from_vec(vec![f32::NEG_INFINITY, 0.0, 1.0, 0.0, 0.0, 2.0], &[2, 3])
        .unwrap()
        .requires_grad();
    let loss = cross_entropy(&logits, &[1, 2]).unwrap();
    let opts = BackwardOptions::new().create_graph(true);
    let g = grad(&[&loss], &[], &[&logits], &opts).unwrap();
    let g = g[0].clone().unwrap();
    assert!(g.needs_grad());
    loss.backward().unwrap();
    let plain = logits.grad().unwrap().to_vec();
    for (a, b) in g.to_vec().iter().zip(&plain) {
        assert!((a - b).abs() < 1e-6 && a.is_finite(), "{a} vs {b}");
    }
    // The gradient of Σ g with respect to the logits is finite too.
    let gg = grad(&[&g.sum()], &[], &[&logits], &BackwardOptions::new()).unwrap();
    assert!(gg[0].as_ref().unwrap().data().iter().all(|v| v.is_finite()));
}
