//! Backward passes started from inside another pass — from a tensor hook, an
//! `on_grad_ready` callback, a custom op's backward (as gradient checkpointing does) and the
//! leaf hooks of a wide graph — all finish, under every scheduler and thread count, with the
//! same bits as the inner pass run alone. Each case runs under a watchdog, so a deadlock fails
//! the test instead of hanging it.

use crate::common::{exec_configs, watchdog};
use backflow::{grad, BackwardCtx, BackwardOptions, CustomOp, Result, Scheduler, Tensor};
use std::sync::{Arc, Mutex};

/// Seconds each configuration may take before it counts as hung.
const DEADLINE: u64 = 60;

/// A graph of about `nodes` nodes: eight branches of `sin(x·c)` steps from one leaf, summed.
/// Returns the leaf and the scalar loss.
fn graph(nodes: usize, seed: u64) -> (Tensor<f64>, Tensor<f64>) {
    let x = Tensor::<f64>::randn(&[4], seed).requires_grad();
    let steps = (nodes / 8 / 2).max(1);
    let mut loss = Tensor::scalar(0.0);
    for b in 0..8 {
        let mut h = x.clone();
        for s in 0..steps {
            h = (&h * (1.0 + 0.01 * (b * steps + s) as f64)).sin();
        }
        loss = &loss + &h.sum();
    }
    (x, loss)
}

/// The bits of `x`'s gradient after a backward pass of `loss` under `opts`.
fn grad_bits(x: &Tensor<f64>) -> Vec<u64> {
    x.grad()
        .expect("a gradient")
        .to_vec()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// The reference: the inner graph's gradient, from a pass run alone with `Dfs`.
fn reference(nodes: usize, seed: u64) -> Vec<u64> {
    let (x, loss) = graph(nodes, seed);
    loss.backward_with(&BackwardOptions::new().scheduler(Scheduler::Dfs))
        .expect("reference backward");
    grad_bits(&x)
}

/// Runs `case(opts)` under a watchdog for every configuration.
fn each_config(name: &str, case: fn(BackwardOptions)) {
    for opts in exec_configs() {
        let label = format!(
            "{name} {}/{}",
            opts.get_scheduler().name(),
            opts.get_threads()
        );
        watchdog(&label, DEADLINE, move || case(opts));
    }
}

#[test]
fn a_hook_runs_backward_on_another_200_node_graph() {
    each_config("hook", |opts| {
        let (inner_x, inner_loss) = graph(200, 7);
        let inner = Mutex::new(Some(inner_loss));
        let inner_opts = opts.clone();
        let (x, loss) = graph(200, 1);
        // A tensor in the middle of the outer graph: its gradient flows through the hook.
        let mid = (&x * 2.0).sin();
        let loss = &loss + &mid.sum();
        mid.register_hook(move |_g| {
            if let Some(l) = inner.lock().unwrap().take() {
                l.backward_with(&inner_opts).expect("inner backward");
            }
            None
        });
        loss.backward_with(&opts).expect("outer backward");
        assert_eq!(grad_bits(&inner_x), reference(200, 7));
    });
}

#[test]
fn an_on_grad_ready_callback_runs_a_backward() {
    each_config("on_grad_ready", |opts| {
        let (inner_x, inner_loss) = graph(200, 8);
        let inner = Mutex::new(Some(inner_loss));
        let inner_opts = opts.clone();
        let (x, loss) = graph(200, 2);
        x.on_grad_ready(move |_g| {
            if let Some(l) = inner.lock().unwrap().take() {
                l.backward_with(&inner_opts).expect("inner backward");
            }
        });
        loss.backward_with(&opts).expect("outer backward");
        assert_eq!(grad_bits(&inner_x), reference(200, 8));
    });
}

/// y = x, whose backward differentiates a fresh 200-node graph of its input with `grad`
/// (as gradient checkpointing does) and adds that gradient to the one flowing through.
struct Recompute {
    opts: BackwardOptions,
    got: Arc<Mutex<Option<Vec<u64>>>>,
}

impl CustomOp<f64> for Recompute {
    fn name(&self) -> &'static str {
        "recompute"
    }
    fn forward(&self, inputs: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
        Ok(inputs[0].clone())
    }
    fn backward(
        &self,
        _inputs: &[Tensor<f64>],
        _output: &Tensor<f64>,
        grad_out: &Tensor<f64>,
        _ctx: &BackwardCtx,
    ) -> Result<Vec<Option<Tensor<f64>>>> {
        let (x, loss) = backflow::enable_grad(|| graph(200, 9));
        let g = grad(&[&loss], &[], &[&x], &self.opts)?;
        let g = g[0].clone().expect("a gradient");
        *self.got.lock().unwrap() = Some(g.to_vec().iter().map(|v| v.to_bits()).collect());
        Ok(vec![Some(grad_out + &g)])
    }
}

#[test]
fn a_custom_op_backward_calls_grad() {
    each_config("custom op grad", |opts| {
        let got = Arc::new(Mutex::new(None));
        let (x, loss) = graph(200, 3);
        let op = Recompute {
            opts: opts.clone(),
            got: Arc::clone(&got),
        };
        let y = Tensor::apply_op(op, &[&x]).expect("apply");
        let loss = &loss + &y.sin().sum();
        loss.backward_with(&opts).expect("outer backward");
        let got = got.lock().unwrap().take().expect("the op's backward ran");
        assert_eq!(got, reference(200, 9));
    });
}

#[test]
fn leaf_hooks_of_a_wide_graph_run_backwards() {
    each_config("wide leaf hooks", |opts| {
        let leaves: Vec<Tensor<f64>> = (0..32)
            .map(|i| Tensor::<f64>::randn(&[4], 100 + i).requires_grad())
            .collect();
        let mut inner_xs = Vec::new();
        let mut loss = Tensor::scalar(0.0);
        for (i, w) in leaves.iter().enumerate() {
            let (inner_x, inner_loss) = graph(80, 200 + i as u64);
            inner_xs.push(inner_x);
            let inner = Mutex::new(Some(inner_loss));
            let inner_opts = opts.clone();
            w.on_grad_ready(move |_g| {
                if let Some(l) = inner.lock().unwrap().take() {
                    l.backward_with(&inner_opts).expect("inner backward");
                }
            });
            loss = &loss + &(w * 1.5).tanh().sum();
        }
        loss.backward_with(&opts).expect("outer backward");
        for (i, x) in inner_xs.iter().enumerate() {
            assert_eq!(grad_bits(x), reference(80, 200 + i as u64), "leaf {i}");
        }
    });
}
