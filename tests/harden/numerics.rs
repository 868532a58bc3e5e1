//! Numerics: NaN propagation through relu, the derivative of `x^0` at 0, and
//! cross-entropy with `-inf` logits on non-target classes.

use crate::common;

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

/// Two quiet NaNs that differ in sign and payload.
const NAN_A: u32 = 0x7fc0_0a0a;
const NAN_B: u32 = 0xffc0_0b0b;

fn nans(bits: u32, n: usize) -> Tensor<f32> {
    Tensor::from_vec(vec![f32::from_bits(bits); n], &[n]).unwrap()
}

fn bits(t: &Tensor<f32>) -> Vec<u32> {
    t.to_vec().iter().map(|v| v.to_bits()).collect()
}

#[test]
fn a_nan_summed_into_a_grad_keeps_the_earlier_bits_whoever_holds_the_old_grad() {
    // Two passes put NaN_A then NaN_B into x.grad(). The sum is written into whichever buffer
    // is free: the old grad's when nobody else holds it, the new one's when the caller kept
    // a handle on the old grad. Both must give the same bits: the earlier NaN, NaN_A.
    let run = |hold_old_grad: bool| {
        let x = Tensor::<f32>::ones(&[8]).requires_grad();
        (&x * &nans(NAN_A, 8)).sum().backward().unwrap();
        let held = hold_old_grad.then(|| x.grad().unwrap());
        (&x * &nans(NAN_B, 8)).sum().backward().unwrap();
        drop(held);
        bits(&x.grad().unwrap())
    };
    assert_eq!(run(false), vec![NAN_A; 8]);
    assert_eq!(run(true), vec![NAN_A; 8]);
}

#[test]
fn nan_gradients_from_different_branches_have_the_same_bits_under_every_scheduler() {
    use backflow::Scheduler;
    // x reaches the loss through y = x + b (b = 3x), and through a = x·c1; z = y + a,
    // loss = Σ z·c0. The gradient g = c0 (NaN_A at some places) reaches x unchanged from
    // y's add while b may still hold it, and a's contribution g·c1 brings NaN_B (c1) at
    // others: which buffer is free when they are summed depends on the order the
    // schedulers run b and a in.
    let n = 8;
    let mut c0 = vec![1.0f32; n];
    let mut c1 = vec![2.0f32; n];
    for i in 0..n {
        if i % 2 == 0 {
            c0[i] = f32::from_bits(NAN_A);
        }
        if i % 4 < 2 {
            c1[i] = f32::from_bits(NAN_B);
        }
    }
    let (c0, c1) = (
        Tensor::from_vec(c0, &[n]).unwrap(),
        Tensor::from_vec(c1, &[n]).unwrap(),
    );
    let mut seen: Vec<(String, Vec<u32>)> = Vec::new();
    for scheduler in Scheduler::ALL {
        for threads in [1, 2, 4] {
            let opts = BackwardOptions::new().scheduler(scheduler).threads(threads);
            let x = Tensor::<f32>::ones(&[n]).requires_grad();
            let y = &x + &(&x * 3.0);
            let z = &y + &(&x * &c1);
            (&z * &c0).sum().backward_with(&opts).unwrap();
            seen.push((
                format!("{scheduler:?} x{threads}"),
                bits(&x.grad().unwrap()),
            ));
        }
    }
    for (label, got) in &seen[1..] {
        assert_eq!(got, &seen[0].1, "{label} vs {}", seen[0].0);
    }
    // dx = g + g·c1 + 3g, summed in that order: where NaN_B (from c1) meets NaN_A (from g),
    // the first in summation order wins; a lone NaN keeps its bits; elsewhere 1 + 2 + 3.
    let want: Vec<u32> = (0..n)
        .map(|i| match i % 4 {
            0 | 2 => NAN_A,
            1 => NAN_B,
            _ => 6f32.to_bits(),
        })
        .collect();
    assert_eq!(seen[0].1, want, "{:x?}", seen[0].1);
}
