//! Gradients: all or nothing. A pass that returns `Err` leaves every leaf's
//! `.grad()` exactly as before under every scheduler; a bad trace path fails before the
//! pass; `grad` answers an input listed twice; a hook's result must keep the shape.

use crate::common;

use backflow::{grad, BackwardOptions, BackwardStats, Scheduler, Tensor};
use std::sync::{Arc, Mutex};

/// `Σ_i 3·x_i` over `n` scalar leaves, each through its own custom op; the op of branch
/// `bad` (if any) returns no gradient at all (a wrong count).
fn branches(leaves: &[Tensor<f64>], bad: Option<usize>) -> Tensor<f64> {
    let mut total: Option<Tensor<f64>> = None;
    for (i, x) in leaves.iter().enumerate() {
        let wrong = bad == Some(i);
        let data = vec![3.0 * x.item()];
        let y = Tensor::from_op("triple", data, vec![], &[x], move |gy, _| {
            if wrong {
                Ok(vec![])
            } else {
                Ok(vec![Some(gy * 3.0)])
            }
        });
        total = Some(match total {
            Some(t) => &t + &y,
            None => y,
        });
    }
    total.unwrap()
}

fn grads(leaves: &[Tensor<f64>]) -> Vec<Option<f64>> {
    leaves.iter().map(|x| x.grad().map(|g| g.item())).collect()
}

#[test]
fn a_failed_pass_leaves_no_partial_gradients_under_any_scheduler() {
    for opts in common::configs() {
        let leaves: Vec<Tensor<f64>> = (0..40)
            .map(|i| Tensor::scalar(i as f64).requires_grad())
            .collect();
        let e = branches(&leaves, Some(17))
            .backward_with(&opts)
            .unwrap_err();
        assert!(e.to_string().contains("triple"), "{e}");
        assert!(
            e.to_string().contains("returned 0 gradients for 1 inputs"),
            "{e}"
        );
        // Parallel used to leave 39 of 40 leaves with a gradient.
        assert_eq!(grads(&leaves), vec![None; 40], "{opts:?}");
    }
}

#[test]
fn a_failed_pass_leaves_earlier_gradients_exactly_as_they_were() {
    for opts in common::configs() {
        let leaves: Vec<Tensor<f64>> = (0..40)
            .map(|i| Tensor::scalar(i as f64).requires_grad())
            .collect();
        branches(&leaves, None).backward_with(&opts).unwrap();
        assert_eq!(grads(&leaves), vec![Some(3.0); 40]);
        branches(&leaves, Some(5)).backward_with(&opts).unwrap_err();
        assert_eq!(grads(&leaves), vec![Some(3.0); 40], "{opts:?}");
        // A later successful pass still sums in.
        branches(&leaves, None).backward_with(&opts).unwrap();
        assert_eq!(grads(&leaves), vec![Some(6.0); 40]);
    }
}

#[test]
fn a_failed_multi_root_pass_leaves_gradients_unchanged() {
    for opts in common::configs() {
        let leaves: Vec<Tensor<f64>> = (0..8)
            .map(|i| Tensor::scalar(i as f64).requires_grad())
            .collect();
        let good = branches(&leaves[..4], None);
        let bad = branches(&leaves[4..], Some(2));
        backflow::backward(&[&good, &bad], &[], &opts).unwrap_err();
        assert_eq!(grads(&leaves), vec![None; 8], "{opts:?}");
    }
}

#[test]
fn ready_callbacks_still_fire_mid_pass_with_the_final_gradient() {
    // Kahn runs the root, then x (a direct input of the root), then the chain to the failing
    // op at its far end: x's callback fires before the pass fails.
    let x = Tensor::<f64>::scalar(2.0).requires_grad();
    let z = Tensor::<f64>::scalar(1.0).requires_grad();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let probe = x.clone();
    x.on_grad_ready(move |g| {
        log.lock()
            .unwrap()
            .push((g.item(), probe.grad().map(|g| g.item())))
    });
    let failing = Tensor::from_op("fails", vec![z.item()], vec![], &[&z], |_, _| {
        Err(backflow::Error::Invalid {
            op: "fails",
            message: "on purpose".into(),
        })
    });
    let mut chain = failing;
    for _ in 0..20 {
        chain = chain.sin();
    }
    let loss = &(&x * &x) + &chain;
    let opts = BackwardOptions::new().scheduler(Scheduler::Kahn);
    let e = loss.backward_with(&opts).unwrap_err();
    assert!(e.to_string().contains("on purpose"), "{e}");
    assert_eq!(*seen.lock().unwrap(), vec![(4.0, None)]); // d(x²)/dx = 2x = 4
    assert!(x.grad().is_none());
    // On success the callback sees this pass's gradient, and grad() is committed after it.
    (&x * &x).backward().unwrap();
    assert_eq!(seen.lock().unwrap()[1], (4.0, None));
    assert_eq!(x.grad().unwrap().item(), 4.0);
}

#[test]
fn an_unwritable_trace_path_fails_before_the_pass() {
    for opts in common::configs() {
        let x = Tensor::<f64>::scalar(3.0).requires_grad();
        let stats = BackwardStats::new();
        let opts = opts.trace("/nonexistent/t.json").stats(stats.clone());
        let e = (&x * &x).backward_with(&opts).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("trace: cannot write /nonexistent/t.json"),
            "{e}"
        );
        // Used to return the error only after writing x's gradient.
        assert!(x.grad().is_none());
        assert_eq!(stats.nodes_run(), 0);
    }
}

#[test]
fn a_trace_still_records_a_successful_pass() {
    let dir = std::env::temp_dir().join(format!("harden_trace_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.json");
    let x = Tensor::<f64>::scalar(3.0).requires_grad();
    (&x * &x)
        .backward_with(&BackwardOptions::new().trace(&path))
        .unwrap();
    let json = std::fs::read_to_string(&path).unwrap();
    assert!(json.contains("\"name\":\"mul\""), "{json}");
    assert_eq!(x.grad().unwrap().item(), 6.0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn grad_answers_an_input_listed_twice() {
    for opts in common::configs() {
        let x = Tensor::<f64>::scalar(3.0).requires_grad();
        let y = &x * &x;
        let g = grad(&[&y], &[], &[&x, &x], &opts).unwrap();
        let g: Vec<Option<f64>> = g.iter().map(|g| g.as_ref().map(|g| g.item())).collect();
        // Used to be [Some(6), None]; PyTorch gives the gradient for both.
        assert_eq!(g, vec![Some(6.0), Some(6.0)], "{opts:?}");
        let z = Tensor::<f64>::scalar(1.0).requires_grad();
        let w = Tensor::<f64>::scalar(2.0).requires_grad();
        let y = &(&x * &w) + &w;
        let g = grad(&[&y], &[], &[&w, &z, &x, &w], &opts).unwrap();
        let g: Vec<Option<f64>> = g.iter().map(|g| g.as_ref().map(|g| g.item())).collect();
        assert_eq!(g, vec![Some(4.0), None, Some(2.0), Some(4.0)], "{opts:?}");
    }
}

#[test]
fn a_leaf_hook_returning_the_wrong_shape_is_an_error() {
    for opts in common::configs() {
        let x = Tensor::<f32>::zeros(&[2, 3]).requires_grad();
        x.register_hook(|_| Some(Tensor::zeros(&[7])));
        let e = x.sum().backward_with(&opts).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("backward of `leaf`"), "{msg}");
        assert!(msg.contains(file!()), "{msg}");
        assert!(
            msg.contains("shape [7] for the tensor's shape [2, 3]"),
            "{msg}"
        );
        // Used to end in .grad() as a [7] gradient.
        assert!(x.grad().is_none());
    }
}

#[test]
fn an_op_hook_returning_the_wrong_shape_is_an_error() {
    for opts in common::configs() {
        let x = Tensor::<f32>::ones(&[3]).requires_grad();
        let h = &x * 2.0;
        h.register_hook(|_| Some(Tensor::ones(&[4, 3])));
        let e = h.sum().backward_with(&opts).unwrap_err();
        let msg = e.to_string();
        // Used to be summed silently into x's gradient.
        // Names the hooked tensor: its op and the line that created it.
        assert!(
            msg.starts_with(&format!("backward of `{}`", h.grad_fn().unwrap().op())),
            "{msg}"
        );
        assert!(msg.contains(file!()), "{msg}");
        assert!(
            msg.contains("shape [4, 3] for the tensor's shape [3]"),
            "{msg}"
        );
        assert!(x.grad().is_none());
    }
}

#[test]
fn a_hook_returning_the_same_shape_still_replaces_the_gradient() {
    for opts in common::configs() {
        let x = Tensor::<f32>::ones(&[3]).requires_grad();
        let h = &x * 2.0;
        h.register_hook(|g| Some(g * 10.0));
        h.sum().backward_with(&opts).unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![20.0; 3]);
    }
}

/// A value a backward function captures: counts its drops, and panics on drop if `panics`.
struct DropProbe {
    drops: Arc<std::sync::atomic::AtomicUsize>,
    panics: bool,
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.drops.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.panics {
            panic!("a captured value panicked on drop");
        }
    }
}

/// `chain` ops deep over `x`, each backward function capturing a probe (the first
/// `panicking` ones panic when dropped).
fn probed_chain(
    x: &Tensor<f64>,
    chain: usize,
    panicking: usize,
    drops: &Arc<std::sync::atomic::AtomicUsize>,
) -> Tensor<f64> {
    let mut y = x.clone();
    for i in 0..chain {
        let probe = DropProbe {
            drops: Arc::clone(drops),
            panics: i < panicking,
        };
        y = Tensor::from_op("probed", vec![y.item()], vec![], &[&y], move |gy, _| {
            let _ = &probe;
            Ok(vec![Some(gy.clone())])
        });
    }
    y
}

#[test]
fn graphs_dropped_after_a_panicking_drop_are_still_freed() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // On a fresh thread: the graph's iterative drop keeps per-thread state.
    std::thread::spawn(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let x = Tensor::<f64>::scalar(1.0).requires_grad();
        // A graph whose drop panics part-way: every node is still dropped, and the panic
        // reaches the dropper.
        let bad = probed_chain(&x, 5, 1, &drops);
        let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(bad)));
        assert!(
            dropped.is_err(),
            "the captured value's panic is not swallowed"
        );
        assert_eq!(
            drops.load(Ordering::SeqCst),
            5,
            "every node of the graph was dropped"
        );
        // Graphs dropped on this thread afterwards are freed, not queued forever.
        for round in 1..=3 {
            drop(probed_chain(&x, 4, 0, &drops));
            assert_eq!(drops.load(Ordering::SeqCst), 5 + 4 * round, "round {round}");
        }
        // Also after a backward pass freed the graph (each backward function dropped once).
        let y = probed_chain(&x, 3, 0, &drops);
        y.backward().unwrap();
        assert_eq!(x.grad().unwrap().item(), 1.0);
        drop(y);
        assert_eq!(drops.load(Ordering::SeqCst), 5 + 12 + 3);
    })
    .join()
    .expect("the checks on the dropping thread pass");
}
