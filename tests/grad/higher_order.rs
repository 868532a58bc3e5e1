//! Gradients of gradients (`create_graph`), checked against closed forms and against finite
//! differences of the first gradient, under every scheduler.

use backflow::{grad, gradgradcheck, BackwardOptions, GradcheckTolerance, Scheduler, Tensor};

type T64 = Tensor<f64>;

fn recorded(scheduler: Scheduler) -> BackwardOptions {
    BackwardOptions::new()
        .scheduler(scheduler)
        .create_graph(true)
}

/// The gradient of the one-element `y` with respect to `x`, recorded when `create` is set.
fn grad_of(y: &T64, x: &T64, scheduler: Scheduler, create: bool) -> T64 {
    let opts = BackwardOptions::new()
        .scheduler(scheduler)
        .create_graph(create);
    let g = grad(&[y], &[], &[x], &opts).unwrap();
    g.into_iter().next().unwrap().expect("y depends on x")
}

#[test]
fn second_derivative_of_sin() {
    // d/dx sin x = cos x, d²/dx² sin x = -sin x.
    for scheduler in Scheduler::ALL {
        for x0 in [-2.0, 0.4, 1.3] {
            let x = T64::scalar(x0).requires_grad();
            let dy = grad_of(&x.sin(), &x, scheduler, true);
            assert!((dy.item() - x0.cos()).abs() < 1e-12);
            assert!(dy.needs_grad(), "create_graph must record the gradient");
            let d2y = grad_of(&dy, &x, scheduler, false);
            assert!(
                (d2y.item() + x0.sin()).abs() < 1e-12,
                "{scheduler:?}: {d2y:?}"
            );
        }
    }
}

#[test]
fn third_derivative_of_a_polynomial() {
    // y = x⁴: y' = 4x³, y'' = 12x², y''' = 24x.
    for scheduler in Scheduler::ALL {
        let x = T64::scalar(1.5).requires_grad();
        let y = x.powf(4.0);
        let d1 = grad_of(&y, &x, scheduler, true);
        let d2 = grad_of(&d1, &x, scheduler, true);
        let d3 = grad_of(&d2, &x, scheduler, false);
        assert!((d1.item() - 4.0 * 1.5f64.powi(3)).abs() < 1e-12);
        assert!((d2.item() - 12.0 * 1.5f64.powi(2)).abs() < 1e-12);
        assert!(
            (d3.item() - 24.0 * 1.5).abs() < 1e-12,
            "{scheduler:?}: {d3:?}"
        );
    }
}

#[test]
fn backward_with_create_graph_records_leaf_grads() {
    // y = x³ via backward(create_graph): x.grad() = 3x² is itself differentiable: 6x.
    for scheduler in Scheduler::ALL {
        let x = T64::scalar(2.0).requires_grad();
        (&(&x * &x) * &x)
            .backward_with(&recorded(scheduler))
            .unwrap();
        let g = x.grad().unwrap();
        assert_eq!(g.item(), 12.0);
        let h = grad_of(&g, &x, scheduler, false);
        assert_eq!(h.item(), 12.0, "{scheduler:?}");
    }
}

/// The Hessian-vector product of `f` at `x` along `v` by double backward.
fn hvp(f: &dyn Fn(&T64) -> T64, x: &T64, v: &T64, scheduler: Scheduler) -> Vec<f64> {
    let x = x.detach().requires_grad();
    let g = grad_of(&f(&x), &x, scheduler, true);
    grad_of(&(&g * v).sum(), &x, scheduler, false).to_vec()
}

/// The same product by central differences of the first gradient: (∇f(x+εv) - ∇f(x-εv)) / 2ε.
fn hvp_numeric(f: &dyn Fn(&T64) -> T64, x: &T64, v: &T64) -> Vec<f64> {
    const STEP: f64 = 1e-5;
    let at = |s: f64| {
        let shifted = (x + &(v * s)).detach().requires_grad();
        grad_of(&f(&shifted), &shifted, Scheduler::Dfs, false).to_vec()
    };
    let (hi, lo) = (at(STEP), at(-STEP));
    hi.iter()
        .zip(&lo)
        .map(|(a, b)| (a - b) / (2.0 * STEP))
        .collect()
}

fn check_hvp(name: &str, x: T64, f: impl Fn(&T64) -> T64) {
    let v = Tensor::randn(x.shape(), 7);
    let want = hvp_numeric(&f, &x, &v);
    for scheduler in Scheduler::ALL {
        let got = hvp(&f, &x, &v, scheduler);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6 + 1e-6 * w.abs(),
                "{name} ({scheduler:?}): (Hv)[{i}] is {g}, finite differences give {w}"
            );
        }
    }
}

#[test]
fn hvp_of_squared_tanh_layer() {
    // f(x) = Σ tanh(W x)², with x a column vector.
    let w = Tensor::randn(&[3, 4], 1);
    check_hvp("Σ tanh(Wx)²", Tensor::randn(&[4, 1], 2), move |x| {
        w.matmul(x).unwrap().tanh().powf(2.0).sum()
    });
}

#[test]
fn hvp_of_cubic_cross_terms() {
    // f(x) = Σ_ij x_i³ x_j = (Σ x³)(Σ x).
    check_hvp("Σ x_i³ x_j", Tensor::randn(&[5], 3), |x| {
        let cubes = x.powf(3.0).reshape(&[5, 1]).unwrap();
        cubes.matmul(&x.reshape(&[1, 5]).unwrap()).unwrap().sum()
    });
}

type Scalar = Box<dyn Fn(&T64) -> T64>;

/// Boxes `f`, fixing its argument type for inference.
fn boxed(f: impl Fn(&T64) -> T64 + 'static) -> Scalar {
    Box::new(f)
}

#[test]
fn hvp_through_every_recorded_backward() {
    // Each op's create_graph backward, differentiated once more.
    let x = || Tensor::randn(&[2, 3], 11);
    let positive = || {
        let p: Vec<f64> = T64::randn(&[2, 3], 12)
            .data()
            .iter()
            .map(|v| v.abs() + 0.5)
            .collect();
        Tensor::from_vec(p, &[2, 3]).unwrap()
    };
    let w = Tensor::randn(&[2, 3], 13);
    let weighted = move |y: T64| (&y * &y).sum() + (&y * &w).sum();
    let cases: Vec<(&str, T64, Scalar)> = vec![
        ("sin·cos", x(), boxed(|x| (&x.sin() * &x.cos()).sum())),
        ("exp", x(), boxed(|x| x.exp().sum())),
        ("ln", positive(), boxed(|x| (&x.ln() * &x.ln()).sum())),
        ("sqrt", positive(), boxed(|x| x.sqrt().sum())),
        ("sigmoid", x(), boxed(|x| x.sigmoid().powf(2.0).sum())),
        ("relu", x(), boxed(|x| (&x.relu() * x).sum())),
        ("div", positive(), boxed(|x| (&x.sin() / x).sum())),
        (
            "scalar ops",
            x(),
            boxed(|x| (&(&(x * 2.0) + 0.5) / 3.0).powf(3.0).sum()),
        ),
        (
            "sum_axis",
            x(),
            boxed(|x| x.sum_axis(1).unwrap().powf(3.0).sum()),
        ),
        ("mean", x(), boxed(|x| x.mean().powf(2.0))),
        (
            "broadcast",
            x(),
            boxed(|x| {
                let row = x.sum_to(&[1, 3]).unwrap();
                (x * &row.broadcast_to(&[2, 3]).unwrap()).tanh().sum()
            }),
        ),
        (
            "reshape·transpose",
            x(),
            boxed(|x| {
                let r = x.reshape(&[3, 2]).unwrap().t().unwrap();
                (&r * &x.exp()).sum()
            }),
        ),
        (
            "matmul",
            x(),
            boxed(|x| x.matmul(&x.t().unwrap()).unwrap().powf(2.0).sum()),
        ),
        (
            "concat",
            x(),
            boxed(|x| {
                let c = Tensor::concat(&[x, &x.sin(), x], 0).unwrap();
                let d = Tensor::concat(&[&c, &c.exp()], 1).unwrap();
                (&d * &d).sum()
            }),
        ),
        ("softmax", x(), boxed(|x| (&x.softmax() * x).sum())),
        (
            "log_softmax",
            x(),
            boxed(|x| x.log_softmax().powf(2.0).sum()),
        ),
        (
            "softmax·ln",
            x(),
            boxed(|x| (&x.softmax().ln() * &x.sin()).sum()),
        ),
        ("weighted", x(), boxed(move |x| weighted(x.tanh()))),
    ];
    for (name, x0, f) in cases {
        check_hvp(name, x0, f);
    }
}

/// y = x³ whose backward computes 3x² on raw values: right to first order, but its
/// gradient records nothing, so its second derivative comes out as zero.
struct RawCube;

impl backflow::CustomOp<f64> for RawCube {
    fn name(&self) -> &'static str {
        "raw_cube"
    }
    fn forward(&self, inputs: &[&T64]) -> backflow::Result<T64> {
        Ok(inputs[0].powf(3.0))
    }
    fn backward(
        &self,
        inputs: &[T64],
        _: &T64,
        g: &T64,
        _: &backflow::BackwardCtx,
    ) -> backflow::Result<Vec<Option<T64>>> {
        let d: Vec<f64> = inputs[0].data().iter().map(|x| 3.0 * x * x).collect();
        let d = T64::from_vec(d, inputs[0].shape())?;
        Ok(vec![Some(&g.detach() * &d)])
    }
}

/// A function of several inputs, reduced to one element, to check.
type Checked = Box<dyn Fn(&[T64]) -> backflow::Result<T64>>;

#[test]
fn gradgradcheck_passes_on_ops_with_recorded_backwards() {
    let x = T64::from_vec(vec![0.3, -0.8, 1.2, 0.5], &[2, 2]).unwrap();
    let w = T64::from_vec(vec![0.7, -0.2, 0.4, 1.1], &[2, 2]).unwrap();
    let tol = GradcheckTolerance::default();
    for scheduler in Scheduler::ALL {
        let opts = BackwardOptions::new().scheduler(scheduler);
        let cases: Vec<(&str, Checked)> = vec![
            (
                "sin·exp",
                Box::new(|v| Ok((&v[0].sin() * &v[1].exp()).sum())),
            ),
            (
                "tanh(x·w)²",
                Box::new(|v| Ok(v[0].matmul(&v[1])?.tanh().powf(2.0).sum())),
            ),
            ("x/w", Box::new(|v| Ok((&v[0] / &(&v[1] + 3.0)).sum()))),
        ];
        for (name, f) in cases {
            let h = gradgradcheck(f, &[&x, &w], &opts, tol)
                .unwrap_or_else(|e| panic!("{name} under {scheduler:?}: {e}"));
            assert_eq!(h.len(), 8, "{name}: one row per element of x and w");
        }
    }
    // A closed form: d²(Σ x·sin x)/dx² = 2cos x − x·sin x on the diagonal, 0 off it.
    let h = gradgradcheck(
        |v| Ok((&v[0] * &v[0].sin()).sum()),
        &[&x],
        &BackwardOptions::new(),
        tol,
    )
    .unwrap();
    for (r, row) in h.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            let x0 = x.data()[r];
            let want = if r == c {
                2.0 * x0.cos() - x0 * x0.sin()
            } else {
                0.0
            };
            assert!((v - want).abs() < 1e-12, "[{r}][{c}]: {v} vs {want}");
        }
    }
}

#[test]
fn gradgradcheck_checks_a_function_that_calls_grad() {
    // f(x) = |∇ Σ sin(x)·x|²: a gradient penalty, differentiated twice more by the check.
    let x = T64::from_vec(vec![0.4, -1.1, 0.9], &[3]).unwrap();
    for scheduler in Scheduler::ALL {
        let opts = recorded(scheduler);
        gradgradcheck(
            |v| {
                let inner = (&v[0].sin() * &v[0]).sum();
                let g = grad(&[&inner], &[], &[&v[0]], &opts)?;
                Ok(g[0].as_ref().expect("depends on x").powf(2.0).sum())
            },
            &[&x],
            &BackwardOptions::new().scheduler(scheduler),
            GradcheckTolerance::default(),
        )
        .unwrap_or_else(|e| panic!("{scheduler:?}: {e}"));
    }
}

#[test]
fn gradgradcheck_catches_a_backward_that_is_wrong_to_second_order() {
    let x = T64::from_vec(vec![0.5, -1.5], &[2]).unwrap();
    let f = |v: &[T64]| Ok(T64::apply_op(RawCube, &[&v[0]])?.sum());
    // First order it is right...
    backflow::gradcheck(
        f,
        &[&x],
        &BackwardOptions::new(),
        GradcheckTolerance::default(),
    )
    .expect("the first derivative is right");
    // ...second order it is not: 6x expected, 0 computed.
    let e = gradgradcheck(
        f,
        &[&x],
        &BackwardOptions::new(),
        GradcheckTolerance::default(),
    )
    .expect_err("the second derivative is wrong");
    let text = e.to_string();
    assert!(
        text.starts_with("gradgradcheck: d²f / d(input 0 (shape [2]) element 0)"),
        "{text}"
    );
    assert!(text.contains("double backward gives 0"), "{text}");
    // A function that does not reduce to one element is refused, naming its shape.
    let e = gradgradcheck(
        |v| Ok(v[0].sin()),
        &[&x],
        &BackwardOptions::new(),
        Default::default(),
    )
    .expect_err("not one element");
    assert!(e.to_string().contains("returned shape [2]"), "{e}");
}
