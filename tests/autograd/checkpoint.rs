//! Gradient checkpointing (`backflow::checkpoint`) gives the same gradient bits as the
//! un-checkpointed graph under every scheduler and thread count, also when checkpoints
//! nest; `enable_grad` records inside `no_grad`.

use crate::common::{exec_configs, watchdog};
use backflow::nn::{Branches, Linear, Merge, Module, Optimizer, Sgd};
use backflow::{
    checkpoint, enable_grad, grad, is_grad_enabled, no_grad, Accumulation, BackwardOptions, Error,
    GradcheckTolerance, Result, Tensor,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// One block: `tanh(h·W + h)` summed with `sin(h)`, a few dozen nodes.
fn block(h: &Tensor<f64>, w: &Tensor<f64>) -> Result<Tensor<f64>> {
    let mut y = h.clone();
    for _ in 0..6 {
        y = (&(&y.matmul(w)? + &y).tanh() + &y.sin()) * 0.5;
    }
    Ok(y)
}

/// A four-block network; with `ckpt`, each block is checkpointed (and, with `nested`, the
/// second half is one checkpoint around two checkpointed blocks). Returns the weights'
/// gradient bits and the input's.
fn network(opts: &backflow::BackwardOptions, ckpt: bool, nested: bool) -> Vec<Vec<u64>> {
    let x = Tensor::<f64>::randn(&[3, 8], 1).requires_grad();
    let ws: Vec<Tensor<f64>> = (0..4)
        .map(|i| (Tensor::<f64>::randn(&[8, 8], 10 + i) * 0.3).requires_grad())
        .collect();
    let run = |h: &Tensor<f64>, w: &Tensor<f64>| -> Tensor<f64> {
        if ckpt {
            checkpoint(|t| block(&t[0], &t[1]), &[h, w]).expect("checkpoint")
        } else {
            block(h, w).expect("block")
        }
    };
    let mut h = run(&x, &ws[0]);
    h = run(&h, &ws[1]);
    if ckpt && nested {
        h = checkpoint(
            |t| {
                let a = checkpoint(|u| block(&u[0], &u[1]), &[&t[0], &t[1]])?;
                checkpoint(|u| block(&u[0], &u[1]), &[&a, &t[2]])
            },
            &[&h, &ws[2], &ws[3]],
        )
        .expect("nested checkpoint");
    } else {
        h = run(&h, &ws[2]);
        h = run(&h, &ws[3]);
    }
    let loss = h.powf(2.0).sum();
    loss.backward_with(opts).expect("backward");
    std::iter::once(&x)
        .chain(&ws)
        .map(|t| {
            t.grad()
                .expect("grad")
                .to_vec()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        })
        .collect()
}

#[test]
fn checkpointed_gradients_equal_plain_ones_bitwise() {
    for opts in exec_configs() {
        let opts = opts.accumulation(Accumulation::Deterministic);
        let label = format!(
            "checkpoint {}/{}",
            opts.get_scheduler().name(),
            opts.get_threads()
        );
        watchdog(&label, 60, move || {
            let plain = network(&opts, false, false);
            assert_eq!(network(&opts, true, false), plain, "checkpointed blocks");
            assert_eq!(network(&opts, true, true), plain, "nested checkpoints");
        });
    }
}

#[test]
fn checkpoint_does_not_record_its_segment() {
    let w = Tensor::<f64>::randn(&[4], 2).requires_grad();
    let y = checkpoint(|t| Ok(t[0].sin().sin()), &[&w]).expect("checkpoint");
    assert!(y.needs_grad());
    // Only the checkpoint node itself joins the graph.
    let z = no_grad(|| checkpoint(|t| Ok(t[0].sin()), &[&w]).expect("checkpoint"));
    assert!(!z.needs_grad());
}

#[test]
fn enable_grad_records_inside_no_grad() {
    let w = Tensor::<f64>::scalar(2.0).requires_grad();
    let y = no_grad(|| {
        assert!(!is_grad_enabled());
        let y = enable_grad(|| {
            assert!(is_grad_enabled());
            &w * &w
        });
        assert!(!is_grad_enabled(), "no_grad is restored");
        y
    });
    assert!(y.needs_grad());
    y.backward().expect("backward");
    assert_eq!(w.grad().expect("grad").item(), 4.0);
}

/// The bits of a tensor's values.
fn bits(t: &Tensor<f64>) -> Vec<u64> {
    t.to_vec().iter().map(|v| v.to_bits()).collect()
}

/// The bits of a leaf's accumulated gradient (panics, naming `what`, when it has none).
fn grad_bits(t: &Tensor<f64>, what: &str) -> Vec<u64> {
    bits(&t.grad().unwrap_or_else(|| panic!("{what} has no gradient")))
}

#[test]
fn a_captured_leaf_gets_the_gradient_it_gets_without_checkpoint() {
    // Plain: x and w both leaves of tanh(x·w).
    let (x0, w0) = (Tensor::<f64>::randn(&[2, 4], 3), Tensor::randn(&[4, 3], 4));
    let (x, w) = (x0.clone().requires_grad(), w0.clone().requires_grad());
    x.matmul(&w)
        .expect("matmul")
        .tanh()
        .sum()
        .backward()
        .expect("plain");
    // Checkpointed: w moved into the closure, only x passed as an input.
    let (xc, wk) = (x0.requires_grad(), w0.requires_grad());
    let wc = wk.clone();
    let h = checkpoint(move |t| Ok(t[0].matmul(&wc)?.tanh()), &[&xc]).expect("checkpoint");
    h.sum().backward().expect("checkpointed");
    assert_eq!(grad_bits(&wk, "captured w"), grad_bits(&w, "w"));
    assert_eq!(grad_bits(&xc, "x"), grad_bits(&x, "x"));
}

#[test]
fn a_captured_leaf_passes_gradcheck_through_checkpoint() {
    let x = Tensor::<f64>::randn(&[2, 3], 5);
    let w = Tensor::<f64>::randn(&[3, 3], 6);
    // gradcheck's fresh leaves: v[0] is the segment's input, v[1] is captured.
    backflow::gradcheck(
        |v| {
            let wc = v[1].clone();
            let h = checkpoint(move |t| Ok(t[0].matmul(&wc)?.sin() * &wc.sum()), &[&v[0]])?;
            Ok(h.powf(2.0).sum())
        },
        &[&x, &w],
        &BackwardOptions::new(),
        GradcheckTolerance::default(),
    )
    .expect("gradcheck through a captured weight");
}

#[test]
fn a_captured_non_leaf_gets_its_gradient_and_passes_it_on() {
    // a = sin(w) is computed before the segment and captured by it.
    let run = |ckpt: bool| -> (Vec<u64>, Vec<u64>) {
        let x = Tensor::<f64>::randn(&[3, 4], 7).requires_grad();
        let w = Tensor::<f64>::randn(&[4, 4], 8).requires_grad();
        let a = w.sin();
        let y = if ckpt {
            let ac = a.clone();
            checkpoint(move |t| Ok(t[0].matmul(&ac)?.tanh()), &[&x]).expect("checkpoint")
        } else {
            x.matmul(&a).expect("matmul").tanh()
        };
        y.powf(2.0).sum().backward().expect("backward");
        (grad_bits(&x, "x"), grad_bits(&w, "w below the captured a"))
    };
    assert_eq!(run(true), run(false));
}

#[test]
fn an_arc_linear_in_a_checkpointed_block_is_trained() {
    let lin = Arc::new(Linear::<f64>::new_typed(4, 3, 11));
    let x = Tensor::<f64>::randn(&[5, 4], 12);
    // The un-checkpointed gradients, for reference.
    lin.forward(&x)
        .expect("forward")
        .tanh()
        .sum()
        .backward()
        .expect("plain");
    let plain: Vec<Vec<u64>> = lin
        .parameters()
        .iter()
        .map(|p| grad_bits(&p.get(), "parameter"))
        .collect();
    lin.zero_grad();
    let before: Vec<Vec<u64>> = lin.parameters().iter().map(|p| bits(&p.get())).collect();
    let block = Arc::clone(&lin);
    let y = checkpoint(move |t| Ok(block.forward(&t[0])?.tanh()), &[&x]).expect("checkpoint");
    y.sum().backward().expect("checkpointed");
    let got: Vec<Vec<u64>> = lin
        .parameters()
        .iter()
        .map(|p| grad_bits(&p.get(), "parameter"))
        .collect();
    assert_eq!(got, plain, "weight and bias gradients");
    let mut opt = Sgd::new(lin.parameters(), 0.1);
    opt.step().expect("step");
    let after: Vec<Vec<u64>> = lin.parameters().iter().map(|p| bits(&p.get())).collect();
    for (b, a) in before.iter().zip(&after) {
        assert_ne!(b, a, "the optimiser step changed the parameter");
    }
}

/// Two layers `tanh(h·W)` with captured weights, as plain ops or as checkpoints (nested:
/// one checkpoint around two checkpointed layers, each capturing its own weight). Returns
/// the gradient bits of the input and the weights.
fn captured_network(opts: &BackwardOptions, ckpt: bool, nested: bool) -> Vec<Vec<u64>> {
    let x = Tensor::<f64>::randn(&[3, 6], 21).requires_grad();
    let ws: Vec<Tensor<f64>> = (0..3)
        .map(|i| (Tensor::<f64>::randn(&[6, 6], 22 + i) * 0.4).requires_grad())
        .collect();
    let layer = |w: &Tensor<f64>| {
        let w = w.clone();
        move |t: &[Tensor<f64>]| block(&t[0], &w)
    };
    let h = if !ckpt {
        let h = block(&x, &ws[0]).expect("block");
        let h = block(&h, &ws[1]).expect("block");
        block(&h, &ws[2]).expect("block")
    } else if !nested {
        let h = checkpoint(layer(&ws[0]), &[&x]).expect("checkpoint");
        let h = checkpoint(layer(&ws[1]), &[&h]).expect("checkpoint");
        checkpoint(layer(&ws[2]), &[&h]).expect("checkpoint")
    } else {
        let (l0, l1, l2) = (layer(&ws[0]), layer(&ws[1]), layer(&ws[2]));
        let h = checkpoint(l0, &[&x]).expect("checkpoint");
        checkpoint(
            move |t| {
                let a = checkpoint(l1.clone(), &[&t[0]])?;
                checkpoint(l2.clone(), &[&a])
            },
            &[&h],
        )
        .expect("nested checkpoint")
    };
    h.powf(2.0).sum().backward_with(opts).expect("backward");
    std::iter::once(&x)
        .chain(&ws)
        .map(|t| grad_bits(t, "network tensor"))
        .collect()
}

#[test]
fn captured_weights_get_plain_gradients_bitwise_under_every_scheduler() {
    for opts in exec_configs() {
        let opts = opts.accumulation(Accumulation::Deterministic);
        let label = format!(
            "captured {}/{}",
            opts.get_scheduler().name(),
            opts.get_threads()
        );
        watchdog(&label, 60, move || {
            let plain = captured_network(&opts, false, false);
            assert_eq!(captured_network(&opts, true, false), plain, "checkpoints");
            assert_eq!(
                captured_network(&opts, true, true),
                plain,
                "nested checkpoints"
            );
        });
    }
}

#[test]
fn grad_with_respect_to_a_captured_tensor_goes_through_checkpoint() {
    let x = Tensor::<f64>::randn(&[2, 3], 31).requires_grad();
    let w = Tensor::<f64>::randn(&[3, 3], 32).requires_grad();
    let plain = x.matmul(&w).expect("matmul").sin().sum();
    let want = grad(&[&plain], &[], &[&w], &BackwardOptions::new()).expect("plain grad");
    let wc = w.clone();
    let y = checkpoint(move |t| Ok(t[0].matmul(&wc)?.sin()), &[&x]).expect("checkpoint");
    let got = grad(&[&y.sum()], &[], &[&w], &BackwardOptions::new()).expect("grad");
    let got = got[0].as_ref().expect("a gradient for the captured w");
    assert_eq!(bits(got), bits(want[0].as_ref().expect("plain gradient")));
    assert!(
        w.grad().is_none() && x.grad().is_none(),
        "grad() touches no .grad()"
    );
}

#[test]
fn a_hook_on_a_captured_leaf_runs_once_per_pass() {
    let w = Tensor::<f64>::ones(&[3]).requires_grad();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    w.register_hook(move |g| {
        seen.fetch_add(1, Ordering::Relaxed);
        Some(g * 2.0)
    });
    let x = Tensor::<f64>::full(&[3], 5.0).requires_grad();
    let wc = w.clone();
    let y = checkpoint(move |t| Ok(&t[0] * &wc), &[&x]).expect("checkpoint");
    y.sum().backward().expect("backward");
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    assert_eq!(w.grad().expect("grad").to_vec(), vec![10.0; 3]); // 2·x, doubled once
}

#[test]
fn a_segment_failing_when_recomputed_changes_no_gradient() {
    let x = Tensor::<f64>::randn(&[2, 2], 41).requires_grad();
    let w = Tensor::<f64>::randn(&[2, 2], 42).requires_grad();
    // A first, successful pass gives both their gradients.
    let wc = w.clone();
    let y = checkpoint(move |t| Ok(t[0].matmul(&wc)?.tanh()), &[&x]).expect("checkpoint");
    y.sum().backward().expect("first pass");
    let (gx, gw) = (grad_bits(&x, "x"), grad_bits(&w, "captured w"));
    // The second segment succeeds in its first call and fails when recomputed.
    let calls = Arc::new(AtomicUsize::new(0));
    let (count, wc) = (Arc::clone(&calls), w.clone());
    let y = checkpoint(
        move |t| {
            if count.fetch_add(1, Ordering::Relaxed) > 0 {
                return Err(Error::Invalid {
                    op: "segment",
                    message: "fails when recomputed".into(),
                });
            }
            Ok(t[0].matmul(&wc)?.tanh())
        },
        &[&x],
    )
    .expect("checkpoint");
    let z = (&y.sum() + &w.sum()).sin();
    let e = z.backward().expect_err("the recomputation fails");
    assert!(e.to_string().contains("fails when recomputed"), "{e}");
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    assert_eq!(grad_bits(&x, "x"), gx, "x's gradient unchanged");
    assert_eq!(grad_bits(&w, "captured w"), gw, "w's gradient unchanged");
}

#[test]
fn a_leaf_the_segment_creates_itself_is_an_error_naming_it() {
    let x = Tensor::<f64>::randn(&[3], 51).requires_grad();
    let y = checkpoint(
        |t| Ok(&t[0] * &Tensor::<f64>::full(&[3], 2.0).requires_grad()),
        &[&x],
    )
    .expect("checkpoint");
    let e = y.sum().backward().expect_err("its gradient would be lost");
    let text = e.to_string();
    assert!(text.starts_with("checkpoint: "), "{text}");
    assert!(text.contains("the leaf of shape [3]"), "{text}");
    assert!(x.grad().is_none(), "a failed pass changes no gradient");
}

#[test]
fn a_recomputation_using_other_tensors_is_an_error_naming_them() {
    let x = Tensor::<f64>::randn(&[2], 52).requires_grad();
    let (a, b) = (
        Tensor::<f64>::ones(&[2]).requires_grad(),
        Tensor::<f64>::ones(&[2]).requires_grad(),
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let (count, ac, bc) = (Arc::clone(&calls), a.clone(), b.clone());
    // The first call uses a, the recomputation b.
    let y = checkpoint(
        move |t| {
            let w = if count.fetch_add(1, Ordering::Relaxed) == 0 {
                &ac
            } else {
                &bc
            };
            Ok(&t[0] * &w.exp())
        },
        &[&x],
    )
    .expect("checkpoint");
    let text = y.sum().backward().expect_err("a is left out").to_string();
    assert!(
        text.contains("the leaf of shape [2]") && text.contains("not by its recomputation"),
        "{text}"
    );
    assert!(a.grad().is_none() && b.grad().is_none() && x.grad().is_none());
}

#[test]
fn branches_recorded_on_other_threads_are_an_error_not_a_lost_gradient() {
    let block = Arc::new(
        Branches::<f64>::new_typed(Merge::Sum)
            .push(Linear::<f64>::new_typed(3, 2, 61))
            .push(Linear::<f64>::new_typed(3, 2, 62)),
    );
    let x = Tensor::<f64>::randn(&[4, 3], 63).requires_grad();
    let inner = Arc::clone(&block);
    let y = checkpoint(move |t| inner.forward(&t[0]), &[&x]).expect("checkpoint");
    match y.sum().backward() {
        // Either every parameter got its gradient (the branches ran on this thread)...
        Ok(()) => {
            for p in block.parameters() {
                assert!(
                    p.grad().is_some(),
                    "a parameter was left without a gradient"
                );
            }
        }
        // ...or the pass failed, naming a tensor, and changed nothing.
        Err(e) => {
            assert!(e.to_string().starts_with("checkpoint: "), "{e}");
            assert!(block.parameters().iter().all(|p| p.grad().is_none()));
            assert!(x.grad().is_none());
        }
    }
}

#[test]
fn nested_checkpoints_capturing_outer_and_segment_tensors_pass_gradcheck() {
    let x = Tensor::<f64>::randn(&[2, 3], 71);
    let w = Tensor::<f64>::randn(&[3, 3], 72);
    let b = Tensor::<f64>::randn(&[2, 3], 73);
    backflow::gradcheck(
        |v| {
            // w: a captured leaf; b: a captured result of an op before the segment.
            let (w, b) = (v[1].clone(), v[2].sin());
            let y = checkpoint(
                move |t| {
                    let a = t[0].matmul(&w)?.tanh();
                    // The inner segment captures a (made inside the outer one) and b.
                    let (ac, bc) = (a.clone(), b.clone());
                    let z = checkpoint(move |u| Ok((&(&u[0] * &ac) + &bc).sin()), &[&t[0]])?;
                    Ok(&z * &a)
                },
                &[&v[0]],
            )?;
            Ok(y.powf(2.0).sum())
        },
        &[&x, &w, &b],
        &BackwardOptions::new(),
        GradcheckTolerance::default(),
    )
    .expect("gradcheck through nested checkpoints");
}

#[test]
fn create_graph_through_a_checkpoint_records_the_captured_gradients() {
    let (x0, w0) = (
        Tensor::<f64>::randn(&[2, 3], 81),
        Tensor::randn(&[3, 2], 82),
    );
    let opts = BackwardOptions::new().create_graph(true);
    let (x, w) = (x0.clone().requires_grad(), w0.clone().requires_grad());
    x.matmul(&w)
        .expect("matmul")
        .tanh()
        .sum()
        .backward_with(&opts)
        .expect("plain");
    let (xc, wk) = (x0.requires_grad(), w0.requires_grad());
    let wc = wk.clone();
    let y = checkpoint(move |t| Ok(t[0].matmul(&wc)?.tanh()), &[&xc]).expect("checkpoint");
    y.sum().backward_with(&opts).expect("checkpointed");
    let g = wk.grad().expect("captured w's gradient");
    assert!(g.needs_grad(), "with create_graph the gradient is recorded");
    assert_eq!(bits(&g), grad_bits(&w, "w"));
}

#[test]
fn a_pass_run_from_inside_a_segment_is_not_part_of_it() {
    // A graph built before the segment, differentiated (recorded) from inside it each time
    // the segment runs: its nodes run on this thread while the segment's function does.
    let p = Tensor::<f64>::scalar(1.5).requires_grad();
    let pre = p.powf(3.0);
    let x = Tensor::<f64>::scalar(0.5).requires_grad();
    let opts = BackwardOptions::new()
        .scheduler(backflow::Scheduler::Dfs)
        .create_graph(true);
    let y = checkpoint(
        move |t| {
            pre.backward_with(&opts)?;
            Ok(t[0].sin())
        },
        &[&x],
    )
    .expect("checkpoint");
    let g = p.grad().expect("the inner pass's gradient");
    assert!(
        g.needs_grad(),
        "its ops were recorded, not taken for the segment's"
    );
    assert_eq!(g.item(), 3.0 * 1.5 * 1.5);
    y.backward().expect("backward");
    assert_eq!(p.grad().expect("grad").item(), 2.0 * 3.0 * 1.5 * 1.5);
    assert_eq!(x.grad().expect("grad").item(), 0.5f64.cos());
}
