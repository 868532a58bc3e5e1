//! Gradient checkpointing (`backflow::checkpoint`) gives the same gradient bits as the
//! un-checkpointed graph under every scheduler and thread count, also when checkpoints
//! nest; `enable_grad` records inside `no_grad`.

mod common;

use backflow::{checkpoint, enable_grad, is_grad_enabled, no_grad, Accumulation, Result, Tensor};
use common::{exec_configs, watchdog};

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
