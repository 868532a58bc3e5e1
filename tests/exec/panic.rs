//! A backward function that panics on one of several branches makes `backward` return `Err`
//! naming the op; nothing hangs, and the next backward on the same pool succeeds.

use backflow::{BackwardOptions, Error, Scheduler, Tensor};

/// `y = x`, whose backward panics.
fn exploding(x: &Tensor) -> Tensor {
    Tensor::from_op("exploding", x.to_vec(), x.shape().to_vec(), &[x], |_, _| {
        panic!("boom in a branch")
    })
}

fn wide(x: &Tensor, poisoned: Option<usize>) -> Tensor {
    let mut total = Tensor::scalar(0.0);
    for b in 0..16 {
        let mut h = x * (b as f32 + 1.0);
        for _ in 0..4 {
            h = h.tanh();
        }
        if poisoned == Some(b) {
            h = exploding(&h);
        }
        total = &total + &h.sum();
    }
    total
}

#[test]
fn a_panicking_branch_is_an_error_and_the_next_backward_works() {
    let x = Tensor::randn(&[256], 5).requires_grad();
    for scheduler in Scheduler::ALL {
        for threads in [1, 2, 4, 8] {
            let opts = BackwardOptions::new().scheduler(scheduler).threads(threads);
            let err = wide(&x, Some(7)).backward_with(&opts).unwrap_err();
            match &err {
                Error::Backward {
                    op,
                    panicked,
                    message,
                    ..
                } => {
                    assert_eq!(op, "exploding");
                    assert!(*panicked);
                    assert!(message.contains("boom in a branch"));
                }
                other => panic!("unexpected error {other}"),
            }
            assert!(err.to_string().contains("exploding"), "{err}");
            x.zero_grad();
            wide(&x, None)
                .backward_with(&opts)
                .expect("the pool survives");
            assert!(x.grad().is_some());
            x.zero_grad();
        }
    }
}

#[test]
fn an_error_returned_by_a_backward_is_reported() {
    let x = Tensor::ones(&[4]).requires_grad();
    let y = Tensor::from_op("refuses", x.to_vec(), vec![4], &[&x], |_, _| {
        Err(Error::Invalid {
            op: "refuses",
            message: "no gradient today".into(),
        })
    });
    for scheduler in Scheduler::ALL {
        let opts = BackwardOptions::new()
            .scheduler(scheduler)
            .retain_graph(true);
        let err = (&y * 2.0).sum().backward_with(&opts).unwrap_err();
        assert!(err.to_string().contains("no gradient today"), "{err}");
    }
}
