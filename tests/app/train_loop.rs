//! The one training loop (`backflow_app::train_loop`): it sets the model's train and eval
//! modes, calls a step hook at its named points, and the weights file `train --save`
//! writes carries the run's recipe.

use backflow::nn::{Linear, Module, Param};
use backflow::{Result, Tensor};
use backflow_app::models::{Classifier, ModelName};
use backflow_app::train::{Progress, TrainConfig};
use backflow_app::train_loop::{RunStart, StepHook, Trainer};
use backflow_app::trained_weights::{read_recipe, save_trained, TrainedRecipe};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A linear classifier that records, at each forward pass, its mode and whether a graph
/// is being recorded.
struct Probe {
    linear: Linear,
    training: AtomicBool,
    seen: Mutex<Vec<(bool, bool)>>,
}

impl Module for Probe {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mode = self.training.load(Ordering::Relaxed);
        self.seen
            .lock()
            .unwrap()
            .push((mode, backflow::is_grad_enabled()));
        self.linear.forward(x)
    }

    fn named_parameters(&self) -> Vec<(String, Param)> {
        self.linear.named_parameters()
    }

    fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }
}

impl Classifier for Probe {}

fn small(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch: 256,
        threads: 1,
        ..TrainConfig::default()
    }
}

#[test]
fn the_loop_trains_in_training_mode_and_evaluates_in_eval_mode() {
    let probe = Probe {
        linear: Linear::new(64, 10, 0),
        training: AtomicBool::new(false),
        seen: Mutex::new(Vec::new()),
    };
    // Left in eval mode: the loop must switch it to training mode.
    probe.eval();
    let report = Trainer::new(&probe, &small(2))
        .unwrap()
        .fit(&mut backflow_app::train_loop::SingleProcess, |_| {})
        .unwrap();
    let seen = probe.seen.lock().unwrap().clone();
    let (training, evaluating): (Vec<_>, Vec<_>) = seen.iter().partition(|(_, grad)| *grad);
    assert_eq!(training.len(), report.steps);
    assert!(training.iter().all(|(mode, _)| *mode), "{seen:?}");
    assert_eq!(evaluating.len(), 1, "{seen:?}");
    assert!(!evaluating[0].0, "evaluation runs in eval mode: {seen:?}");
    assert!(!probe.training.load(Ordering::Relaxed), "left in eval mode");
}

/// Records which points the loop called, and computes only the first half of each batch.
#[derive(Default)]
struct Recorder {
    calls: Vec<String>,
    leader: bool,
}

impl StepHook for Recorder {
    fn before_train(&mut self, start: &mut RunStart) -> Result<()> {
        self.calls.push(format!(
            "train {} {}",
            start.params.len(),
            start.position.epochs_done
        ));
        Ok(())
    }

    fn before_step(&mut self, step: usize, rows: usize) -> Range<usize> {
        self.calls.push(format!("before {step}"));
        0..rows / 2
    }

    fn after_forward(&mut self, step: usize, loss: &Tensor) -> Result<()> {
        self.calls
            .push(format!("forward {step} {:?}", loss.shape()));
        Ok(())
    }

    fn after_backward(&mut self, local: Result<f32>) -> Result<f32> {
        self.calls.push("backward".into());
        local.map(|l| l * 2.0)
    }

    fn after_step(&mut self, p: &Progress) -> Result<()> {
        self.calls.push(format!("step {}", p.step));
        Ok(())
    }

    fn after_epoch(&mut self, epoch: usize, _: f32) -> Result<()> {
        self.calls.push(format!("epoch {epoch}"));
        Ok(())
    }

    fn is_leader(&self) -> bool {
        self.leader
    }
}

#[test]
fn the_hook_is_called_at_each_named_point_in_order() {
    let model = backflow::nn::Sequential::new().push(Linear::new(64, 10, 0));
    let dir = std::env::temp_dir().join(format!("train-loop-hook-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ckpt = dir.join("run.ckpt");
    for leader in [false, true] {
        let mut hook = Recorder {
            leader,
            ..Recorder::default()
        };
        let mut progress: Vec<Progress> = Vec::new();
        let report = Trainer::new(&model, &small(2))
            .unwrap()
            .checkpoint(ckpt.clone(), false)
            .unwrap()
            .fit(&mut hook, |p| progress.push(p))
            .unwrap();
        // 1,437 training rows in batches of 256: 6 steps an epoch.
        assert_eq!(report.steps, 12);
        let mut expected = vec!["train 2 0".to_string()];
        for step in 1..=12 {
            expected.push(format!("before {step}"));
            expected.push(format!("forward {step} []"));
            expected.push("backward".into());
            expected.push(format!("step {step}"));
            if step % 6 == 0 {
                expected.push(format!("epoch {}", step / 6 - 1));
            }
        }
        assert_eq!(hook.calls, expected);
        // Only a leader reports progress and writes the checkpoint.
        assert_eq!(progress.len(), if leader { 12 } else { 0 });
        assert_eq!(ckpt.is_file(), leader);
        if leader {
            // The losses are after_backward's (doubled), the epoch's mean is theirs.
            let last: Vec<&Progress> = progress.iter().filter(|p| p.epoch == 1).collect();
            let mean = last.iter().map(|p| p.loss).sum::<f32>() / 6.0;
            assert!(last[5].epoch_done && !last[4].epoch_done);
            assert!((last[5].epoch_loss - mean).abs() < 1e-5);
            assert_eq!(report.final_loss, last[5].epoch_loss);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_damaged_recipe_is_an_error_naming_the_field() {
    let path = std::env::temp_dir().join(format!("train-loop-recipe-{}.st", std::process::id()));
    let recipe = TrainedRecipe {
        model: ModelName::Moe,
        seed: 3,
        epochs: 1,
        batch: 32,
        lr: 1e-3,
        t1_size: None,
    };
    let model = Linear::new(2, 2, 0);
    save_trained(&model, &recipe, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(read_recipe(&bytes, &path).unwrap(), Some(recipe));
    // The seed field replaced by one that is not a number (same length, so the header's
    // size still holds).
    let (from, to) = (b"\"seed\":\"3\"", b"\"seed\":\"x\"");
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("the seed is in the header");
    let mut damaged = bytes.clone();
    damaged[at..at + to.len()].copy_from_slice(to);
    std::fs::write(&path, damaged).unwrap();
    let e = read_recipe(&std::fs::read(&path).unwrap(), &path)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`seed`") && e.contains("train-loop-recipe"),
        "{e}"
    );
    std::fs::remove_file(&path).unwrap();
}
