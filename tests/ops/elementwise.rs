//! `gelu` (exact and tanh approximation), `erf`, `abs`, `clamp`, numbers on the left of
//! `+ - * /`, and seeded `dropout`: values, gradients (first and second order), errors.

use crate::ops_common::*;
use backflow::Tensor;

#[test]
fn gelu_matches_pytorch_exact_values() {
    // torch.nn.functional.gelu(x) (approximate='none') in float64 at these points, and its
    // derivative Φ(x) + x·φ(x) from torch.autograd.grad.
    let x = t64(vec![-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0], &[7]).requires_grad();
    let want = [
        -0.004_049_694_094_890_284,
        -0.158_655_253_931_457_05,
        -0.154_268_769_362_993_45,
        0.0,
        0.345_731_230_637_006_55,
        0.841_344_746_068_542_9,
        2.995_950_305_905_11,
    ];
    let y = x.gelu();
    assert_close(&y.to_vec(), &want, 1e-15);
    y.sum().backward().unwrap();
    let slope = [
        -0.011_945_647_204_183_927,
        -0.083_315_470_587_686_3,
        0.132_504_875_343_837_16,
        0.5,
        0.867_495_124_656_162_8,
        1.083_315_470_587_686_3,
        1.011_945_647_204_184,
    ];
    assert_close(&x.grad().unwrap().to_vec(), &slope, 1e-15);
    // f32 keeps float precision.
    let y32 = Tensor::<f32>::scalar(1.0).gelu().item();
    assert!(
        (f64::from(y32) - 0.841_344_746_068_543).abs() < 1e-7,
        "{y32}"
    );
}

#[test]
fn gelu_tanh_matches_pytorch_tanh_approximation() {
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
    assert_close(&x.gelu_tanh().to_vec(), &want, 1e-6);
    // The closed form ½x(1 + tanh(√(2/π)(x + 0.044715x³))) and its derivative, to rounding.
    let x = x.requires_grad();
    x.gelu_tanh().sum().backward().unwrap();
    for (&v, (&y, &g)) in x
        .data()
        .iter()
        .zip(x.gelu_tanh().data().iter().zip(x.grad().unwrap().data()))
    {
        let c = (2.0 / std::f64::consts::PI).sqrt();
        let t = (c * (v + 0.044715 * v.powi(3))).tanh();
        assert!(
            (y - 0.5 * v * (1.0 + t)).abs() < 1e-15,
            "gelu_tanh({v}) = {y}"
        );
        let d = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * v * v);
        assert!((g - d).abs() < 1e-14, "gelu_tanh'({v}) = {g}, want {d}");
    }
    // The two forms differ, by less than 5e-4.
    let x = t64((-40..=40).map(|i| f64::from(i) / 10.0).collect(), &[81]);
    let gap = x
        .gelu()
        .data()
        .iter()
        .zip(x.gelu_tanh().data())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(gap > 1e-4 && gap < 5e-4, "largest gap {gap}");
}

#[test]
fn gelu_gradients_match_finite_differences() {
    let x = &normal(&[3, 4], 1) * 2.0;
    check("gelu", &[&x], |v| Ok(v[0].gelu()));
    check_second("gelu", &[&x], |v| Ok(v[0].gelu()));
    check("gelu_tanh", &[&x], |v| Ok(v[0].gelu_tanh()));
    check_second("gelu_tanh", &[&x], |v| Ok(v[0].gelu_tanh()));
    check("erf", &[&x], |v| Ok(v[0].erf()));
    check_second("erf", &[&x], |v| Ok(v[0].erf()));
    // Closed form at 0: d/dx gelu(0) = ½ in both forms, d/dx erf(0) = 2/√π.
    for f in [T64::gelu, T64::gelu_tanh] {
        let z = T64::scalar(0.0).requires_grad();
        f(&z).backward().unwrap();
        assert_eq!(z.grad().unwrap().item(), 0.5);
    }
    let z = T64::scalar(0.0).requires_grad();
    z.erf().backward().unwrap();
    assert_close(
        &z.grad().unwrap().to_vec(),
        &[std::f64::consts::FRAC_2_SQRT_PI],
        1e-16,
    );
}

/// Values at least 0.2 away from zero and from ±1 (abs's kink, clamp's bounds).
fn off_kinks(shape: &[usize], seed: u64) -> T64 {
    let x = normal(shape, seed);
    let data = x
        .data()
        .iter()
        .map(|&v| {
            let v = v.signum() * (v.abs() + 0.2);
            if (v.abs() - 1.0).abs() < 0.2 {
                v * 1.5
            } else {
                v
            }
        })
        .collect();
    t64(data, shape)
}

#[test]
fn abs_values_gradients_and_zero_slope_at_zero() {
    let x = t64(vec![-2.0, -0.0, 0.0, 3.5], &[4]).requires_grad();
    let y = x.abs();
    assert_eq!(y.to_vec(), vec![2.0, 0.0, 0.0, 3.5]);
    (&y * 3.0).sum().backward().unwrap();
    // sign(x)·3, with sign(0) = 0 as in PyTorch.
    assert_eq!(x.grad().unwrap().to_vec(), vec![-3.0, 0.0, 0.0, 3.0]);
    let x = off_kinks(&[3, 4], 2);
    check("abs", &[&x], |v| Ok(v[0].abs()));
    check_second("abs·sin", &[&x], |v| Ok(v[0].abs().sin()));
}

#[test]
fn clamp_values_gradients_and_boundaries() {
    let x = t64(vec![-2.0, -1.0, 0.25, 1.0, 3.0, f64::NAN], &[6]).requires_grad();
    let y = x.clamp(Some(-1.0), Some(1.0)).unwrap();
    assert_eq!(&y.to_vec()[..5], &[-1.0, -1.0, 0.25, 1.0, 1.0]);
    assert!(y.to_vec()[5].is_nan());
    (&y * 2.0).sum().backward().unwrap();
    // 1 inside and on the bounds (PyTorch's convention), 0 outside and for NaN.
    assert_eq!(
        x.grad().unwrap().to_vec(),
        vec![0.0, 2.0, 2.0, 2.0, 0.0, 0.0]
    );
    // One bound only.
    let x = t64(vec![-2.0, 0.5, 3.0], &[3]);
    assert_eq!(
        x.clamp(Some(0.0), None).unwrap().to_vec(),
        vec![0.0, 0.5, 3.0]
    );
    assert_eq!(
        x.clamp(None, Some(0.0)).unwrap().to_vec(),
        vec![-2.0, 0.0, 0.0]
    );
    // Gradients under every scheduler, first and second order, off the bounds.
    let x = off_kinks(&[3, 4], 3);
    for (lo, hi) in [
        (Some(-1.0), Some(1.0)),
        (Some(-1.0), None),
        (None, Some(1.0)),
    ] {
        check("clamp", &[&x], |v| v[0].clamp(lo, hi));
        check_second("clamp·sin", &[&x], |v| Ok(v[0].clamp(lo, hi)?.sin()));
    }
}

#[test]
fn clamp_rejects_no_bounds_nan_bounds_and_min_above_max() {
    let x = Tensor::<f32>::ones(&[2, 3]);
    assert_names(&x.clamp(None, None).unwrap_err(), &["clamp", "[2, 3]"]);
    assert_names(
        &x.clamp(Some(2.0), Some(1.0)).unwrap_err(),
        &["clamp", "min 2", "max 1"],
    );
    assert_names(
        &x.clamp(Some(f32::NAN), None).unwrap_err(),
        &["clamp", "min", "NaN"],
    );
    assert_names(
        &x.clamp(None, Some(f32::NAN)).unwrap_err(),
        &["clamp", "max", "NaN"],
    );
    // Equal bounds are allowed: every element becomes that value.
    assert_eq!(
        x.clamp(Some(0.5), Some(0.5)).unwrap().to_vec(),
        vec![0.5; 6]
    );
}

#[test]
fn numbers_on_the_left_of_operators() {
    let x = t64(vec![1.0, 2.0, 4.0], &[3]);
    assert_eq!((1.0 + &x).to_vec(), vec![2.0, 3.0, 5.0]);
    assert_eq!((1.0 - &x).to_vec(), vec![0.0, -1.0, -3.0]);
    assert_eq!((3.0 * &x).to_vec(), vec![3.0, 6.0, 12.0]);
    assert_eq!((8.0 / &x).to_vec(), vec![8.0, 4.0, 2.0]);
    // By value, and in f32.
    assert_eq!((2.0 * x.clone()).to_vec(), (&x * 2.0).to_vec());
    let y = Tensor::<f32>::from_vec(vec![1.0, 2.0], &[2]).unwrap();
    assert_eq!((1.0f32 - &y).to_vec(), vec![0.0, -1.0]);
    assert_eq!((2.0f32 / y).to_vec(), vec![2.0, 1.0]);
    // d/dx (c / x) = -c / x²: at x = 2 with c = 8, -2.
    let x = T64::scalar(2.0).requires_grad();
    (8.0 / &x).backward().unwrap();
    assert_eq!(x.grad().unwrap().item(), -2.0);
    let x = off_kinks(&[2, 3], 4);
    check("c + x", &[&x], |v| Ok(0.5 + &v[0]));
    check("c - x", &[&x], |v| Ok(1.5 - &v[0]));
    check("c * x", &[&x], |v| Ok(-2.0 * &v[0]));
    check("c / x", &[&x], |v| Ok(3.0 / &v[0]));
    check_second("c / x", &[&x], |v| Ok(3.0 / &v[0]));
    check_second("c - x·x", &[&x], |v| Ok(1.5 - &(&v[0] * &v[0])));
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

#[test]
fn gelu_tanh_gradient_is_finite_far_from_zero() {
    // Far out gelu_tanh is x (right) or 0 (left): its derivative is 1 or 0, not the NaN of
    // 0·∞ that (1 − tanh²u)·(1 + 3·0.044715·x²) gives once x² overflows.
    let x64 = [1e160, -1e160, 1e20, -1e20, 40.0, -40.0];
    let want = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
    for opts in schedulers() {
        for create_graph in [false, true] {
            let x = t64(x64.to_vec(), &[6]).requires_grad();
            let opts = opts.clone().create_graph(create_graph);
            let g = backflow::grad(&[&x.gelu_tanh().sum()], &[], &[&x], &opts).unwrap();
            let g = g[0].clone().unwrap();
            assert_eq!(g.to_vec(), want, "{opts:?}");
            if create_graph {
                // the second derivative out there is 0 too
                g.sum().backward_with(&opts).unwrap();
                let gg = x.grad().unwrap().to_vec();
                assert!(gg.iter().all(|v| v.is_finite()), "{opts:?}: {gg:?}");
            }
        }
    }
    let x = Tensor::<f32>::from_vec(vec![1e20, -1e20, 3e38], &[3])
        .unwrap()
        .requires_grad();
    x.gelu_tanh().sum().backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec(), vec![1.0, 0.0, 1.0]);
    // NaN stays NaN
    let x = t64(vec![f64::NAN], &[1]).requires_grad();
    x.gelu_tanh().sum().backward().unwrap();
    assert!(x.grad().unwrap().item().is_nan());
}

#[test]
fn division_by_a_number_is_a_true_division() {
    // x · (1/c) would be infinite for a subnormal c, and rounds twice for c = 3.
    let c = f32::MIN_POSITIVE / 4.0;
    let x = Tensor::<f32>::from_vec(vec![f32::MIN_POSITIVE, 1e-40, 1.0, -2.0], &[4])
        .unwrap()
        .requires_grad();
    let y = &x / c;
    let want: Vec<f32> = x.to_vec().iter().map(|v| v / c).collect();
    assert_eq!(y.to_vec(), want);
    assert_eq!(y.to_vec()[0], 4.0);
    let thirds = (&x / 3.0).to_vec();
    assert_eq!(
        thirds,
        x.to_vec().iter().map(|v| v / 3.0).collect::<Vec<_>>()
    );
    // d(x / c)/dx = 1/c, computed as g / c: 1 / c overflows f32 here, so only check 3.
    let x3 = Tensor::<f64>::from_vec(vec![0.5, 2.0], &[2])
        .unwrap()
        .requires_grad();
    (&x3 / 3.0).sum().backward().unwrap();
    assert_eq!(x3.grad().unwrap().to_vec(), vec![1.0 / 3.0; 2]);
    let x = normal(&[3, 2], 5);
    check("div_scalar", &[&x], |v| Ok(&v[0] / 0.7));
    check_second("div_scalar", &[&x], |v| Ok(&(&v[0] * &v[0]) / 0.7));
}
