//! Gradients checked against closed forms worked out by hand, under every scheduler.

use backflow::{BackwardOptions, Scheduler, Tensor};

/// Whether `got` equals `want` to f32 precision (a few units in the last place).
fn close_f32(got: f32, want: f32) -> bool {
    (got - want).abs() <= 4.0 * f32::EPSILON * want.abs().max(1.0)
}

fn opts(scheduler: Scheduler) -> BackwardOptions {
    BackwardOptions::new().scheduler(scheduler)
}

/// The W5 seed graph: t3 = t1 + t2, t4 = t2·t5, t6 = t3·t4, L = sin(t6); returns the
/// gradients of t1, t2, t5.
fn seed_graph(scheduler: Scheduler) -> [f32; 3] {
    let t1 = Tensor::<f32>::scalar(2.0).requires_grad();
    let t2 = Tensor::<f32>::scalar(3.0).requires_grad();
    let t5 = Tensor::<f32>::scalar(0.5).requires_grad();
    let t3 = &t1 + &t2;
    let t4 = &t2 * &t5;
    let t6 = &t3 * &t4;
    let l = t6.sin();
    l.backward_with(&opts(scheduler)).unwrap();
    [&t1, &t2, &t5].map(|t| t.grad().unwrap().item())
}

#[test]
fn seed_graph_closed_form() {
    // t3 = 5, t4 = 1.5, t6 = 7.5. With c = cos(t6):
    // dL/dt1 = c·t4 = 1.5c; dL/dt2 = c·(t4 + t3·t5) = c·(1.5 + 2.5) = 4c;
    // dL/dt5 = c·t3·t2 = 15c.
    let c = 7.5f32.cos();
    let want = [c * 1.5, c * 4.0, c * 15.0];
    for scheduler in Scheduler::ALL {
        let got = seed_graph(scheduler);
        for (name, (g, w)) in ["t1", "t2", "t5"].iter().zip(got.iter().zip(want)) {
            assert!(
                close_f32(*g, w),
                "{scheduler:?}: dL/d{name} = {g}, closed form {w}"
            );
        }
    }
}

#[test]
fn seed_graph_schedulers_agree_bitwise() {
    let bits = |g: [f32; 3]| g.map(f32::to_bits);
    let reference = bits(seed_graph(Scheduler::Dfs));
    for scheduler in Scheduler::ALL {
        for _ in 0..20 {
            assert_eq!(bits(seed_graph(scheduler)), reference, "{scheduler:?}");
        }
    }
}

/// The gradient of `f` at the scalar `x`, under `scheduler`.
fn derivative(x: f32, scheduler: Scheduler, f: impl Fn(&Tensor) -> Tensor) -> f32 {
    let x = Tensor::scalar(x).requires_grad();
    f(&x).backward_with(&opts(scheduler)).unwrap();
    x.grad().unwrap().item()
}

#[test]
fn scalar_closed_forms() {
    for scheduler in Scheduler::ALL {
        for x in [-1.5f32, 0.3, 2.0] {
            // d/dx (x² + 5x) = 2x + 5
            let g = derivative(x, scheduler, |x| &(x * x) + &(x * 5.0));
            assert!(close_f32(g, 2.0 * x + 5.0), "{scheduler:?}: {g} at {x}");
            // d/dx tanh x = 1 - tanh² x
            let g = derivative(x, scheduler, |x| x.tanh());
            assert!(
                close_f32(g, 1.0 - x.tanh().powi(2)),
                "{scheduler:?}: {g} at {x}"
            );
            // d/dx sigmoid x = σ(x)(1 - σ(x))
            let s = 1.0 / (1.0 + (-x).exp());
            let g = derivative(x, scheduler, |x| x.sigmoid());
            assert!(close_f32(g, s * (1.0 - s)), "{scheduler:?}: {g} at {x}");
            // d/dx e^(sin x) = cos x · e^(sin x)
            let g = derivative(x, scheduler, |x| x.sin().exp());
            assert!(
                close_f32(g, x.cos() * x.sin().exp()),
                "{scheduler:?}: {g} at {x}"
            );
            // d/dx x / (1 + x²) = (1 - x²) / (1 + x²)²
            let g = derivative(x, scheduler, |x| x / &(&(x * x) + 1.0));
            let want = (1.0 - x * x) / (1.0 + x * x).powi(2);
            assert!(close_f32(g, want), "{scheduler:?}: {g} at {x}");
        }
    }
}

#[test]
fn matmul_closed_form() {
    // L = Σ (A·B), so dL/dA_ip = Σ_j B_pj (row sums of B) and dL/dB_pj = Σ_i A_ip
    // (column sums of A).
    for scheduler in Scheduler::ALL {
        let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])
            .unwrap()
            .requires_grad();
        let b = Tensor::from_vec(vec![1.0f32, -1.0, 2.0, 0.5, 0.0, 3.0], &[3, 2])
            .unwrap()
            .requires_grad();
        a.matmul(&b)
            .unwrap()
            .sum()
            .backward_with(&opts(scheduler))
            .unwrap();
        assert_eq!(
            a.grad().unwrap().to_vec(),
            vec![0.0, 2.5, 3.0, 0.0, 2.5, 3.0]
        );
        assert_eq!(
            b.grad().unwrap().to_vec(),
            vec![5.0, 5.0, 7.0, 7.0, 9.0, 9.0]
        );
    }
}

#[test]
fn mean_and_softmax_closed_forms() {
    for scheduler in Scheduler::ALL {
        // d/dx_i mean(x) = 1/n
        let x = Tensor::<f32>::ones(&[2, 4]).requires_grad();
        x.mean().backward_with(&opts(scheduler)).unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![0.125; 8]);
        // Σ_i softmax(x)_i = 1 whatever x, so its gradient is 0; for log_softmax,
        // d/dx_i Σ_j log_softmax(x)_j = 1 - n·softmax(x)_i, which is 0 for equal logits.
        let x = Tensor::from_vec(vec![0.5f32, -1.0, 2.0], &[3])
            .unwrap()
            .requires_grad();
        x.softmax().sum().backward_with(&opts(scheduler)).unwrap();
        assert!(x.grad().unwrap().data().iter().all(|g| g.abs() < 1e-6));
        let x = Tensor::<f32>::full(&[2, 4], 3.0).requires_grad();
        x.log_softmax()
            .sum()
            .backward_with(&opts(scheduler))
            .unwrap();
        assert!(x.grad().unwrap().data().iter().all(|g| g.abs() < 1e-6));
    }
}

#[test]
fn gradients_accumulate_across_backward_passes() {
    // Two passes of d/dx 3x = 3 sum to 6 in .grad(); zero_grad clears it.
    let x = Tensor::<f32>::scalar(1.0).requires_grad();
    (&x * 3.0).backward().unwrap();
    (&x * 3.0).backward().unwrap();
    assert_eq!(x.grad().unwrap().item(), 6.0);
    x.zero_grad();
    assert!(x.grad().is_none());
}
