//! Hooks: a tensor hook sees, and may replace, the gradient flowing into its tensor; a
//! leaf's grad-ready callback fires exactly once per pass, with that pass's gradient, as
//! soon as the gradient is final, while the pass goes on. Both are thread-safe under
//! `Parallel`. Under every scheduler, `Parallel` at 2 and 4 threads.

use backflow::{
    enable_grad, is_grad_enabled, no_grad, BackwardOptions, BackwardStats, Scheduler, Tensor,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type T64 = Tensor<f64>;

use crate::common::configs;

#[test]
fn a_tensor_hook_sees_and_replaces_the_gradient() {
    // L = sin(3x): dL/dy = cos(y) at y = 3x; the hook doubles it, so dL/dx = 2·3·cos(3x).
    for opts in configs() {
        let x = T64::scalar(0.2).requires_grad();
        let y = &x * 3.0;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        y.register_hook(move |g| {
            log.lock().unwrap().push(g.item());
            Some(g * 2.0)
        });
        y.sin().backward_with(&opts).unwrap();
        let y0 = 0.2f64 * 3.0;
        assert_eq!(*seen.lock().unwrap(), vec![y0.cos()], "{opts:?}");
        assert_eq!(x.grad().unwrap().item(), y0.cos() * 2.0 * 3.0, "{opts:?}");
    }
}

#[test]
fn hooks_see_the_summed_gradient_once_and_chain_in_order() {
    // y is used by three consumers: the hook runs once, on the sum 1 + 2 + 3 = 6; a
    // second hook sees the first one's replacement (6 + 1) and a leaf hook replaces x's.
    for opts in configs() {
        let x = T64::scalar(1.0).requires_grad();
        let y = x.exp();
        let calls = Arc::new(AtomicUsize::new(0));
        let (c, seen) = (Arc::clone(&calls), Arc::new(Mutex::new(Vec::new())));
        let s = Arc::clone(&seen);
        y.register_hook(move |g| {
            c.fetch_add(1, Ordering::SeqCst);
            Some(g + 1.0)
        });
        y.register_hook(move |g| {
            s.lock().unwrap().push(g.item());
            None
        });
        x.register_hook(|g| Some(g * 10.0));
        (&(&y + &(&y * 2.0)) + &(&y * 3.0))
            .backward_with(&opts)
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{opts:?}");
        assert_eq!(*seen.lock().unwrap(), vec![7.0], "{opts:?}");
        // dL/dx = (6 + 1)·e, then ×10 by x's hook.
        assert_eq!(
            x.grad().unwrap().item(),
            10.0 * 7.0 * 1f64.exp(),
            "{opts:?}"
        );
    }
}

/// `leaves` weights `[4, 4]`, each in its own branch `tanh(x @ W).sum()`, the branch sums
/// folded into one loss: many leaves finishing on different workers.
fn many_leaves(leaves: usize) -> (Vec<T64>, T64) {
    let x = T64::randn(&[3, 4], 0);
    let ws: Vec<T64> = (0..leaves)
        .map(|i| (&T64::randn(&[4, 4], 1 + i as u64) * 0.5).requires_grad())
        .collect();
    let sums: Vec<T64> = ws
        .iter()
        .map(|w| x.matmul(w).unwrap().tanh().sum())
        .collect();
    let loss = sums.iter().skip(1).fold(sums[0].clone(), |acc, s| &acc + s);
    (ws, loss)
}

#[test]
fn grad_ready_fires_once_per_leaf_per_pass_with_many_leaves() {
    const LEAVES: usize = 200;
    for opts in configs() {
        let (ws, loss) = many_leaves(LEAVES);
        let fired: Arc<Vec<AtomicUsize>> =
            Arc::new((0..LEAVES).map(|_| AtomicUsize::new(0)).collect());
        let received: Arc<Mutex<Vec<Option<Vec<f64>>>>> = Arc::new(Mutex::new(vec![None; LEAVES]));
        for (i, w) in ws.iter().enumerate() {
            let (fired, received) = (Arc::clone(&fired), Arc::clone(&received));
            w.on_grad_ready(move |g| {
                fired[i].fetch_add(1, Ordering::SeqCst);
                received.lock().unwrap()[i] = Some(g.to_vec());
            });
        }
        let retained = opts.clone().retain_graph(true);
        for pass in 1..=2 {
            loss.backward_with(&retained).unwrap();
            for (i, w) in ws.iter().enumerate() {
                assert_eq!(fired[i].load(Ordering::SeqCst), pass, "{opts:?} leaf {i}");
                // The callback gets this pass's gradient, not the running total.
                let got = received.lock().unwrap()[i].take().unwrap();
                let total = w.grad().unwrap().to_vec();
                let per_pass: Vec<f64> = total.iter().map(|v| v / pass as f64).collect();
                assert_eq!(got, per_pass, "{opts:?} leaf {i} pass {pass}");
            }
        }
    }
}

#[test]
fn grad_ready_fires_while_the_pass_is_still_running() {
    // L = chain(b) · a, with `a` the last input so every scheduler reaches it early. The
    // chain holds a node that waits (up to a timeout) for a's callback: the callback must
    // fire before that node runs, so before the pass ends. Under Parallel another worker
    // runs a's leaf while this node blocks. The chain is long enough (over 64 nodes) for
    // Parallel to use its workers.
    const CHAIN: usize = 100;
    for opts in configs() {
        let a = T64::scalar(2.0).requires_grad();
        let b = T64::scalar(0.1).requires_grad();
        let ready = Arc::new(AtomicBool::new(false));
        let stats = BackwardStats::new();
        let (flag, counter, when) = (
            Arc::clone(&ready),
            Arc::clone(&stats),
            Arc::new(AtomicUsize::new(0)),
        );
        let seen_at = Arc::clone(&when);
        a.on_grad_ready(move |_| {
            seen_at.store(counter.nodes_run(), Ordering::SeqCst);
            flag.store(true, Ordering::SeqCst);
        });
        let mut h = b.clone();
        for _ in 0..CHAIN / 2 {
            h = &h * 1.001;
        }
        let waited = Arc::clone(&ready);
        let gate_saw_ready = Arc::new(AtomicBool::new(false));
        let saw = Arc::clone(&gate_saw_ready);
        h = Tensor::from_op("gate", h.to_vec(), vec![], &[&h], move |g, _| {
            let start = Instant::now();
            while !waited.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(20) {
                std::thread::yield_now();
            }
            saw.store(waited.load(Ordering::SeqCst), Ordering::SeqCst);
            Ok(vec![Some(g.clone())])
        });
        for _ in 0..CHAIN / 2 {
            h = &h * 1.001;
        }
        let loss = &h * &a;
        loss.backward_with(&opts.clone().stats(stats.clone()))
            .unwrap();
        let total = stats.nodes_run();
        assert_eq!(total, CHAIN + 4, "{opts:?}");
        assert!(
            gate_saw_ready.load(Ordering::SeqCst),
            "{opts:?}: callback not fired before the gate"
        );
        let at = when.load(Ordering::SeqCst);
        assert!(
            at <= total - CHAIN / 2,
            "{opts:?}: fired after {at} of {total} nodes"
        );
    }
}

#[test]
fn grad_ready_skips_leaves_that_got_no_gradient() {
    for opts in configs() {
        let x = T64::scalar(1.0).requires_grad();
        let unused = T64::scalar(1.0).requires_grad();
        let fired = Arc::new(AtomicUsize::new(0));
        for t in [&x, &unused] {
            let f = Arc::clone(&fired);
            t.on_grad_ready(move |_| {
                f.fetch_add(1, Ordering::SeqCst);
            });
        }
        x.sin().backward_with(&opts).unwrap();
        assert_eq!(fired.load(Ordering::SeqCst), 1, "{opts:?}");
    }
}

/// Every scheduler at 1, 2 and 4 threads (the count only matters to `Parallel`).
fn schedulers_and_threads() -> Vec<BackwardOptions> {
    Scheduler::ALL
        .into_iter()
        .flat_map(|s| [1, 2, 4].map(|t| BackwardOptions::new().scheduler(s).threads(t)))
        .collect()
}

/// Runs an inner pass from a hook of an outer pass; returns what `is_grad_enabled()` said
/// in the inner pass's ready callbacks and hooks, and in the outer hook.
fn modes_in_nested_callbacks(
    opts: &BackwardOptions,
    outer_create: bool,
    inner_create: bool,
) -> (Vec<bool>, Vec<bool>) {
    let inner_modes = Arc::new(Mutex::new(Vec::new()));
    let outer_modes = Arc::new(Mutex::new(Vec::new()));
    let (log, outer_log) = (Arc::clone(&inner_modes), Arc::clone(&outer_modes));
    let inner_opts = opts.clone().create_graph(inner_create);
    let x = T64::randn(&[4], 1).requires_grad();
    let h = x.sin();
    h.register_hook(move |_| {
        outer_log.lock().unwrap().push(is_grad_enabled());
        // The inner pass: several leaves on parallel branches, so that `Parallel` runs
        // some of their callbacks on its workers. Built under `enable_grad`: the hook runs
        // under the outer pass's mode, which records nothing without `create_graph`.
        enable_grad(|| {
            let leaves: Vec<T64> = (0..6)
                .map(|i| T64::randn(&[3], 10 + i).requires_grad())
                .collect();
            let mut loss: Option<T64> = None;
            for leaf in &leaves {
                let l = Arc::clone(&log);
                leaf.on_grad_ready(move |_| l.lock().unwrap().push(is_grad_enabled()));
                let branch = leaf.tanh();
                let l = Arc::clone(&log);
                branch.register_hook(move |_| {
                    l.lock().unwrap().push(is_grad_enabled());
                    None
                });
                let term = branch.sum();
                loss = Some(match loss.take() {
                    Some(acc) => &acc + &term,
                    None => term,
                });
            }
            loss.unwrap().backward_with(&inner_opts).unwrap();
        });
        None
    });
    let loss = &h.sum() + &x.cos().sum();
    loss.backward_with(&opts.clone().create_graph(outer_create))
        .unwrap();
    let inner = inner_modes.lock().unwrap().clone();
    let outer = outer_modes.lock().unwrap().clone();
    (inner, outer)
}

#[test]
fn hooks_and_ready_callbacks_record_exactly_when_their_pass_creates_a_graph() {
    for opts in schedulers_and_threads() {
        for outer_create in [false, true] {
            for inner_create in [false, true] {
                let (inner, outer) = modes_in_nested_callbacks(&opts, outer_create, inner_create);
                let label = format!("{opts:?} outer {outer_create} inner {inner_create}");
                // Six ready callbacks and six hooks in the inner pass, one outer hook.
                assert_eq!(inner, vec![inner_create; 12], "{label}");
                assert_eq!(outer, vec![outer_create], "{label}");
            }
        }
        // The caller's own mode does not leak into the callbacks either.
        for caller_mode in [false, true] {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let x = T64::scalar(2.0).requires_grad();
            let log = Arc::clone(&seen);
            x.on_grad_ready(move |_| log.lock().unwrap().push(is_grad_enabled()));
            let y = &x * &x;
            let run = || y.backward_with(&opts).unwrap();
            if caller_mode {
                enable_grad(run);
            } else {
                no_grad(run);
            }
            assert_eq!(
                *seen.lock().unwrap(),
                vec![false],
                "{opts:?} caller {caller_mode}"
            );
        }
    }
}

#[test]
fn a_hook_holding_a_weak_handle_on_its_tensor_lets_it_be_freed() {
    // A hook that captured `x` itself would keep x's node, and so x, alive forever; one
    // that captures `x.downgrade()` does not.
    let x = T64::scalar(3.0).requires_grad();
    let me = x.downgrade();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    x.on_grad_ready(move |g| {
        let x = me.upgrade().expect("x is alive during its own pass");
        log.lock().unwrap().push((g.item(), x.item()));
    });
    x.register_hook({
        let me = x.downgrade();
        move |g| Some(g * me.upgrade().unwrap().item())
    });
    (&x * &x).backward().unwrap();
    // The hook multiplied 2x = 6 by x = 3.
    assert_eq!(*seen.lock().unwrap(), vec![(18.0, 3.0)]);
    let weak = x.downgrade();
    assert!(weak.upgrade().is_some());
    drop(x);
    assert!(weak.upgrade().is_none(), "x outlived its last handle");
}
