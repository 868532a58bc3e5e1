//! Optimisers, learning-rate schedules and gradient clipping against independent f64
//! re-implementations of PyTorch's documented updates (`torch.optim.Adam`, `AdamW`, `SGD`,
//! `lr_scheduler`, `clip_grad_norm_`).

use backflow::nn::{
    clip_grad_norm, Adam, AdamW, CosineLr, LrSchedule, LrScheduler, Optimizer, Param, Sgd, StepLr,
    Warmup,
};
use backflow::Tensor;

const TARGET: [f64; 3] = [3.0, -2.0, 0.5];
const WEIGHT: [f64; 3] = [1.0, 0.25, 4.0];

/// `Σ wᵢ·(xᵢ − cᵢ)²` over the first `x.len()` targets: its gradient is `2·wᵢ·(xᵢ − cᵢ)`.
fn loss(x: &Tensor<f64>) -> Tensor<f64> {
    let n = x.numel();
    let c = Tensor::from_vec(TARGET[..n].to_vec(), &[n]).unwrap();
    let w = Tensor::from_vec(WEIGHT[..n].to_vec(), &[n]).unwrap();
    let d = x - &c;
    (&(&d * &d) * &w).sum()
}

fn grad_of(x: &[f64]) -> Vec<f64> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| 2.0 * WEIGHT[i] * (v - TARGET[i]))
        .collect()
}

/// One parameter's state in torch.optim.Adam/AdamW, re-implemented from PyTorch's
/// documentation: its own `step`, `exp_avg`, `exp_avg_sq`.
struct TorchAdam {
    p: Vec<f64>,
    step: i32,
    m: Vec<f64>,
    v: Vec<f64>,
}

impl TorchAdam {
    fn new(p: &[f64]) -> Self {
        Self {
            p: p.to_vec(),
            step: 0,
            m: vec![0.0; p.len()],
            v: vec![0.0; p.len()],
        }
    }

    /// Called only for a parameter that has a gradient, as PyTorch's loop skips the others.
    fn update(&mut self, lr: f64, weight_decay: f64) {
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
        let g = grad_of(&self.p);
        self.step += 1;
        let bias_correction1 = 1.0 - b1.powi(self.step);
        let bias_correction2 = 1.0 - b2.powi(self.step);
        let step_size = lr / bias_correction1;
        let state = self.p.iter_mut().zip(&mut self.m).zip(&mut self.v);
        for (((p, m), v), g) in state.zip(g) {
            *p *= 1.0 - lr * weight_decay; // AdamW's decoupled decay (0 for Adam)
            *m = *m * b1 + (1.0 - b1) * g;
            *v = *v * b2 + (1.0 - b2) * g * g;
            let denom = v.sqrt() / bias_correction2.sqrt() + eps;
            *p -= step_size * *m / denom;
        }
    }
}

fn close(got: &[f64], want: &[f64], what: &str) {
    for (a, b) in got.iter().zip(want) {
        assert!(
            (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
            "{what}: got {got:?}, PyTorch's update gives {want:?}"
        );
    }
}

#[test]
fn adam_counts_steps_per_parameter_as_pytorch_when_one_skips_the_first_step() {
    let (p0, q0) = ([0.5, 1.0, -1.5], [2.0, -0.25]);
    let p = Param::from(Tensor::from_vec(p0.to_vec(), &[3]).unwrap());
    let q = Param::from(Tensor::from_vec(q0.to_vec(), &[2]).unwrap());
    let mut opt = Adam::new(vec![p.clone(), q.clone()], 0.1);
    let (mut tp, mut tq) = (TorchAdam::new(&p0), TorchAdam::new(&q0));
    for step in 0..5 {
        if step == 0 {
            loss(&p.get()).backward().unwrap(); // q has no gradient at the first step
        } else {
            (&loss(&p.get()) + &loss(&q.get())).backward().unwrap();
        }
        opt.step().unwrap();
        tp.update(0.1, 0.0);
        if step > 0 {
            tq.update(0.1, 0.0);
        }
        close(&p.get().to_vec(), &tp.p, &format!("p after step {step}"));
        close(&q.get().to_vec(), &tq.p, &format!("q after step {step}"));
    }
}

#[test]
fn adam_state_holds_each_parameters_own_step_count() {
    let (p, q) = (
        Param::new(Tensor::ones(&[2])),
        Param::new(Tensor::ones(&[1])),
    );
    let mut opt = Adam::new(vec![p.clone(), q.clone()], 0.1);
    (&p.get() * 2.0).sum().backward().unwrap();
    opt.step().unwrap();
    (&(&p.get() * 2.0).sum() + &q.get().sum())
        .backward()
        .unwrap();
    opt.step().unwrap();
    let state = opt.state();
    assert_eq!(state.steps, vec![2, 1]);
    // Step counts that do not match the parameters are refused, changing nothing.
    let mut other = Adam::new(vec![p.clone(), q.clone()], 0.1);
    let mut bad = state.clone();
    bad.steps.pop();
    let e = other.load_state(bad).unwrap_err().to_string();
    assert!(
        e.contains("Adam::load_state") && e.contains("step counts for 1"),
        "{e}"
    );
    assert!(other.state().steps.is_empty());
    // A resumed optimiser takes the same next step as the original.
    other.load_state(state).unwrap();
    let before = (p.get().to_vec(), q.get().to_vec());
    (&p.get() * 2.0).sum().backward().unwrap();
    q.get().sum().backward().unwrap();
    opt.step().unwrap();
    let after = (p.get().to_vec(), q.get().to_vec());
    p.set_data(before.0).unwrap();
    q.set_data(before.1).unwrap();
    (&p.get() * 2.0).sum().backward().unwrap();
    q.get().sum().backward().unwrap();
    other.step().unwrap();
    assert_eq!((p.get().to_vec(), q.get().to_vec()), after);
}

#[test]
fn adamw_matches_pytorchs_decoupled_update() {
    let p0 = [0.5, 1.0, -1.5];
    let p = Param::from(Tensor::from_vec(p0.to_vec(), &[3]).unwrap());
    // PyTorch's defaults: weight_decay 1e-2.
    let mut opt = AdamW::new(vec![p.clone()], 0.05);
    let mut torch = TorchAdam::new(&p0);
    for step in 0..6 {
        loss(&p.get()).backward().unwrap();
        opt.step().unwrap();
        torch.update(0.05, 1e-2);
        close(
            &p.get().to_vec(),
            &torch.p,
            &format!("AdamW after step {step}"),
        );
    }
    // The first step in closed form: decay, then Adam's first step moves each value by
    // lr against its gradient's sign (up to ε): 0.5·(1 − 0.05·0.01) + 0.05 = 0.54975.
    let p = Param::from(Tensor::<f64>::from_vec(p0.to_vec(), &[3]).unwrap());
    let mut opt = AdamW::new(vec![p.clone()], 0.05);
    loss(&p.get()).backward().unwrap();
    opt.step().unwrap();
    let got = p.get().to_vec();
    for (g, want) in got.iter().zip([0.54975, 0.9495, -1.44925]) {
        assert!((g - want).abs() < 1e-8, "{got:?}");
    }
    // AdamW with no decay is Adam, bit for bit.
    let (a, b) = (
        Param::from(Tensor::<f64>::from_vec(p0.to_vec(), &[3]).unwrap()),
        Param::from(Tensor::<f64>::from_vec(p0.to_vec(), &[3]).unwrap()),
    );
    let mut adamw = AdamW::new(vec![a.clone()], 0.05).weight_decay(0.0);
    let mut adam = Adam::new(vec![b.clone()], 0.05);
    for _ in 0..3 {
        loss(&a.get()).backward().unwrap();
        loss(&b.get()).backward().unwrap();
        adamw.step().unwrap();
        adam.step().unwrap();
    }
    assert_eq!(a.get().to_vec(), b.get().to_vec());
}

#[test]
fn sgd_weight_decay_and_momentum_match_pytorchs_update() {
    for nesterov in [false, true] {
        let p0 = [0.5, 1.0, -1.5];
        let p = Param::from(Tensor::from_vec(p0.to_vec(), &[3]).unwrap());
        let (lr, mu, wd) = (0.05, 0.9, 0.1);
        let mut opt = Sgd::new(vec![p.clone()], lr)
            .momentum(mu)
            .weight_decay(wd)
            .nesterov(nesterov);
        // torch.optim.SGD (dampening 0): d_p = g + wd·p; buf = d_p at the first step, then
        // mu·buf + d_p; nesterov: d_p + mu·buf, else buf; p -= lr·that.
        let (mut want, mut buf): (Vec<f64>, Option<Vec<f64>>) = (p0.to_vec(), None);
        for step in 0..5 {
            loss(&p.get()).backward().unwrap();
            opt.step().unwrap();
            let d: Vec<f64> = grad_of(&want)
                .iter()
                .zip(&want)
                .map(|(g, p)| g + wd * p)
                .collect();
            let b: Vec<f64> = match &buf {
                None => d.clone(),
                Some(b) => b.iter().zip(&d).map(|(b, d)| mu * b + d).collect(),
            };
            for ((w, d), b) in want.iter_mut().zip(&d).zip(&b) {
                *w -= lr * if nesterov { d + mu * b } else { *b };
            }
            buf = Some(b);
            close(
                &p.get().to_vec(),
                &want,
                &format!("SGD (nesterov {nesterov}) step {step}"),
            );
        }
    }
    // Decay without momentum, in closed form: p − lr·(g + λ·p) = 1 − 0.1·(2 + 0.5).
    let p = Param::from(Tensor::<f64>::scalar(1.0));
    let mut opt = Sgd::new(vec![p.clone()], 0.1).weight_decay(0.5);
    (&p.get() * &p.get()).backward().unwrap();
    opt.step().unwrap();
    assert!((p.get().item() - 0.75).abs() < 1e-15);
}

#[test]
fn schedules_follow_their_closed_forms() {
    let base = 0.2;
    let step = StepLr::new(3, 0.1).unwrap();
    let cosine = CosineLr::new(20).unwrap().min_lr(0.01).unwrap();
    let warm = Warmup::linear(5).start_factor(0.2).unwrap();
    let warm_cos = Warmup::linear(5)
        .start_factor(0.0)
        .unwrap()
        .then(CosineLr::new(20).unwrap());
    let pi = std::f64::consts::PI;
    for t in 0..40u64 {
        let tf = t as f64;
        let want_step = base * 0.1f64.powi((t / 3) as i32);
        let want_cos = if t >= 20 {
            0.01
        } else {
            0.01 + (base - 0.01) * (1.0 + (pi * tf / 20.0).cos()) / 2.0
        };
        let want_warm = base * if t < 5 { 0.2 + 0.8 * tf / 5.0 } else { 1.0 };
        let want_wc = if t < 5 {
            base * tf / 5.0
        } else if t < 25 {
            base * (1.0 + (pi * (tf - 5.0) / 20.0).cos()) / 2.0
        } else {
            0.0
        };
        for (name, got, want) in [
            ("StepLr", step.lr(base, t), want_step),
            ("CosineLr", cosine.lr(base, t), want_cos),
            ("Warmup", warm.lr(base, t), want_warm),
            ("Warmup then CosineLr", warm_cos.lr(base, t), want_wc),
        ] {
            assert!((got - want).abs() < 1e-15, "{name} at {t}: {got} vs {want}");
        }
    }
    // The default warm-up starts at a third, as PyTorch's LinearLR.
    assert!((Warmup::linear(3).lr(0.3, 0) - 0.1).abs() < 1e-15);
    for e in [
        StepLr::new(0, 0.5).unwrap_err(),
        StepLr::new(2, f64::NAN).unwrap_err(),
        CosineLr::new(0).unwrap_err(),
        CosineLr::new(5).unwrap().min_lr(-1.0).unwrap_err(),
        Warmup::linear(5).start_factor(1.5).unwrap_err(),
    ] {
        let e = e.to_string();
        assert!(
            ["StepLr", "CosineLr", "Warmup"]
                .iter()
                .any(|op| e.contains(op)),
            "{e}"
        );
    }
}

#[test]
fn a_scheduler_sets_the_rate_each_step_uses() {
    // SGD without momentum moves p by lr·g: the rate each step used can be read back.
    let p = Param::from(Tensor::<f64>::scalar(0.0));
    let mut opt = Sgd::new(vec![p.clone()], 0.5);
    let schedule = StepLr::new(2, 0.5).unwrap();
    let mut sched = LrScheduler::new(&mut opt, schedule);
    let mut used = Vec::new();
    for _ in 0..6 {
        assert_eq!(opt.lr(), sched.lr());
        let before = p.get().item();
        p.get().sum().backward().unwrap(); // gradient 1
        opt.step().unwrap();
        used.push(before - p.get().item());
        sched.step(&mut opt);
    }
    assert_eq!(used, [0.5, 0.5, 0.25, 0.25, 0.125, 0.125]);
    assert_eq!(sched.steps(), 6);
    // The first step's rate is set when the scheduler is made (PyTorch's behaviour).
    let mut adam = Adam::new(vec![Param::new(Tensor::scalar(0.0))], 0.3);
    let _sched = LrScheduler::new(&mut adam, Warmup::linear(3));
    assert!((adam.lr() - 0.1).abs() < 1e-7);
}

#[test]
fn clip_grad_norm_scales_every_gradient_by_the_total_norm() {
    let p = Param::from(Tensor::<f64>::zeros(&[2]));
    let q = Param::from(Tensor::<f64>::zeros(&[2]));
    let unused = Param::from(Tensor::<f64>::zeros(&[3]));
    let set = |g: [f64; 4]| {
        p.get()
            .set_grad(Some(Tensor::from_vec(g[..2].to_vec(), &[2]).unwrap()))
            .unwrap();
        q.get()
            .set_grad(Some(Tensor::from_vec(g[2..].to_vec(), &[2]).unwrap()))
            .unwrap();
    };
    let params = [p.clone(), unused.clone(), q.clone()];
    // Total norm √(1 + 4 + 4 + 16) = 5 over both gradients; scaled by 2 / (5 + 1e-6).
    set([1.0, 2.0, -2.0, 4.0]);
    let norm = clip_grad_norm(&params, 2.0).unwrap();
    assert_eq!(norm, 5.0);
    let c = 2.0 / (5.0 + 1e-6);
    assert_eq!(p.grad().unwrap().to_vec(), vec![c, 2.0 * c]);
    assert_eq!(q.grad().unwrap().to_vec(), vec![-2.0 * c, 4.0 * c]);
    assert!(unused.grad().is_none());
    // Below the limit: unchanged.
    set([1.0, 2.0, -2.0, 4.0]);
    assert_eq!(clip_grad_norm(&params, 10.0).unwrap(), 5.0);
    assert_eq!(q.grad().unwrap().to_vec(), vec![-2.0, 4.0]);
    // An infinite gradient or a bad limit: an error, and no gradient changes.
    set([1.0, f64::INFINITY, -2.0, 4.0]);
    let e = clip_grad_norm(&params, 1.0).unwrap_err().to_string();
    assert!(e.contains("clip_grad_norm") && e.contains("inf"), "{e}");
    assert_eq!(q.grad().unwrap().to_vec(), vec![-2.0, 4.0]);
    let e = clip_grad_norm(&params, -1.0).unwrap_err().to_string();
    assert!(e.contains("clip_grad_norm") && e.contains("-1"), "{e}");
}

#[test]
fn clip_grad_norm_of_large_finite_f64_gradients_is_finite() {
    // (1e200, 1e200): the squares overflow f64, the norm √2·1e200 does not
    let p = Param::<f64>::from(Tensor::<f64>::zeros(&[2]));
    let w = Tensor::<f64>::from_vec(vec![1e200, 1e200], &[2]).unwrap();
    (&p.get() * &w).sum().backward().unwrap();
    let norm = clip_grad_norm(std::slice::from_ref(&p), 1.0).unwrap();
    assert!((norm / (2f64.sqrt() * 1e200) - 1.0).abs() < 1e-12, "{norm}");
    let g = p.grad().unwrap().to_vec();
    assert!(g.iter().all(|v| (v - 0.5f64.sqrt()).abs() < 1e-9), "{g:?}");
    // a NaN after a large value still errs
    let q = Param::<f64>::from(Tensor::<f64>::zeros(&[2]));
    let w = Tensor::<f64>::from_vec(vec![1e200, f64::NAN], &[2]).unwrap();
    (&q.get() * &w).sum().backward().unwrap();
    assert!(clip_grad_norm(std::slice::from_ref(&q), 1.0).is_err());
}

#[test]
fn nesterov_without_momentum_is_an_error_not_plain_sgd() {
    let p = Param::new(Tensor::scalar(1.0));
    (&p.get() * &p.get()).backward().unwrap();
    let mut opt = Sgd::new(vec![p.clone()], 0.1).nesterov(true);
    let e = opt.step().unwrap_err().to_string();
    assert!(
        e.starts_with("sgd:") && e.contains("nesterov") && e.contains('0'),
        "{e}"
    );
    assert_eq!(p.get().item(), 1.0, "a failed step changed the parameter");
    let mut opt = Sgd::new(vec![p.clone()], 0.1).momentum(0.9).nesterov(true);
    opt.step().unwrap();
    assert!(p.get().item() < 1.0);
}

/// `p` after each of 5 steps of `torch.optim.AdamW([p], lr=0.05, weight_decay=0.1)` on
/// [`loss`] from `p = [1.0, -0.5, 2.0]`, in float64, printed by PyTorch 2.15.0
/// (`repr` of each value): the values themselves, not a re-implementation.
const TORCH_ADAMW: [[f64; 3]; 5] = [
    [1.044999999875, -0.5474999993333334, 1.9400000000416666],
    [1.0897421077852354, -0.5947140996601085, 1.8803635940725336],
    [1.1342049469927173, -0.6416096672131779, 1.8211346454755104],
    [1.1783667606858412, -0.6881529487538072, 1.7623592690560992],
    [1.2222054718371274, -0.7343091419844359, 1.704085806470445],
];

#[test]
fn adamw_matches_values_printed_by_pytorch() {
    let p = Param::from(Tensor::<f64>::from_vec(vec![1.0, -0.5, 2.0], &[3]).unwrap());
    let mut opt = AdamW::new(vec![p.clone()], 0.05).weight_decay(0.1);
    for (step, want) in TORCH_ADAMW.iter().enumerate() {
        opt.zero_grad();
        loss(&p.get()).backward().unwrap();
        opt.step().unwrap();
        for (got, want) in p.get().to_vec().iter().zip(want) {
            assert!(
                (got - want).abs() <= 1e-12 * want.abs(),
                "AdamW step {step}: {got} against PyTorch's {want}"
            );
        }
    }
}
