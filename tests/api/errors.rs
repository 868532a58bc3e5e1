//! Misuse gives an `Err` (or, for operators, a panic) whose message names the op and the
//! shapes; a failing backward is reported and leaves the engine usable.

use backflow::{BackwardOptions, Error, Scheduler, Tensor};

fn opts(scheduler: Scheduler) -> BackwardOptions {
    BackwardOptions::new().scheduler(scheduler)
}

/// Asserts that `err`'s message contains every one of `parts`.
fn assert_mentions(err: &Error, parts: &[&str]) {
    let message = err.to_string();
    for part in parts {
        assert!(
            message.contains(part),
            "{message:?} does not mention {part:?}"
        );
    }
}

#[test]
fn shape_mismatches_name_the_op_and_both_shapes() {
    let a = Tensor::<f32>::zeros(&[2, 3]);
    let b = Tensor::<f32>::zeros(&[4, 5]);
    let err = a.try_add(&b).unwrap_err();
    assert!(matches!(err, Error::Shape { op: "add", .. }), "{err:?}");
    assert_mentions(&err, &["add", "[2, 3]", "[4, 5]"]);
    for (op, err) in [
        ("sub", a.try_sub(&b).unwrap_err()),
        ("mul", a.try_mul(&b).unwrap_err()),
        ("div", a.try_div(&b).unwrap_err()),
        ("matmul", a.matmul(&b).unwrap_err()),
        ("concat", Tensor::concat(&[&a, &b], 0).unwrap_err()),
        ("broadcast_to", a.broadcast_to(&[4, 5]).unwrap_err()),
        ("sum_to", a.sum_to(&[4, 5]).unwrap_err()),
    ] {
        assert_mentions(&err, &[op, "[2, 3]", "[4, 5]"]);
    }
    let err = a.reshape(&[4, 5]).unwrap_err();
    assert!(matches!(err, Error::Shape { op: "reshape", .. }), "{err:?}");
    assert_mentions(&err, &["reshape", "[2, 3]", "[4, 5]"]);
}

#[test]
fn matmul_rejects_non_matrices_and_mismatched_inner_dimensions() {
    let v = Tensor::<f32>::zeros(&[3]);
    let m = Tensor::<f32>::zeros(&[3, 2]);
    assert_mentions(
        &v.matmul(&m).unwrap_err(),
        &["matmul", "[3]", "[3, 2]", "2-D"],
    );
    assert_mentions(&m.matmul(&m).unwrap_err(), &["matmul", "[3, 2]"]);
}

#[test]
fn concat_rejects_mismatched_parts() {
    let a = Tensor::<f32>::zeros(&[2, 3]);
    let b = Tensor::<f32>::zeros(&[2, 4]);
    // Along axis 1 they fit; along axis 0 the columns differ.
    assert_eq!(Tensor::concat(&[&a, &b], 1).unwrap().shape(), &[2, 7]);
    assert_mentions(
        &Tensor::concat(&[&a, &b], 0).unwrap_err(),
        &["concat", "[2, 3]", "[2, 4]"],
    );
    let c = Tensor::<f32>::zeros(&[2, 3, 1]);
    assert_mentions(
        &Tensor::concat(&[&a, &c], 0).unwrap_err(),
        &["concat", "[2, 3, 1]"],
    );
    let err = Tensor::concat(&[&a], 2).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Axis {
                op: "concat",
                axis: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(&err, &["axis 2", "[2, 3]"]);
    let err = Tensor::<f32>::concat(&[], 0).unwrap_err();
    assert!(
        matches!(err, Error::Invalid { op: "concat", .. }),
        "{err:?}"
    );
}

#[test]
fn axes_out_of_range_are_axis_errors() {
    let a = Tensor::<f32>::zeros(&[2, 3]);
    let err = a.sum_axis(2).unwrap_err();
    assert_eq!(
        err,
        Error::Axis {
            op: "sum_axis",
            axis: 2,
            shape: vec![2, 3]
        }
    );
    assert_mentions(&err, &["sum_axis", "axis 2", "[2, 3]"]);
    let err = a.transpose(0, 5).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Axis {
                op: "transpose",
                axis: 5,
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(&err, &["transpose", "5", "[2, 3]"]);
    let err = Tensor::<f32>::zeros(&[2, 3, 4]).t().unwrap_err();
    assert_mentions(&err, &["2-D", "[2, 3, 4]"]);
    let err = Tensor::<f32>::scalar(1.0).sum_axis(0).unwrap_err();
    assert_mentions(&err, &["sum_axis", "[]"]);
}

#[test]
#[should_panic(expected = "add: incompatible shapes [2, 3] and [4, 5]")]
fn operator_with_bad_shapes_panics_naming_op_and_shapes() {
    let a = Tensor::<f32>::zeros(&[2, 3]);
    let b = Tensor::<f32>::zeros(&[4, 5]);
    let _ = &a + &b;
}

#[test]
#[should_panic(expected = "mul: incompatible shapes [3] and [2]")]
fn owned_operator_with_bad_shapes_panics_too() {
    let _ = Tensor::<f32>::zeros(&[3]) * Tensor::<f32>::zeros(&[2]);
}

#[test]
fn second_backward_through_a_freed_graph() {
    for scheduler in Scheduler::ALL {
        let x = Tensor::<f32>::scalar(1.0).requires_grad();
        let y = x.sin();
        y.backward_with(&opts(scheduler)).unwrap();
        let err = y.backward_with(&opts(scheduler)).unwrap_err();
        assert!(
            matches!(err, Error::GraphFreed { .. }),
            "{scheduler:?}: {err:?}"
        );
        assert_mentions(&err, &["sin", "retain_graph"]);
        // With retain_graph the graph can be walked twice.
        let y = x.sin();
        let keep = opts(scheduler).retain_graph(true);
        y.backward_with(&keep).unwrap();
        y.backward_with(&keep).unwrap();
    }
}

#[test]
fn backward_from_a_root_with_several_elements() {
    let x = Tensor::<f32>::ones(&[2, 3]).requires_grad();
    let err = x.sin().backward().unwrap_err();
    assert_eq!(
        err,
        Error::NonScalarRoot {
            shape: vec![2, 3],
            numel: 6
        }
    );
    assert_mentions(&err, &["[2, 3]", "sum"]);
}

#[test]
fn backward_on_a_tensor_without_grad() {
    let err = Tensor::<f32>::scalar(1.0).sin().backward().unwrap_err();
    assert_eq!(err, Error::NoGraph { shape: vec![] });
    assert_mentions(&err, &["requires_grad"]);
    let x = Tensor::<f32>::scalar(1.0).requires_grad();
    let err = x.sin().detach().backward().unwrap_err();
    assert!(matches!(err, Error::NoGraph { .. }), "{err:?}");
    let err = backflow::no_grad(|| x.sin()).backward().unwrap_err();
    assert!(matches!(err, Error::NoGraph { .. }), "{err:?}");
}

/// A custom op `y = x` (shape [2]) whose backward is `backward`.
fn custom(
    x: &Tensor<f64>,
    op: &'static str,
    backward: impl Fn(&Tensor<f64>) -> Vec<Option<Tensor<f64>>> + Send + Sync + 'static,
) -> Tensor<f64> {
    Tensor::from_op(op, x.to_vec(), x.shape().to_vec(), &[x], move |gy, _| {
        Ok(backward(gy))
    })
}

#[test]
fn a_panicking_backward_is_an_error_and_the_next_backward_works() {
    for scheduler in Scheduler::ALL {
        let x = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2])
            .unwrap()
            .requires_grad();
        let y = custom(&x.sin(), "exploding", |_| panic!("boom"));
        let err = y.sum().backward_with(&opts(scheduler)).unwrap_err();
        match &err {
            Error::Backward {
                op,
                panicked,
                message,
                ..
            } => {
                assert_eq!(
                    (op.as_str(), *panicked),
                    ("exploding", true),
                    "{scheduler:?}"
                );
                assert!(message.contains("boom"), "{message}");
            }
            other => panic!("{scheduler:?}: expected Error::Backward, got {other:?}"),
        }
        assert_mentions(&err, &["exploding", "panicked"]);
        // Nothing is poisoned: a new graph on the same leaf differentiates normally.
        x.zero_grad();
        (&x * &x).sum().backward_with(&opts(scheduler)).unwrap();
        assert_eq!(x.grad().unwrap().to_vec(), vec![2.0, 4.0], "{scheduler:?}");
    }
}

#[test]
fn a_gradient_of_the_wrong_shape_is_an_error() {
    for scheduler in Scheduler::ALL {
        let x = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2])
            .unwrap()
            .requires_grad();
        let y = custom(&x, "misshapen", |_| vec![Some(Tensor::zeros(&[3]))]);
        let err = y.sum().backward_with(&opts(scheduler)).unwrap_err();
        assert!(
            matches!(&err, Error::Backward { op, .. } if op == "misshapen"),
            "{err:?}"
        );
        assert_mentions(&err, &["misshapen", "[3]", "[2]"]);
        // A wrong number of gradients is reported too.
        let y = custom(&x, "too_many", |gy| vec![Some(gy.clone()), None]);
        let err = y.sum().backward_with(&opts(scheduler)).unwrap_err();
        assert_mentions(&err, &["too_many", "2 gradients for 1 inputs"]);
    }
}

#[test]
fn grad_with_a_mismatched_grad_output() {
    let x = Tensor::<f32>::ones(&[2]).requires_grad();
    let y = x.sin();
    let err = backflow::grad(
        &[&y],
        &[&(Tensor::ones(&[3]))],
        &[&x],
        &BackwardOptions::new(),
    )
    .unwrap_err();
    assert_mentions(&err, &["backward", "[2]", "[3]"]);
}

#[test]
fn pooling_with_a_huge_kernel_or_padding_is_an_error() {
    let x = Tensor::<f32>::ones(&[1, 1, 2, 2]).requires_grad();
    // k² overflows usize: the mean divided by it would be inf.
    let err = x.avg_pool2d(1 << 32, 1, 1 << 31).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Invalid {
                op: "avg_pool2d",
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(&err, &["avg_pool2d", "[1, 1, 2, 2]", "kernel 4294967296"]);
    // The padded size overflows: the output size would wrap (an index panic in backward).
    let padding = usize::MAX / 2;
    let err = x.max_pool2d(usize::MAX, 1, padding).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Invalid {
                op: "max_pool2d",
                ..
            }
        ),
        "{err:?}"
    );
    assert_mentions(&err, &["max_pool2d", "[1, 1, 2, 2]", "overflow"]);
    let err = x.avg_pool2d(usize::MAX, 1, padding).unwrap_err();
    assert_mentions(&err, &["avg_pool2d", "[1, 1, 2, 2]", "overflow"]);
    // Sizes that fit still pool, and differentiate.
    let y = x.avg_pool2d(4, 1, 2).unwrap();
    assert_eq!(y.shape(), &[1, 1, 3, 3]);
    y.sum().backward().unwrap();
    // Each input element lies in all 3×3 windows of 16 cells.
    assert_eq!(x.grad().unwrap().to_vec(), vec![9.0 / 16.0; 4]);
}

#[test]
fn a_huge_but_countable_size_is_an_error_naming_the_bytes_not_an_abort() {
    // Each asks for petabytes (beyond any address space): the count fits in usize, so only
    // a fallible allocation turns it into an error instead of aborting the process.
    let x = Tensor::<f32>::zeros(&[1, 1, 1, 1]);
    let w = Tensor::<f32>::ones(&[1, 1, 1, 1]);
    let err = x.conv2d(&w, None, 1, 10_000_000, 1).unwrap_err();
    assert!(
        matches!(err, Error::Invalid { op: "conv2d", .. }),
        "{err:?}"
    );
    assert_mentions(&err, &["conv2d", "[1, 1, 20000001, 20000001]", "bytes"]);
    let huge = [1usize << 24, 1 << 24];
    let err = Tensor::<f32>::scalar(1.0).broadcast_to(&huge).unwrap_err();
    assert_mentions(
        &err,
        &[
            "broadcast_to",
            "[16777216, 16777216]",
            "1125899906842624 bytes",
        ],
    );
    let huge = [1usize << 25, 1 << 25];
    let err = Tensor::<f32>::try_zeros(&huge).unwrap_err();
    assert_mentions(
        &err,
        &["zeros", "[33554432, 33554432]", "4503599627370496 bytes"],
    );
    let err = Tensor::<f64>::try_full(&huge, 1.5).unwrap_err();
    assert_mentions(
        &err,
        &["full", "[33554432, 33554432]", "9007199254740992 bytes"],
    );
    // The same ops at sizes that fit still work.
    let y = x.conv2d(&w, None, 1, 2, 1).unwrap();
    assert_eq!(y.shape(), &[1, 1, 5, 5]);
    assert_eq!(
        Tensor::<f32>::scalar(2.0)
            .broadcast_to(&[3])
            .unwrap()
            .to_vec(),
        vec![2.0; 3]
    );
    assert_eq!(
        Tensor::<f32>::try_zeros(&[2]).unwrap().to_vec(),
        vec![0.0; 2]
    );
}
