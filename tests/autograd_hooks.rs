//! Hooks: a tensor hook sees, and may replace, the gradient flowing into its tensor; a
//! leaf's grad-ready callback fires exactly once per pass, with that pass's gradient, as
//! soon as the gradient is final, while the pass goes on. Both are thread-safe under
//! `Parallel`. Under every scheduler, `Parallel` at 2 and 4 threads.

use backflow::{BackwardStats, Tensor};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type T64 = Tensor<f64>;

mod common;
use common::configs;

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
