//! `gelu` (tanh approximation) and seeded `dropout`: values, gradients, errors.

mod ops_common;
use backflow::Tensor;
use ops_common::*;

#[test]
fn gelu_matches_pytorch_tanh_approximation() {
    // torch.nn.functional.gelu(x, approximate='tanh') at these points.
    let x = t64(vec![-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0], &[7]);
    let want = [
        -0.003_637_4,
        -0.158_808,
        -0.154_286,
        0.0,
        0.345_714,
        0.841_192,
        2.996_363,
    ];
    assert_close(&x.gelu().to_vec(), &want, 1e-6);
}

#[test]
fn gelu_gradients_match_finite_differences() {
    let x = &normal(&[3, 4], 1) * 2.0;
    check("gelu", &[&x], |v| Ok(v[0].gelu()));
    check_second("gelu", &[&x], |v| Ok(v[0].gelu()));
    // Closed form at 0: d/dx gelu(0) = ½.
    let z = T64::scalar(0.0).requires_grad();
    z.gelu().backward().unwrap();
    assert_eq!(z.grad().unwrap().item(), 0.5);
}

#[test]
fn dropout_is_seeded_scaled_and_off_in_evaluation() {
    let x = normal(&[50, 40], 2);
    let y = x.dropout(0.25, true, 11).unwrap();
    let mut dropped = 0;
    for (&a, &b) in x.data().iter().zip(y.data()) {
        if b == 0.0 {
            dropped += 1;
        } else {
            assert!((b - a / 0.75).abs() < 1e-12, "{b} is not {a} / 0.75");
        }
    }
    // 2000 draws at p = 0.25: 500 expected, σ ≈ 19.
    assert!((400..600).contains(&dropped), "{dropped} dropped");
    assert_eq!(y.to_vec(), x.dropout(0.25, true, 11).unwrap().to_vec());
    assert_ne!(y.to_vec(), x.dropout(0.25, true, 12).unwrap().to_vec());
    assert_eq!(x.dropout(0.25, false, 11).unwrap().to_vec(), x.to_vec());
    assert_eq!(x.dropout(0.0, true, 11).unwrap().to_vec(), x.to_vec());
}

#[test]
fn dropout_gradient_is_the_scaled_mask() {
    for opts in schedulers() {
        let x = normal(&[4, 5], 3).requires_grad();
        let y = x.dropout(0.5, true, 5).unwrap();
        y.sum().backward_with(&opts).unwrap();
        let g = x.grad().unwrap();
        for (&gv, &yv) in g.data().iter().zip(y.data()) {
            assert_eq!(gv, if yv == 0.0 { 0.0 } else { 2.0 });
        }
    }
    let x = normal(&[3, 3], 4);
    check("dropout", &[&x], |v| v[0].dropout(0.3, true, 9));
    check_second("dropout·sin", &[&x], |v| {
        Ok(v[0].dropout(0.3, true, 9)?.sin())
    });
}

#[test]
fn dropout_rejects_a_probability_outside_0_1() {
    let x = Tensor::<f32>::ones(&[3]);
    for p in [1.0, -0.1, 1.5, f64::NAN] {
        assert_names(
            &x.dropout(p, true, 0).unwrap_err(),
            &["dropout", &format!("{p}")],
        );
    }
    assert!(x.dropout(1.0, false, 0).is_err());
}

#[test]
#[should_panic(expected = "second order")]
fn check_second_catches_a_backward_that_is_not_differentiable() {
    // Negative control: y = x³ whose backward is right (3x²·gy) but built from a detached x,
    // so its create_graph gradient has no second derivative through x.
    check_second("detached cube", &[&normal(&[3], 7)], |v| {
        let x = v[0].clone();
        let data = x.data().iter().map(|a| a * a * a).collect();
        Ok(Tensor::from_op(
            "cube",
            data,
            vec![3],
            &[&v[0]],
            move |gy, _| {
                let d = x.detach();
                Ok(vec![Some(gy * &(&(&d * &d) * 3.0))])
            },
        ))
    });
}
