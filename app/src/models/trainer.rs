//! Training and reloading any [`ModelName`]: the T1 loop of `crate::train` (seeded split,
//! shuffled mini-batches, Adam, the backward pass timed alone) over a [`Classifier`].

use super::{attention, inception, moe, Classifier, ModelName};
use crate::data;
use crate::train::{load_wide_model, train_digits, Progress, TrainConfig, TrainReport};
use backflow::nn::{from_safetensors, Adam, Optimizer};
use backflow::{no_grad, BackwardOptions, Error, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// Builds `name` at its default size with weights drawn from `seed`.
pub fn build(name: ModelName, seed: u64) -> Box<dyn Classifier> {
    match name {
        ModelName::T1 => {
            let d = TrainConfig::default();
            Box::new(crate::train::wide_model(
                data::DIGITS_FEATURES,
                d.branches,
                d.hidden,
                data::DIGITS_CLASSES,
                seed,
            ))
        }
        ModelName::Inception => Box::new(inception::Inception::new(
            &inception::InceptionConfig::default(),
            seed,
        )),
        ModelName::Attention => Box::new(attention::AttentionNet::new(
            &attention::AttentionConfig::default(),
            seed,
        )),
        ModelName::Moe => Box::new(moe::MoeNet::new(&moe::MoeConfig::default(), seed)),
    }
}

/// Trains `name` on the digits set as `config` says (T1 takes its `branches` and
/// `hidden`; the other models their default sizes), calling `on_step` after each step.
pub fn train_model(
    name: ModelName,
    config: &TrainConfig,
    on_step: impl FnMut(Progress) + Send,
) -> Result<(Box<dyn Classifier>, TrainReport)> {
    if name == ModelName::T1 {
        let (model, report) = train_digits(config, on_step)?;
        return Ok((Box::new(model), report));
    }
    let model = build(name, config.seed);
    let report = fit(model.as_ref(), config, on_step)?;
    Ok((model, report))
}

/// Trains `model` on the digits set with `config`'s epochs, batch, learning rate, seed,
/// threads and scheduler; the forward pass runs on a rayon pool of `config.threads`.
pub fn fit(
    model: &dyn Classifier,
    config: &TrainConfig,
    on_step: impl FnMut(Progress) + Send,
) -> Result<TrainReport> {
    config.validate()?;
    let threads = match config.threads {
        0 => backflow::default_threads(),
        n => n,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Invalid {
            op: "train",
            message: format!("cannot start {threads} threads: {e}"),
        })?;
    let config = TrainConfig {
        threads,
        ..config.clone()
    };
    pool.install(|| fit_on_pool(model, &config, on_step))
}

fn fit_on_pool(
    model: &dyn Classifier,
    config: &TrainConfig,
    mut on_step: impl FnMut(Progress),
) -> Result<TrainReport> {
    let (train, test) = data::digits()?.split(0.8, config.seed);
    let mut opt = Adam::new(model.parameters(), config.lr);
    let opts = BackwardOptions::new()
        .scheduler(config.scheduler)
        .threads(config.threads);
    let total_steps = config.epochs * train.len().div_ceil(config.batch);
    let (mut step, mut final_loss, mut backward_time) = (0, f32::NAN, Duration::ZERO);
    let start = Instant::now();
    for epoch in 0..config.epochs {
        let order_seed = config.seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let (mut epoch_loss, mut epoch_steps) = (0.0f64, 0usize);
        for batch in train.batches(config.batch, order_seed) {
            let loss = model.loss(&batch.x, &batch.y)?;
            let t = Instant::now();
            loss.backward_with(&opts)?;
            backward_time += t.elapsed();
            opt.step()?;
            step += 1;
            let loss = loss.item();
            epoch_loss += f64::from(loss);
            epoch_steps += 1;
            on_step(Progress {
                epoch,
                step,
                total_steps,
                loss,
            });
        }
        final_loss = (epoch_loss / epoch_steps.max(1) as f64) as f32;
    }
    let train_time = start.elapsed();
    let batch = test.batch();
    let logits = no_grad(|| model.forward(&batch.x))?;
    Ok(TrainReport {
        test_accuracy: backflow::nn::accuracy(&logits, &batch.y),
        train_time,
        backward_time,
        final_loss,
        steps: step,
    })
}

/// The model whose weights `backflow train --save` wrote to `path`, recognised by its
/// tensor names: T1 (any branches and width, read from the shapes) or another model at
/// its default size.
pub fn load_model(path: &Path) -> Result<(ModelName, Box<dyn Classifier>)> {
    let bad = |message: String| Error::Invalid {
        op: "load",
        message: format!("{}: {message}", path.display()),
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let names = file.names();
    let has = |name: &str| names.contains(&name);
    let name = if has("branches.0.0.weight") {
        ModelName::T1
    } else if has(inception::MARKER) {
        ModelName::Inception
    } else if has(attention::MARKER) {
        ModelName::Attention
    } else if has(moe::MARKER) {
        ModelName::Moe
    } else {
        return Err(bad(
            "not a model backflow trains (t1, inception, attention, moe): none of their \
             parameter names is in the file"
                .into(),
        ));
    };
    if name == ModelName::T1 {
        return Ok((name, Box::new(load_wide_model(path)?)));
    }
    let model = build(name, 0);
    from_safetensors(&model, &bytes).map_err(|e| bad(format!("a {} model: {e}", name.name())))?;
    Ok((name, model))
}
