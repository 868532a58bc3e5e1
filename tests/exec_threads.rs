//! The executor's threads: rayon inside a backward function never hangs, one caller's
//! pass never waits for another caller's long branch, the process keeps one bounded set of
//! helper threads whatever thread counts are asked for, and any count is accepted (clamped).
//! Every case runs under a watchdog, so a hang fails the test instead of stalling it.

mod common;

use backflow::exec::{clamp_threads, default_threads, max_threads};
use backflow::{BackwardCtx, BackwardOptions, CustomOp, Result, Scheduler, Tensor};
use common::{exec_configs, watchdog};
use rayon::prelude::*;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

/// Seconds each configuration may take before it counts as hung.
const DEADLINE: u64 = 60;

/// A graph of about `nodes` nodes in eight branches from one leaf; each step applies `step`.
fn graph(
    nodes: usize,
    seed: u64,
    step: impl Fn(&Tensor<f64>) -> Tensor<f64>,
) -> (Tensor<f64>, Tensor<f64>) {
    let x = Tensor::<f64>::randn(&[4], seed).requires_grad();
    let steps = (nodes / 8 / 2).max(1);
    let mut loss = Tensor::scalar(0.0);
    for _ in 0..8 {
        let mut h = x.clone();
        for _ in 0..steps {
            h = step(&(&h * 1.01));
        }
        loss = &loss + &h.sum();
    }
    (x, loss)
}

fn bits(t: &Tensor<f64>) -> Vec<u64> {
    t.to_vec().iter().map(|v| v.to_bits()).collect()
}

/// y = sin(x), whose backward computes cos(x) with a rayon `par_iter`.
struct ParSin;

impl CustomOp<f64> for ParSin {
    fn name(&self) -> &'static str {
        "par_sin"
    }
    fn forward(&self, inputs: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
        Ok(inputs[0].sin())
    }
    fn backward(
        &self,
        inputs: &[Tensor<f64>],
        _output: &Tensor<f64>,
        grad: &Tensor<f64>,
        _ctx: &BackwardCtx,
    ) -> Result<Vec<Option<Tensor<f64>>>> {
        let x = inputs[0].to_vec();
        let g = grad.to_vec();
        let dx: Vec<f64> = x.par_iter().zip(&g).map(|(x, g)| g * x.cos()).collect();
        Ok(vec![Some(Tensor::from_vec(dx, inputs[0].shape())?)])
    }
}

#[test]
fn rayon_inside_a_custom_op_backward_never_hangs() {
    let par = |t: &Tensor<f64>| Tensor::apply_op(ParSin, &[t]).expect("apply");
    let (x, loss) = graph(120, 5, par);
    loss.backward_with(&BackwardOptions::new().scheduler(Scheduler::Dfs))
        .expect("reference");
    let want = bits(&x.grad().expect("grad"));
    for opts in exec_configs() {
        let label = format!(
            "par_iter {}/{}",
            opts.get_scheduler().name(),
            opts.get_threads()
        );
        let want = want.clone();
        watchdog(&label, DEADLINE, move || {
            for _ in 0..5 {
                let (x, loss) = graph(120, 5, par);
                loss.backward_with(&opts).expect("backward");
                assert_eq!(bits(&x.grad().expect("grad")), want);
            }
        });
    }
}

/// y = x, whose backward tells `started` it runs, then blocks until `release` says so.
struct Blocking {
    started: Mutex<Sender<()>>,
    release: Mutex<Receiver<()>>,
}

impl CustomOp<f64> for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }
    fn forward(&self, inputs: &[&Tensor<f64>]) -> Result<Tensor<f64>> {
        Ok(inputs[0].clone())
    }
    fn backward(
        &self,
        _inputs: &[Tensor<f64>],
        _output: &Tensor<f64>,
        grad: &Tensor<f64>,
        _ctx: &BackwardCtx,
    ) -> Result<Vec<Option<Tensor<f64>>>> {
        self.started.lock().unwrap().send(()).expect("signal start");
        self.release.lock().unwrap().recv().expect("wait for B");
        Ok(vec![Some(grad.clone())])
    }
}

#[test]
fn a_second_caller_finishes_while_the_first_callers_long_branch_runs() {
    for opts in exec_configs() {
        let label = format!(
            "two callers {}/{}",
            opts.get_scheduler().name(),
            opts.get_threads()
        );
        watchdog(&label, DEADLINE, move || {
            let (started_tx, started_rx) = channel();
            let (release_tx, release_rx) = channel();
            let op = Blocking {
                started: Mutex::new(started_tx),
                release: Mutex::new(release_rx),
            };
            let a_opts = opts.clone();
            // A: a 200-node pass with one branch that waits for B to finish.
            let a = std::thread::spawn(move || {
                let (x, loss) = graph(200, 11, |t| t.sin());
                let blocked = Tensor::apply_op(op, &[&x]).expect("apply");
                let loss = &loss + &blocked.sum();
                loss.backward_with(&a_opts).expect("A's backward");
                x.grad().expect("A's gradient")
            });
            started_rx.recv().expect("A's long branch started");
            // B: an unrelated 120-node pass, with the same options, while A's branch runs.
            let (y, loss) = graph(120, 12, |t| t.sin());
            loss.backward_with(&opts).expect("B's backward");
            assert!(y.grad().is_some());
            release_tx.send(()).expect("release A");
            a.join().expect("A finished");
        });
    }
}

/// Threads of this process, from `/proc/self/status` (`None` where there is none).
fn os_threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

#[test]
fn passes_at_every_thread_count_leave_one_bounded_set_of_helpers() {
    watchdog("thread count", DEADLINE * 2, || {
        let before = os_threads();
        for scheduler in Scheduler::ALL {
            for threads in 1..=64 {
                let opts = BackwardOptions::new().scheduler(scheduler).threads(threads);
                let (x, loss) = graph(120, threads as u64, |t| t.sin());
                loss.backward_with(&opts).expect("backward");
                assert!(x.grad().is_some());
            }
        }
        if let (Some(before), Some(after)) = (before, os_threads()) {
            // The helpers (at most max_threads() - 1), plus a few for the test harness and
            // rayon's pool.
            let limit = before + max_threads() + default_threads() + 4;
            assert!(
                after <= limit,
                "{after} threads after the passes, {before} before (cap {})",
                max_threads()
            );
        }
    });
}

#[test]
fn any_thread_count_is_accepted_and_clamped() {
    assert_eq!(
        BackwardOptions::new().threads(usize::MAX).get_threads(),
        max_threads()
    );
    assert_eq!(
        BackwardOptions::new().threads(0).get_threads(),
        default_threads().min(max_threads())
    );
    assert_eq!(clamp_threads(1), 1);
    assert!(max_threads() >= 8 && max_threads() <= 256);
    for opts in exec_configs() {
        for threads in [0, 1000, usize::MAX] {
            let opts = opts.clone().threads(threads);
            let label = format!("threads({threads}) {}", opts.get_scheduler().name());
            watchdog(&label, DEADLINE, move || {
                let (x, loss) = graph(120, 3, |t| t.sin());
                loss.backward_with(&opts).expect("backward");
                assert!(x.grad().is_some());
            });
        }
    }
}

#[test]
fn inside_a_user_rayon_pool_rayon_and_nested_passes_never_hang() {
    // Called from a rayon worker, a pass is also helped by that pool's threads: rayon's
    // work-stealing waits (par_iter in a backward) and nested passes must still finish.
    let par = |t: &Tensor<f64>| Tensor::apply_op(ParSin, &[t]).expect("apply");
    let (x, loss) = graph(120, 6, par);
    loss.backward_with(&BackwardOptions::new().scheduler(Scheduler::Dfs))
        .expect("reference");
    let want = bits(&x.grad().expect("grad"));
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .expect("pool"),
    );
    for opts in exec_configs() {
        let label = format!(
            "user pool {}/{}",
            opts.get_scheduler().name(),
            opts.get_threads()
        );
        let (want, pool) = (want.clone(), Arc::clone(&pool));
        watchdog(&label, DEADLINE, move || {
            pool.install(|| {
                (0..4).into_par_iter().for_each(|_| {
                    let (x, loss) = graph(120, 6, par);
                    // A hook that runs a whole pass of another graph, from inside this one.
                    let (inner_x, inner_loss) = graph(120, 7, |t| t.sin());
                    let inner = Mutex::new(Some(inner_loss));
                    let inner_opts = opts.clone();
                    x.on_grad_ready(move |_| {
                        if let Some(l) = inner.lock().unwrap().take() {
                            l.backward_with(&inner_opts).expect("inner backward");
                        }
                    });
                    loss.backward_with(&opts).expect("backward");
                    assert_eq!(bits(&x.grad().expect("grad")), want);
                    assert!(inner_x.grad().is_some(), "the nested pass ran");
                });
            });
        });
    }
}
