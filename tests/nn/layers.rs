//! nn layers, losses and optimisers: shapes, gradients against finite differences and
//! closed forms, and optimiser convergence on a quadratic.

use backflow::nn::{
    cross_entropy, linear, mse, Adam, Branches, Linear, Merge, Module, Optimizer, Param,
    Sequential, Sgd, Tanh,
};
use backflow::{no_grad, BackwardOptions, Scheduler, Tensor};

use crate::common;

fn t64(data: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(data.to_vec(), shape).unwrap()
}

fn values(n: usize, seed: u64) -> Vec<f64> {
    Tensor::<f64>::randn(&[n], seed).to_vec()
}

#[test]
fn linear_shapes_and_names() {
    let layer = Linear::new(3, 5, 0);
    assert_eq!(
        layer.forward(&Tensor::ones(&[4, 3])).unwrap().shape(),
        &[4, 5]
    );
    assert_eq!((layer.inputs(), layer.outputs()), (3, 5));
    let params = layer.named_parameters();
    let names: Vec<_> = params
        .iter()
        .map(|(n, p)| (n.as_str(), p.shape()))
        .collect();
    assert_eq!(names, [("weight", vec![5, 3]), ("bias", vec![5])]);
    assert_eq!(layer.num_parameters(), 20);
    // Same seed, same weights; the input width is checked.
    assert_eq!(
        Linear::new(3, 5, 0).weight.get().to_vec(),
        layer.weight.get().to_vec()
    );
    assert_ne!(
        Linear::new(3, 5, 1).weight.get().to_vec(),
        layer.weight.get().to_vec()
    );
    let err = layer
        .forward(&Tensor::ones(&[4, 2]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("linear") && err.contains("[4, 2]") && err.contains("[5, 3]"),
        "{err}"
    );
}

#[test]
fn linear_without_bias_is_a_matmul_by_the_transposed_weight() {
    let layer = Linear::with_init(4, 2, backflow::nn::Init::XavierNormal, false, 3);
    assert_eq!(layer.named_parameters().len(), 1);
    let x = Tensor::randn(&[3, 4], 9);
    let expected = x.matmul(&layer.weight.get().t().unwrap()).unwrap();
    let got = layer.forward(&x).unwrap();
    for (a, b) in got.data().iter().zip(expected.data()) {
        assert!((a - b).abs() < 1e-6);
    }
}

/// L(x, w, b) = Σ r ⊙ tanh(x·wᵀ + b), in f64.
fn probe(x: &Tensor<f64>, w: &Tensor<f64>, b: &Tensor<f64>, r: &Tensor<f64>) -> Tensor<f64> {
    (&linear(x, w, Some(b)).unwrap().tanh() * r).sum()
}

#[test]
fn linear_gradient_matches_finite_differences() {
    let (n, k, out) = (3, 4, 2);
    let x = t64(&values(n * k, 1), &[n, k]).requires_grad();
    let w = t64(&values(out * k, 2), &[out, k]).requires_grad();
    let b = t64(&values(out, 3), &[out]).requires_grad();
    let r = t64(&values(n * out, 4), &[n, out]);
    probe(&x, &w, &b, &r).backward().unwrap();
    let eps = 1e-6;
    for which in 0..3 {
        let analytic = [&x, &w, &b][which].grad().unwrap().to_vec();
        let base = [&x, &w, &b][which].to_vec();
        for i in 0..base.len() {
            let at = |d: f64| {
                let mut v = base.clone();
                v[i] += d;
                let moved = t64(&v, [&x, &w, &b][which].shape());
                let mut args = [x.detach(), w.detach(), b.detach()];
                args[which] = moved;
                probe(&args[0], &args[1], &args[2], &r).item()
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            assert!(
                (numeric - analytic[i]).abs() < 1e-7,
                "input {which} element {i}: numeric {numeric} analytic {}",
                analytic[i]
            );
        }
    }
}

#[test]
fn linear_gradient_is_the_same_when_recorded() {
    // create_graph takes the recorded path of the backward; the values must agree.
    let x = t64(&values(6, 5), &[2, 3]).requires_grad();
    let w = t64(&values(12, 6), &[4, 3]).requires_grad();
    let b = t64(&values(4, 7), &[4]).requires_grad();
    let r = t64(&values(8, 8), &[2, 4]);
    let plain = backflow::grad(
        &[&probe(&x, &w, &b, &r)],
        &[],
        &[&x, &w, &b],
        &BackwardOptions::new(),
    )
    .unwrap();
    let opts = BackwardOptions::new().create_graph(true);
    let recorded = backflow::grad(&[&probe(&x, &w, &b, &r)], &[], &[&x, &w, &b], &opts).unwrap();
    for (p, q) in plain.iter().zip(&recorded) {
        let (p, q) = (p.as_ref().unwrap(), q.as_ref().unwrap());
        assert_eq!(p.shape(), q.shape());
        for (a, b) in p.data().iter().zip(q.data()) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}

#[test]
fn cross_entropy_matches_a_hand_computation() {
    // Row 0: logits (1, 2, 3), label 2: -log softmax = ln(e + e² + e³) - 3.
    // Row 1: logits (1, 1, 1), label 0: ln 3. The loss is their mean.
    let e = std::f64::consts::E;
    let expected = (((e + e * e + e * e * e).ln() - 3.0) + 3f64.ln()) / 2.0;
    let logits = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 1.0, 1.0, 1.0], &[2, 3])
        .unwrap()
        .requires_grad();
    let loss = cross_entropy(&logits, &[2, 0]).unwrap();
    assert!(
        (loss.item() as f64 - expected).abs() < 1e-6,
        "{} vs {expected}",
        loss.item()
    );
    // dL/dlogits = (softmax - onehot) / batch.
    loss.backward().unwrap();
    let g = logits.grad().unwrap().to_vec();
    let z = e + e * e + e * e * e;
    let want = [
        e / z / 2.0,
        e * e / z / 2.0,
        (e * e * e / z - 1.0) / 2.0,
        (1.0 / 3.0 - 1.0) / 2.0,
        1.0 / 6.0,
        1.0 / 6.0,
    ];
    for (a, b) in g.iter().zip(want) {
        assert!((*a as f64 - b).abs() < 1e-6, "{g:?} vs {want:?}");
    }
}

#[test]
fn cross_entropy_is_stable_and_checks_its_labels() {
    let huge = Tensor::from_vec(vec![1000.0f32, -1000.0, 0.0, 1000.0], &[2, 2]).unwrap();
    let loss = cross_entropy(&huge, &[0, 1]).unwrap().item();
    assert!(loss.is_finite() && loss.abs() < 1e-6, "{loss}");
    assert!(cross_entropy(&huge, &[0, 2])
        .unwrap_err()
        .to_string()
        .contains("label 2"));
    assert!(cross_entropy(&huge, &[0]).is_err());
    assert!(cross_entropy(&Tensor::zeros(&[4]), &[0]).is_err());
}

#[test]
fn mse_value_and_gradient() {
    let p = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3])
        .unwrap()
        .requires_grad();
    let t = Tensor::from_vec(vec![0.0f32, 2.0, 5.0], &[3]).unwrap();
    let loss = mse(&p, &t).unwrap();
    assert!((loss.item() - 5.0 / 3.0).abs() < 1e-6); // (1 + 0 + 4) / 3
    loss.backward().unwrap();
    // d/dp mean((p - t)²) = 2(p - t)/n
    assert_eq!(p.grad().unwrap().to_vec(), vec![2.0 / 3.0, 0.0, -4.0 / 3.0]);
    assert!(mse(&p, &Tensor::zeros(&[2])).is_err());
}

/// Minimises Σ (p - c)² from p = 0 and returns p.
fn minimise(mut opt: impl Optimizer, p: &Param, steps: usize) -> Vec<f32> {
    let c = Tensor::from_vec(vec![3.0f32, -2.0, 0.5], &[3]).unwrap();
    for _ in 0..steps {
        let d = &p.get() - &c;
        (&d * &d).sum().backward().unwrap();
        opt.step().unwrap();
    }
    p.get().to_vec()
}

#[test]
fn sgd_with_momentum_converges_on_a_quadratic() {
    let p = Param::new(Tensor::zeros(&[3]));
    let got = minimise(Sgd::new(vec![p.clone()], 0.05).momentum(0.9), &p, 300);
    for (a, b) in got.iter().zip([3.0, -2.0, 0.5]) {
        assert!((a - b).abs() < 1e-3, "{got:?}");
    }
}

#[test]
fn adam_converges_on_a_quadratic() {
    let p = Param::new(Tensor::zeros(&[3]));
    let got = minimise(Adam::new(vec![p.clone()], 0.1), &p, 500);
    for (a, b) in got.iter().zip([3.0, -2.0, 0.5]) {
        assert!((a - b).abs() < 1e-2, "{got:?}");
    }
}

#[test]
fn a_step_replaces_leaves_and_skips_parameters_without_gradient() {
    let (used, unused) = (
        Param::new(Tensor::ones(&[2])),
        Param::new(Tensor::ones(&[2])),
    );
    let mut opt = Sgd::new(vec![used.clone(), unused.clone()], 0.5);
    (&used.get() * 2.0).sum().backward().unwrap();
    opt.step().unwrap();
    assert_eq!(used.get().to_vec(), vec![0.0, 0.0]); // 1 - 0.5·2
    assert!(used.grad().is_none() && used.get().is_leaf() && used.get().needs_grad());
    assert_eq!(unused.get().to_vec(), vec![1.0, 1.0]);
    assert!(used.set(Tensor::ones(&[3])).is_err());
}

#[test]
fn zero_grad_clears_every_parameter() {
    let model = Sequential::new()
        .push(Linear::new(2, 3, 0))
        .push(Tanh)
        .push(Linear::new(3, 1, 1));
    model
        .forward(&Tensor::ones(&[4, 2]))
        .unwrap()
        .sum()
        .backward()
        .unwrap();
    assert!(model.parameters().iter().all(|p| p.grad().is_some()));
    model.zero_grad();
    assert!(model.parameters().iter().all(|p| p.grad().is_none()));
}

fn two_branch(merge: Merge) -> Branches {
    Branches::from_fn(merge, 3, |i| {
        Sequential::new()
            .push(Linear::new(4, 5, i as u64))
            .push(Tanh)
    })
}

#[test]
fn branches_concatenate_or_sum() {
    let x = Tensor::randn(&[2, 4], 1);
    let cat = two_branch(Merge::Concat);
    assert_eq!(cat.len(), 3);
    assert_eq!(cat.forward(&x).unwrap().shape(), &[2, 15]);
    let sum = two_branch(Merge::Sum).forward(&x).unwrap();
    let parts: Vec<Tensor> = (0..3)
        .map(|i| Linear::new(4, 5, i).forward(&x).unwrap().tanh())
        .collect();
    let manual = &(&parts[0] + &parts[1]) + &parts[2];
    assert_eq!(sum.to_vec(), manual.to_vec());
    let names: Vec<String> = cat.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names[..2], ["0.0.weight", "0.0.bias"]);
    assert_eq!(names.len(), 6);
    assert!(Branches::new(Merge::Sum).forward(&x).is_err());
}

#[test]
fn branches_under_no_grad_record_nothing() {
    let x = Tensor::randn(&[2, 4], 1);
    let y = no_grad(|| two_branch(Merge::Concat).forward(&x).unwrap());
    assert!(!y.needs_grad());
}

#[test]
fn branch_gradients_are_bitwise_equal_across_schedulers() {
    let model = Sequential::new()
        .push_named("branches", two_branch(Merge::Concat))
        .push_named("head", Linear::new(15, 3, 7));
    let x = Tensor::randn(&[6, 4], 2);
    let grads = |scheduler: Scheduler, threads: usize| {
        let loss = cross_entropy(&model.forward(&x).unwrap(), &[0, 1, 2, 0, 1, 2]).unwrap();
        loss.backward_with(&BackwardOptions::new().scheduler(scheduler).threads(threads))
            .unwrap();
        let g: Vec<Vec<f32>> = model
            .parameters()
            .iter()
            .map(|p| p.grad().unwrap().to_vec())
            .collect();
        model.zero_grad();
        g
    };
    let reference = grads(Scheduler::Dfs, 1);
    for scheduler in Scheduler::ALL {
        for threads in [1, 2, 4] {
            assert_eq!(
                grads(scheduler, threads),
                reference,
                "{scheduler:?} with {threads} threads"
            );
        }
    }
}

#[test]
fn weights_io_errors_name_the_path() {
    let model = backflow::nn::Linear::new(2, 2, 0);
    let missing = std::path::Path::new("/nonexistent-dir/w.safetensors");
    for err in [
        backflow::nn::save_weights(&model, missing).unwrap_err(),
        backflow::nn::load_weights(&model, missing).unwrap_err(),
    ] {
        match &err {
            backflow::Error::Io { path, kind, .. } => {
                assert_eq!(path, missing);
                assert_eq!(*kind, std::io::ErrorKind::NotFound);
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
        assert!(
            err.to_string().contains("/nonexistent-dir/w.safetensors"),
            "{err}"
        );
    }
}

/// The files in `dir`, sorted.
fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_save_that_fails_part_way_leaves_the_previous_weights_file_whole() {
    // 64·64 + 64 parameters: 16 KiB, far past the child's file-size limit.
    let model = |seed| Linear::new(64, 64, seed);
    if let Some(dir) = std::env::var_os(common::LIMITED_CHILD_DIR) {
        let path = std::path::Path::new(&dir).join("w.safetensors");
        let err = backflow::nn::save_weights(&model(1), &path).unwrap_err();
        assert!(err.to_string().contains("w.safetensors"), "{err}");
        let err = backflow::io::write_atomic(&path, vec![7u8; 8192]).unwrap_err();
        assert!(err.raw_os_error().is_some(), "{err}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("backflow-save-limit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.safetensors");
    backflow::nn::save_weights(&model(0), &path).unwrap();
    let before = std::fs::read(&path).unwrap();
    common::rerun_with_file_size_limit(
        "a_save_that_fails_part_way_leaves_the_previous_weights_file_whole",
        &dir,
    );
    assert!(
        std::fs::read(&path).unwrap() == before,
        "the previous file is unchanged, byte for byte"
    );
    assert_eq!(
        files_in(&dir),
        ["w.safetensors"],
        "no temporary file is left"
    );
    // Without a limit the save replaces it, and leaves nothing else behind either.
    backflow::nn::save_weights(&model(1), &path).unwrap();
    let loaded = model(2);
    backflow::nn::load_weights(&loaded, &path).unwrap();
    assert_eq!(
        loaded.parameters()[0].get().to_vec(),
        model(1).parameters()[0].get().to_vec()
    );
    assert_eq!(files_in(&dir), ["w.safetensors"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn a_save_removes_what_a_killed_save_of_the_same_file_left() {
    let dir = std::env::temp_dir().join(format!("backflow-stale-tmp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.bin");
    // 4294967 is past the largest pid Linux allows (2^22): that writer is not running.
    let stale = ".w.bin.4294967-0123456789abcdef.tmp";
    let ours = format!(".w.bin.{}-fedcba9876543210.tmp", std::process::id());
    let kept = [
        ours.as_str(),
        ".other.bin.4294967-0123456789abcdef.tmp",
        ".w.bin.notes.tmp",
    ];
    for name in kept.iter().chain([&stale]) {
        std::fs::write(dir.join(name), "left over").unwrap();
    }
    backflow::io::write_atomic(&path, "new").unwrap();
    let mut want: Vec<String> = kept.iter().map(|n| n.to_string()).collect();
    want.push("w.bin".into());
    want.sort();
    // Only the dead writer's temporary of this target is gone: this process's may be a
    // save in progress, and the others are not this target's.
    assert_eq!(files_in(&dir), want);
    std::fs::remove_dir_all(&dir).ok();
}
