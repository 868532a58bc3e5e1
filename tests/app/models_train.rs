//! The digits models besides T1: a small version of each trains a few epochs from a fixed
//! seed, its loss falls and its test accuracy passes a bar; `train --model NAME --save`
//! then `eval` reproduces the accuracy; `--model` and the T1-only flags are checked.

use backflow::nn::Module;
use backflow::{Scheduler, Tensor};
use backflow_app::models::attention::{AttentionConfig, AttentionNet};
use backflow_app::models::inception::{BlockWidths, Inception, InceptionConfig};
use backflow_app::models::moe::{MoeConfig, MoeNet};
use backflow_app::models::{fit, Classifier};
use backflow_app::train::{Progress, TrainConfig};
use std::process::Command;

/// Trains `model` for `epochs` on 2 threads; returns the mean loss of the first 5 steps,
/// the mean of the last epoch and the test accuracy.
fn train(model: &dyn Classifier, epochs: usize, lr: f32) -> (f64, f64, f64) {
    let config = TrainConfig {
        epochs,
        lr,
        threads: 2,
        scheduler: Scheduler::Parallel,
        ..TrainConfig::default()
    };
    let mut losses: Vec<Progress> = Vec::new();
    let report = fit(model, &config, |p| losses.push(p)).unwrap();
    let first = losses[..5].iter().map(|p| f64::from(p.loss)).sum::<f64>() / 5.0;
    let last: Vec<f64> = losses
        .iter()
        .filter(|p| p.epoch == epochs - 1)
        .map(|p| f64::from(p.loss))
        .collect();
    let last = last.iter().sum::<f64>() / last.len() as f64;
    assert_eq!(report.steps, losses.len());
    (first, last, report.test_accuracy)
}

#[test]
fn a_small_moe_learns_the_digits() {
    let config = MoeConfig {
        experts: 4,
        hidden: 16,
        ..MoeConfig::default()
    };
    let model = MoeNet::new(&config, 1);
    let (first, last, accuracy) = train(&model, 4, 1e-2);
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    assert!(accuracy > 0.9, "test accuracy {accuracy}");
}

#[test]
fn moe_routing_differs_between_batches() {
    let model = MoeNet::new(&MoeConfig::default(), 0);
    let data = backflow_app::data::digits().unwrap();
    let loads: Vec<Vec<usize>> = data
        .batches(64, 3)
        .take(4)
        .map(|b| model.moe().route(&b.x).unwrap().load)
        .collect();
    assert!(loads.iter().all(|l| l.iter().sum::<usize>() == 128));
    assert!(
        loads.windows(2).any(|w| w[0] != w[1]),
        "four batches routed alike: {loads:?}"
    );
}

#[test]
fn a_small_transformer_learns_the_digits() {
    let config = AttentionConfig {
        d_model: 32,
        heads: 4,
        layers: 1,
        mlp: 64,
    };
    let model = AttentionNet::new(&config, 2);
    let (first, last, accuracy) = train(&model, 6, 5e-3);
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    assert!(accuracy > 0.85, "test accuracy {accuracy}");
    let logits = model.forward(&Tensor::zeros(&[3, 64])).unwrap();
    assert_eq!(logits.shape(), &[3, 10]);
}

#[test]
fn a_small_inception_network_learns_the_digits() {
    let widths = BlockWidths {
        c1: 4,
        c3: (4, 4),
        c5: (2, 4),
        pool: 4,
    };
    let config = InceptionConfig {
        block1: widths,
        block2: widths,
    };
    let model = Inception::new(&config, 3);
    let (first, last, accuracy) = train(&model, 3, 5e-3);
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    assert!(accuracy > 0.85, "test accuracy {accuracy}");
}

/// The percentage printed on the `test accuracy :` line.
fn accuracy_line(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("test accuracy : "))
        .unwrap_or_else(|| panic!("no accuracy line in:\n{stdout}"))
        .trim()
        .to_string()
}

#[test]
fn eval_reads_what_train_saved_for_each_model() {
    let bin = env!("CARGO_BIN_EXE_backflow");
    let dir = std::env::temp_dir().join(format!("backflow-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for model in ["moe", "attention", "inception"] {
        let weights = dir.join(format!("{model}.safetensors"));
        let train = Command::new(bin)
            .args(["train", "--model", model, "--epochs", "1", "--threads", "2"])
            .args(["--seed", "4", "--save"])
            .arg(&weights)
            .output()
            .unwrap();
        let train_out = String::from_utf8_lossy(&train.stdout);
        assert!(
            train.status.success(),
            "{model}: {train_out}{}",
            String::from_utf8_lossy(&train.stderr)
        );
        assert!(
            train_out.contains(&format!("model: {model} (")),
            "{train_out}"
        );
        let eval = Command::new(bin)
            .args(["eval", "--seed", "4", "--load"])
            .arg(&weights)
            .output()
            .unwrap();
        let eval_out = String::from_utf8_lossy(&eval.stdout);
        assert!(eval.status.success(), "{model}: {eval_out}");
        assert!(eval_out.contains(&format!("({model}, ")), "{eval_out}");
        assert_eq!(
            accuracy_line(&eval_out),
            accuracy_line(&train_out),
            "{model}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn model_flags_that_cannot_work_are_usage_errors() {
    let bin = env!("CARGO_BIN_EXE_backflow");
    for (args, needles) in [
        (
            &["train", "--model", "resnet"][..],
            &["--model", "resnet", "t1, inception, attention, moe"][..],
        ),
        (
            &["train", "--model", "moe", "--branches", "4"],
            &["--branches", "'4'", "t1 only"],
        ),
        (&["graph", "--model", "gpt"], &["--model", "gpt"]),
    ] {
        let out = Command::new(bin).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: {err} lacks {n}");
        }
    }
}

#[test]
fn graph_draws_one_block_of_each_model() {
    let bin = env!("CARGO_BIN_EXE_backflow");
    for (model, op) in [
        ("inception", "conv2d"),
        ("attention", "softmax"),
        ("moe", "index_select"),
    ] {
        let out = Command::new(bin)
            .args(["graph", "--model", model])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{model}: {text}");
        assert!(text.starts_with("flowchart"), "{model}: {text}");
        assert!(text.contains(op), "{model}: no {op} node");
    }
}
