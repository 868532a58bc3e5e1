//! Finite-difference gradchecks in f64 for every differentiable op.
//!
//! Each op `f` is checked through the scalar `L = Σ f(x) ⊙ w` with fixed random weights `w`,
//! so the backward is exercised with a general upstream gradient, not just ones. The
//! analytic gradient from `backward` must match central differences of `L` under every
//! scheduler, both with the fused kernel backwards and with the recorded ones
//! (`create_graph`).

use backflow::{BackwardOptions, Scheduler, Tensor};

const STEP: f64 = 1e-5;
const RTOL: f64 = 1e-6;
const ATOL: f64 = 1e-6;

type T64 = Tensor<f64>;

/// Standard normal values of `shape`.
fn normal(shape: &[usize], seed: u64) -> T64 {
    Tensor::randn(shape, seed)
}

/// Values in [0.5, ∞): safe for ln, sqrt, powf and as divisors.
fn positive(shape: &[usize], seed: u64) -> T64 {
    map(&normal(shape, seed), |v| v.abs() + 0.5)
}

/// Values at least 0.2 away from zero: keeps relu off its kink.
fn off_zero(shape: &[usize], seed: u64) -> T64 {
    map(&normal(shape, seed), |v| v.signum() * (v.abs() + 0.2))
}

fn map(t: &T64, f: impl Fn(f64) -> f64) -> T64 {
    Tensor::from_vec(t.data().iter().map(|&v| f(v)).collect(), t.shape()).unwrap()
}

/// `Σ f(xs) ⊙ w`, with `w` fixed by the output's shape.
fn loss(f: &dyn Fn(&[T64]) -> T64, xs: &[T64]) -> T64 {
    let y = f(xs);
    let w = normal(y.shape(), 0xC0FFEE);
    (&y * &w).sum()
}

/// Central-difference gradient of `loss(f, inputs)` with respect to each input (the
/// library's one finite-difference routine, `backflow::numeric_grads`).
fn numeric_grads(f: &dyn Fn(&[T64]) -> T64, inputs: &[T64]) -> Vec<Vec<f64>> {
    let inputs: Vec<&T64> = inputs.iter().collect();
    backflow::numeric_grads(|xs| Ok(loss(f, xs)), &inputs, STEP).unwrap()
}

/// Checks the gradient of `f` at `inputs` against finite differences, under every
/// scheduler, with and without `create_graph`.
fn gradcheck(name: &str, inputs: &[&T64], f: impl Fn(&[T64]) -> T64) {
    let inputs: Vec<T64> = inputs.iter().map(|&t| t.clone()).collect();
    let expected = numeric_grads(&f, &inputs);
    for scheduler in Scheduler::ALL {
        for create_graph in [false, true] {
            let leaves: Vec<T64> = inputs.iter().map(|t| t.detach().requires_grad()).collect();
            let opts = BackwardOptions::new()
                .scheduler(scheduler)
                .create_graph(create_graph);
            loss(&f, &leaves).backward_with(&opts).unwrap_or_else(|e| {
                panic!("{name} ({scheduler:?}, create_graph {create_graph}): {e}")
            });
            for (i, (leaf, want)) in leaves.iter().zip(&expected).enumerate() {
                let got = leaf
                    .grad()
                    .unwrap_or_else(|| panic!("{name} ({scheduler:?}): input {i} got no gradient"));
                assert_eq!(
                    got.shape(),
                    leaf.shape(),
                    "{name}: gradient shape of input {i}"
                );
                for (j, (&g, &w)) in got.data().iter().zip(want).enumerate() {
                    assert!(
                        (g - w).abs() <= ATOL + RTOL * w.abs(),
                        "{name} ({scheduler:?}, create_graph {create_graph}): d/dx{i}[{j}] is \
                         {g}, finite differences give {w}"
                    );
                }
            }
        }
    }
}

#[test]
fn unary_ops() {
    let x = normal(&[3, 4], 1);
    let p = positive(&[3, 4], 2);
    gradcheck("neg", &[&x], |v| -&v[0]);
    gradcheck("sin", &[&x], |v| v[0].sin());
    gradcheck("cos", &[&x], |v| v[0].cos());
    gradcheck("exp", &[&x], |v| v[0].exp());
    gradcheck("tanh", &[&x], |v| v[0].tanh());
    gradcheck("sigmoid", &[&x], |v| v[0].sigmoid());
    gradcheck("relu", &[&off_zero(&[3, 4], 3)], |v| v[0].relu());
    gradcheck("ln", &[&p], |v| v[0].ln());
    gradcheck("sqrt", &[&p], |v| v[0].sqrt());
    gradcheck("powf 3", &[&p], |v| v[0].powf(3.0));
    gradcheck("powf -1.5", &[&p], |v| v[0].powf(-1.5));
    gradcheck("abs", &[&off_zero(&[3, 4], 4)], |v| v[0].abs());
    gradcheck("erf", &[&x], |v| v[0].erf());
    gradcheck("gelu", &[&x], |v| v[0].gelu());
    gradcheck("gelu_tanh", &[&x], |v| v[0].gelu_tanh());
    // Off the bounds ±0.5 (normal values land within 1e-3 of them with small odds only).
    let c = map(&x, |v| {
        if (v.abs() - 0.5).abs() < 0.05 {
            v * 1.3
        } else {
            v
        }
    });
    gradcheck("clamp", &[&c], |v| {
        v[0].clamp(Some(-0.5), Some(0.5)).unwrap()
    });
    gradcheck("clamp min", &[&c], |v| {
        v[0].clamp(Some(-0.5), None).unwrap()
    });
}

/// The broadcasting pairs every binary op is checked on, positive so that `div` is safe.
fn binary_cases() -> Vec<(&'static str, T64, T64)> {
    vec![
        ("same shape", positive(&[3, 4], 10), positive(&[3, 4], 11)),
        (
            "(3,1) with (1,4)",
            positive(&[3, 1], 12),
            positive(&[1, 4], 13),
        ),
        ("0-d with (3,4)", positive(&[], 14), positive(&[3, 4], 15)),
        ("(3,4) with 0-d", positive(&[3, 4], 16), positive(&[], 17)),
        (
            "(1,4) with (3,4)",
            positive(&[1, 4], 18),
            positive(&[3, 4], 19),
        ),
        ("(3,4) with (4)", positive(&[3, 4], 20), positive(&[4], 21)),
    ]
}

#[test]
fn binary_ops_with_broadcasting() {
    for (case, a, b) in binary_cases() {
        let inputs = [&a, &b];
        gradcheck(&format!("add {case}"), &inputs, |v| &v[0] + &v[1]);
        gradcheck(&format!("sub {case}"), &inputs, |v| &v[0] - &v[1]);
        gradcheck(&format!("mul {case}"), &inputs, |v| &v[0] * &v[1]);
        gradcheck(&format!("div {case}"), &inputs, |v| &v[0] / &v[1]);
    }
}

#[test]
fn binary_op_with_itself() {
    // Both operands are the same leaf: d/dx (x·x) = 2x, d/dx (x/x) = 0.
    let x = positive(&[2, 3], 30);
    gradcheck("mul self", &[&x], |v| &v[0] * &v[0]);
    gradcheck("div self", &[&x], |v| &v[0] / &v[0]);
}

#[test]
fn scalar_ops() {
    let x = normal(&[2, 3], 40);
    gradcheck("mul 2", &[&x], |v| &v[0] * 2.0);
    gradcheck("add 0.5", &[&x], |v| &v[0] + 0.5);
    gradcheck("sub 1", &[&x], |v| &v[0] - 1.0);
    gradcheck("div 3", &[&x], |v| &v[0] / 3.0);
    gradcheck("affine", &[&x], |v| v[0].affine(-1.5, 0.25));
    gradcheck("2 * x", &[&x], |v| 2.0 * &v[0]);
    gradcheck("0.5 + x", &[&x], |v| 0.5 + &v[0]);
    gradcheck("1 - x", &[&x], |v| 1.0 - &v[0]);
    gradcheck("3 / x", &[&positive(&[2, 3], 41)], |v| 3.0 / &v[0]);
}

#[test]
fn reductions() {
    let x = normal(&[3, 4], 50);
    gradcheck("sum", &[&x], |v| v[0].sum());
    gradcheck("sum_axis 0", &[&x], |v| v[0].sum_axis(0).unwrap());
    gradcheck("sum_axis 1", &[&x], |v| v[0].sum_axis(1).unwrap());
    gradcheck("mean", &[&x], |v| v[0].mean());
    let x3 = normal(&[2, 3, 4], 51);
    gradcheck("sum_axis middle of 3-d", &[&x3], |v| {
        v[0].sum_axis(1).unwrap()
    });
    gradcheck("sum_axis of 1-d", &[&normal(&[5], 52)], |v| {
        v[0].sum_axis(0).unwrap()
    });
    gradcheck("mean of 0-d", &[&normal(&[], 53)], |v| v[0].mean());
    gradcheck("max", &[&x], |v| v[0].max().unwrap());
    gradcheck("min", &[&x], |v| v[0].min().unwrap());
}

#[test]
fn matmul() {
    let (a, b) = (normal(&[3, 4], 60), normal(&[4, 5], 61));
    gradcheck("matmul", &[&a, &b], |v| v[0].matmul(&v[1]).unwrap());
    let (a, b) = (normal(&[1, 3], 62), normal(&[3, 1], 63));
    gradcheck("matmul row·column", &[&a, &b], |v| {
        v[0].matmul(&v[1]).unwrap()
    });
    // Only one operand requires grad: the other gets no gradient work.
    let w = normal(&[4, 2], 64);
    gradcheck("matmul by a constant", &[&normal(&[3, 4], 65)], move |v| {
        v[0].matmul(&w).unwrap()
    });
    gradcheck("x·xᵀ", &[&normal(&[3, 2], 66)], |v| {
        v[0].matmul(&v[0].t().unwrap()).unwrap()
    });
}

#[test]
fn layout_ops() {
    let x = normal(&[3, 4], 70);
    gradcheck("reshape", &[&x], |v| v[0].reshape(&[2, 6]).unwrap());
    gradcheck("reshape to 3-d", &[&x], |v| {
        v[0].reshape(&[2, 1, 6]).unwrap()
    });
    gradcheck("transpose", &[&x], |v| v[0].transpose(0, 1).unwrap());
    gradcheck("t", &[&x], |v| v[0].t().unwrap());
    gradcheck("transpose 3-d", &[&normal(&[2, 3, 4], 71)], |v| {
        v[0].transpose(0, 2).unwrap()
    });
    gradcheck("permute 3-d", &[&normal(&[2, 3, 4], 73)], |v| {
        v[0].permute(&[1, 2, 0]).unwrap()
    });
    gradcheck("unsqueeze", &[&x], |v| v[0].unsqueeze(1).unwrap());
    gradcheck("squeeze", &[&normal(&[3, 1, 4], 74)], |v| {
        v[0].squeeze(1).unwrap()
    });
    gradcheck("squeeze_all", &[&normal(&[1, 3, 1], 75)], |v| {
        v[0].squeeze_all()
    });
    gradcheck("flatten", &[&normal(&[2, 3, 4], 76)], |v| {
        v[0].flatten(0, 1).unwrap()
    });
    gradcheck("broadcast_to", &[&normal(&[3, 1], 72)], |v| {
        v[0].broadcast_to(&[2, 3, 4]).unwrap()
    });
    gradcheck("broadcast_to from 0-d", &[&normal(&[], 73)], |v| {
        v[0].broadcast_to(&[3, 4]).unwrap()
    });
    gradcheck("sum_to rows", &[&x], |v| v[0].sum_to(&[1, 4]).unwrap());
    gradcheck("sum_to columns", &[&x], |v| v[0].sum_to(&[3, 1]).unwrap());
    gradcheck("sum_to 0-d", &[&x], |v| v[0].sum_to(&[]).unwrap());
}

#[test]
fn concat() {
    let (a, b) = (normal(&[2, 3], 80), normal(&[1, 3], 81));
    gradcheck("concat axis 0", &[&a, &b], |v| {
        Tensor::concat(&[&v[0], &v[1]], 0).unwrap()
    });
    let (a, b) = (normal(&[2, 3], 82), normal(&[2, 2], 83));
    gradcheck("concat axis 1", &[&a, &b], |v| {
        Tensor::concat(&[&v[0], &v[1]], 1).unwrap()
    });
    let (a, b, c) = (
        normal(&[2, 1, 2], 84),
        normal(&[2, 3, 2], 85),
        normal(&[2, 2, 2], 86),
    );
    gradcheck("concat three, middle axis", &[&a, &b, &c], |v| {
        Tensor::concat(&[&v[0], &v[1], &v[2]], 1).unwrap()
    });
    // A constant part between two that require grad, and the same tensor twice.
    let k = normal(&[2, 2], 87);
    gradcheck(
        "concat with a constant and a repeat",
        &[&normal(&[2, 3], 88)],
        move |v| Tensor::concat(&[&v[0], &k, &v[0]], 1).unwrap(),
    );
}

#[test]
fn softmaxes() {
    let x = normal(&[3, 4], 90);
    gradcheck("softmax", &[&x], |v| v[0].softmax());
    gradcheck("log_softmax", &[&x], |v| v[0].log_softmax());
    gradcheck("softmax then ln", &[&x], |v| v[0].softmax().ln());
    gradcheck("softmax of 1-d", &[&normal(&[5], 91)], |v| v[0].softmax());
    gradcheck("log_softmax of 3-d", &[&normal(&[2, 2, 3], 92)], |v| {
        v[0].log_softmax()
    });
    gradcheck("softmax of 0-d", &[&normal(&[], 93)], |v| v[0].softmax());
    gradcheck("log_softmax of 0-d", &[&normal(&[], 94)], |v| {
        v[0].log_softmax()
    });
}

#[test]
fn softmax_then_ln_equals_log_softmax() {
    // ln(softmax(x)) = log_softmax(x) in value and in gradient.
    let x = normal(&[3, 4], 95);
    let w = normal(&[3, 4], 96);
    let via_ln = x.detach().requires_grad();
    let direct = x.detach().requires_grad();
    let (a, b) = (via_ln.softmax().ln(), direct.log_softmax());
    for (u, v) in a.data().iter().zip(b.data()) {
        assert!((u - v).abs() < 1e-12, "ln(softmax) {u} vs log_softmax {v}");
    }
    (&a * &w).sum().backward().unwrap();
    (&b * &w).sum().backward().unwrap();
    let (ga, gb) = (via_ln.grad().unwrap(), direct.grad().unwrap());
    for (u, v) in ga.data().iter().zip(gb.data()) {
        assert!((u - v).abs() < 1e-12, "gradients {u} vs {v}");
    }
}

#[test]
fn softmax_is_stable_for_large_logits() {
    let x = Tensor::<f64>::from_vec(vec![1000.0, 999.0, -1000.0, 0.0], &[2, 2])
        .unwrap()
        .requires_grad();
    let y = x.softmax();
    assert!(y.data().iter().all(|v| v.is_finite()), "{y:?}");
    let ls = x.log_softmax();
    assert!(ls.data().iter().all(|v| v.is_finite()), "{ls:?}");
    (&ls * &normal(&[2, 2], 97)).sum().backward().unwrap();
    assert!(x.grad().unwrap().data().iter().all(|v| v.is_finite()));
}

#[test]
fn composite_network() {
    // A small two-layer network with a cross-entropy-like loss, every op in one graph.
    let x = normal(&[4, 3], 100);
    let (w1, b1, w2) = (
        normal(&[3, 5], 101),
        normal(&[1, 5], 102),
        normal(&[5, 2], 103),
    );
    let inputs = [&w1, &b1, &w2];
    gradcheck("mlp", &inputs, move |v| {
        let h = (&x.matmul(&v[0]).unwrap() + &v[1]).tanh();
        let logits = h.matmul(&v[2]).unwrap();
        -&logits.log_softmax().sum_axis(1).unwrap().mean()
    });
}

#[test]
#[should_panic(expected = "finite differences give")]
fn gradcheck_catches_a_wrong_gradient() {
    // Negative control: a custom y = x² whose backward forgets the factor 2.
    gradcheck("wrong square", &[&normal(&[3], 110)], |v| {
        let data = v[0].data().iter().map(|x| x * x).collect();
        let x = v[0].clone();
        Tensor::from_op("wrong_square", data, vec![3], &[&v[0]], move |gy, _| {
            Ok(vec![Some(gy * &x.detach())])
        })
    });
}
