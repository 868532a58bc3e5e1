//! Building, training and reloading any [`ModelName`]: the one loop
//! ([`crate::train_loop::Trainer`]) over a [`Classifier`].

use super::{attention, inception, moe, Classifier, ModelName};
use crate::train::{load_wide_model, Progress, TrainConfig, TrainReport};
use crate::train_loop::{SingleProcess, Trainer};
use backflow::nn::from_safetensors;
use backflow::{Error, Result};
use std::path::Path;

/// Builds `name` at its default size with weights drawn from `seed`.
pub fn build(name: ModelName, seed: u64) -> Box<dyn Classifier> {
    match name {
        ModelName::T1 => build_for(
            ModelName::T1,
            &TrainConfig {
                seed,
                ..TrainConfig::default()
            },
        ),
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

/// Builds `name` for `config`: T1 with its `branches` and `hidden`, another model at its
/// default size; weights drawn from `config.seed`.
pub fn build_for(name: ModelName, config: &TrainConfig) -> Box<dyn Classifier> {
    match name {
        ModelName::T1 => Box::new(crate::train::t1_model(config)),
        other => build(other, config.seed),
    }
}

/// Trains `name` on the digits set as `config` says (T1 takes its `branches` and
/// `hidden`; the other models their default sizes), calling `on_step` after each step.
pub fn train_model(
    name: ModelName,
    config: &TrainConfig,
    on_step: impl FnMut(Progress) + Send,
) -> Result<(Box<dyn Classifier>, TrainReport)> {
    config.validate()?;
    let model = build_for(name, config);
    let report = fit(model.as_ref(), config, on_step)?;
    Ok((model, report))
}

/// Trains `model` on the digits set with `config`'s epochs, batch, learning rate, seed,
/// threads and scheduler: the one loop ([`Trainer`]) in one process.
pub fn fit(
    model: &dyn Classifier,
    config: &TrainConfig,
    on_step: impl FnMut(Progress) + Send,
) -> Result<TrainReport> {
    Trainer::new(model, config)?.fit(&mut SingleProcess, on_step)
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
