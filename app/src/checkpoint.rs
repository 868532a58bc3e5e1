//! Training checkpoints: a model's weights, its Adam state and where training stood, in
//! one safetensors file (the weights under their names, Adam's moments as `adam.m.NAME`
//! and `adam.v.NAME`, the position and Adam's per-parameter step counts as metadata),
//! written atomically ([`backflow::io::write_atomic`]): to a temporary file in the same
//! folder, flushed to disk, then renamed over the old one, so a save that fails or crashes
//! part way leaves the previous checkpoint whole.

use backflow::nn::{AdamState, Module};
use backflow::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// Where a training run stood when its checkpoint was written, and the settings a run
/// that resumes from it must share.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Position {
    /// Epochs finished.
    pub epochs_done: usize,
    /// Optimiser steps taken.
    pub steps: usize,
    /// The run's seed (split, initial weights, batch order): a resumed run must use it.
    pub seed: u64,
    /// The run's rows per (global) mini-batch: a resumed run must use it. `None` in a
    /// checkpoint written before it was stored.
    pub batch: Option<usize>,
    /// The run's Adam learning rate: a resumed run must use it. `None` in a checkpoint
    /// written before it was stored.
    pub lr: Option<f32>,
}

const FORMAT: &str = "backflow-train-checkpoint-1";

/// Writes `model`'s parameters, the state of the Adam over `model.parameters()` (if any)
/// and `position` to `path` atomically.
///
/// ```
/// use backflow::nn::{Adam, AdamState, Linear, Module};
/// use backflow_app::checkpoint::{load_checkpoint, save_checkpoint, Position};
/// let path = std::env::temp_dir().join(format!("ckpt-doc-{}.safetensors", std::process::id()));
/// let model = Linear::new(3, 2, 0);
/// let at = Position { epochs_done: 4, steps: 92, seed: 7, batch: Some(64), lr: Some(0.01) };
/// let adam = AdamState {
///     steps: vec![92, 5_000_000_000],
///     moments: vec![(vec![0.5; 6], vec![0.25; 6]), (vec![1.0; 2], vec![2.0; 2])],
/// };
/// save_checkpoint(&model, Some(&adam), at, &path).unwrap();
/// let fresh = Linear::new(3, 2, 1);
/// assert_eq!(load_checkpoint(&fresh, &path).unwrap(), (at, Some(adam)));
/// assert_eq!(fresh.parameters()[0].get().to_vec(), model.parameters()[0].get().to_vec());
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn save_checkpoint<M: Module + ?Sized>(
    model: &M,
    adam: Option<&AdamState>,
    position: Position,
    path: &Path,
) -> Result<()> {
    let bytes = serialize(model, adam, position)?;
    backflow::io::write_atomic(path, bytes).map_err(|e| Error::io("checkpoint", path, &e))
}

/// Loads a checkpoint written by [`save_checkpoint`] into `model` (of the same names and
/// shapes) and returns where training stood and the Adam state, if it holds one. The model
/// is unchanged if the file is not a checkpoint of it.
pub fn load_checkpoint<M: Module + ?Sized>(
    model: &M,
    path: &Path,
) -> Result<(Position, Option<AdamState>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("checkpoint", path, &e))?;
    let bad = |message: String| Error::Invalid {
        op: "checkpoint",
        message: format!("{}: {message}", path.display()),
    };
    let file = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(bad(format!(
            "not a training checkpoint (no `format: {FORMAT}`)"
        )));
    }
    let number = |key: &str| -> Result<u64> {
        meta.get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad(format!("no whole number `{key}` in its metadata")))
    };
    let position = Position {
        epochs_done: number("epochs_done")? as usize,
        steps: number("steps")? as usize,
        seed: number("seed")?,
        batch: optional(&meta, "batch").map_err(bad)?,
        lr: optional(&meta, "lr").map_err(bad)?,
    };
    let params = model.named_parameters();
    // Every value is read and checked before anything changes.
    let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let view = file.tensor(name).map_err(|_| {
            bad(format!(
                "no tensor `{name}`: not a checkpoint of this model"
            ))
        })?;
        if view.dtype() != Dtype::F32 || view.shape() != shape {
            return Err(bad(format!(
                "`{name}` is {:?} {:?}; the model needs F32 {shape:?}",
                view.dtype(),
                view.shape()
            )));
        }
        Ok(view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    };
    let mut values = Vec::with_capacity(params.len());
    for (name, p) in &params {
        values.push(read(name, &p.shape())?);
    }
    let adam = match meta.get("adam_steps") {
        None => None,
        Some(_) => {
            let mut moments = Vec::new();
            if file.names().iter().any(|n| n.starts_with("adam.m.")) {
                for (name, p) in &params {
                    let shape = p.shape();
                    moments.push((
                        read(&format!("adam.m.{name}"), &shape)?,
                        read(&format!("adam.v.{name}"), &shape)?,
                    ));
                }
            }
            let steps = adam_steps(&meta["adam_steps"], moments.len()).map_err(bad)?;
            Some(AdamState { steps, moments })
        }
    };
    let expected = params.len()
        * if adam.as_ref().is_some_and(|a| !a.moments.is_empty()) {
            3
        } else {
            1
        };
    if file.names().len() != expected {
        return Err(bad(format!(
            "{} tensors where this model's checkpoint has {expected}: not a checkpoint of this model",
            file.names().len()
        )));
    }
    for ((_, p), data) in params.iter().zip(values) {
        p.set_data(data)?;
    }
    Ok((position, adam))
}

/// The value of the optional metadata `key`: `None` where the checkpoint has none (one
/// written before it was stored), an error where it holds something else.
fn optional<T: std::str::FromStr>(
    meta: &HashMap<String, String>,
    key: &str,
) -> std::result::Result<Option<T>, String> {
    meta.get(key)
        .map(|v| {
            v.parse()
                .map_err(|_| format!("its metadata's `{key}` is `{v}`, not a valid value"))
        })
        .transpose()
}

/// Whether `bytes` are a training checkpoint ([`save_checkpoint`]'s format), as opposed
/// to weights or any other file.
///
/// ```
/// use backflow::nn::Linear;
/// use backflow_app::checkpoint::{is_checkpoint, save_checkpoint, Position};
/// let path = std::env::temp_dir().join(format!("is-ckpt-doc-{}.safetensors", std::process::id()));
/// let model = Linear::new(3, 2, 0);
/// let at = Position { epochs_done: 1, steps: 1, seed: 0, batch: Some(1), lr: Some(0.1) };
/// save_checkpoint(&model, None, at, &path).unwrap();
/// assert!(is_checkpoint(&std::fs::read(&path).unwrap()));
/// backflow::nn::save_weights(&model, &path).unwrap();
/// assert!(!is_checkpoint(&std::fs::read(&path).unwrap()));
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn is_checkpoint(bytes: &[u8]) -> bool {
    SafeTensors::read_metadata(bytes).is_ok_and(|(_, header)| {
        header
            .metadata()
            .as_ref()
            .and_then(|m| m.get("format"))
            .is_some_and(|f| f == FORMAT)
    })
}

/// Adam's step counts from the `adam_steps` metadata: one per parameter, comma-separated,
/// each a whole number below 2^64 (a larger one is an error, never truncated). A single
/// count, as checkpoints before per-parameter counts wrote, applies to every parameter.
fn adam_steps(text: &str, params: usize) -> std::result::Result<Vec<u64>, String> {
    if params == 0 {
        return Ok(Vec::new());
    }
    let steps = text
        .split(',')
        .map(|s| {
            s.trim().parse::<u64>().map_err(|_| {
                format!(
                    "`adam_steps` holds `{s}`, not a whole number from 0 to {}",
                    u64::MAX
                )
            })
        })
        .collect::<std::result::Result<Vec<u64>, String>>()?;
    match steps.len() {
        1 => Ok(vec![steps[0]; params]),
        n if n == params => Ok(steps),
        n => Err(format!(
            "`adam_steps` holds {n} step counts for this model's {params} parameters"
        )),
    }
}

fn serialize<M: Module + ?Sized>(
    model: &M,
    adam: Option<&AdamState>,
    position: Position,
) -> Result<Vec<u8>> {
    let invalid = |message: String| Error::Invalid {
        op: "checkpoint",
        message,
    };
    let params = model.named_parameters();
    let le = |values: &[f32]| -> Vec<u8> { values.iter().flat_map(|v| v.to_le_bytes()).collect() };
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, p) in &params {
        tensors.push((name.clone(), p.shape(), le(p.get().data())));
    }
    if let Some(adam) = adam {
        if !adam.moments.is_empty() && adam.moments.len() != params.len() {
            return Err(invalid(format!(
                "Adam holds moments for {} parameters, the model has {}",
                adam.moments.len(),
                params.len()
            )));
        }
        for ((name, p), (m, v)) in params.iter().zip(&adam.moments) {
            tensors.push((format!("adam.m.{name}"), p.shape(), le(m)));
            tensors.push((format!("adam.v.{name}"), p.shape(), le(v)));
        }
    }
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map(|view| (name.as_str(), view))
                .map_err(|e| invalid(format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("epochs_done".to_string(), position.epochs_done.to_string()),
        ("steps".to_string(), position.steps.to_string()),
        ("seed".to_string(), position.seed.to_string()),
    ]);
    if let Some(batch) = position.batch {
        meta.insert("batch".to_string(), batch.to_string());
    }
    if let Some(lr) = position.lr {
        // Rust's shortest representation: it parses back to the same f32.
        meta.insert("lr".to_string(), lr.to_string());
    }
    if let Some(adam) = adam {
        if adam.steps.len() != adam.moments.len() {
            return Err(invalid(format!(
                "Adam holds step counts for {} parameters and moments for {}",
                adam.steps.len(),
                adam.moments.len()
            )));
        }
        let steps: Vec<String> = adam.steps.iter().map(u64::to_string).collect();
        meta.insert("adam_steps".to_string(), steps.join(","));
    }
    crate::canonical::serialize(views, meta).map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use backflow::nn::Linear;
    use backflow_stress::limits::{rerun_with_file_size_limit, LIMITED_CHILD_DIR};

    /// The names in `dir`, sorted.
    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_save_that_fails_part_way_leaves_the_previous_checkpoint_whole() {
        let test =
            "checkpoint::tests::a_save_that_fails_part_way_leaves_the_previous_checkpoint_whole";
        // Weights and both Adam moments of 64·64 + 64 parameters: some 50 KiB.
        let model = Linear::new(64, 64, 0);
        let adam = |fill: f32| AdamState {
            steps: vec![3, 3],
            moments: vec![
                (vec![fill; 64 * 64], vec![fill; 64 * 64]),
                (vec![fill; 64], vec![fill; 64]),
            ],
        };
        let at = |epochs_done| Position {
            epochs_done,
            steps: 3,
            seed: 1,
            batch: Some(8),
            lr: Some(0.003),
        };
        if let Some(dir) = std::env::var_os(LIMITED_CHILD_DIR) {
            let path = Path::new(&dir).join("run.safetensors");
            let err = save_checkpoint(&model, Some(&adam(2.0)), at(2), &path).unwrap_err();
            assert!(err.to_string().contains("run.safetensors"), "{err}");
            return;
        }
        let dir = std::env::temp_dir().join(format!("ckpt-limit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.safetensors");
        save_checkpoint(&model, Some(&adam(1.0)), at(1), &path).unwrap();
        let before = std::fs::read(&path).unwrap();
        rerun_with_file_size_limit(test, &dir);
        assert!(
            std::fs::read(&path).unwrap() == before,
            "the previous checkpoint is unchanged, byte for byte"
        );
        assert_eq!(
            files_in(&dir),
            ["run.safetensors"],
            "no temporary file is left"
        );
        assert_eq!(
            load_checkpoint(&Linear::new(64, 64, 5), &path).unwrap(),
            (at(1), Some(adam(1.0)))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_save_leaves_the_previous_checkpoint_whole() {
        let dir = std::env::temp_dir().join(format!("ckpt-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.safetensors");
        let model = Linear::new(3, 2, 0);
        let first = Position {
            epochs_done: 1,
            steps: 23,
            seed: 5,
            batch: None,
            lr: None,
        };
        save_checkpoint(&model, None, first, &path).unwrap();
        // The target is a folder: the save fails, and leaves no temporary file.
        let blocked = dir.join("blocked");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(save_checkpoint(&model, None, first, &blocked).is_err());
        assert_eq!(files_in(&dir), ["blocked", "run.safetensors"]);
        assert_eq!(
            load_checkpoint(&Linear::new(3, 2, 9), &path).unwrap(),
            (first, None)
        );
        // Another model's shapes: an error naming the file, and the model is unchanged.
        let other = Linear::new(4, 2, 3);
        let before = other.parameters()[0].get().to_vec();
        let e = load_checkpoint(&other, &path).unwrap_err().to_string();
        assert!(e.contains("run.safetensors"), "{e}");
        assert_eq!(other.parameters()[0].get().to_vec(), before);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A checkpoint of a `Linear::new(3, 2, 0)` with `adam_steps` set to `steps` verbatim.
    fn with_adam_steps(path: &Path, steps: &str) {
        let model = Linear::new(3, 2, 0);
        let adam = AdamState {
            steps: vec![1, 1],
            moments: vec![(vec![0.5; 6], vec![0.25; 6]), (vec![1.0; 2], vec![2.0; 2])],
        };
        let at = Position {
            epochs_done: 1,
            steps: 1,
            seed: 0,
            batch: Some(64),
            lr: Some(0.01),
        };
        save_checkpoint(&model, Some(&adam), at, path).unwrap();
        let bytes = std::fs::read(path).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let mut meta = header.metadata().clone().unwrap();
        meta.insert("adam_steps".into(), steps.into());
        let tensors: Vec<(String, TensorView)> = file
            .names()
            .into_iter()
            .map(|n| (n.to_string(), file.tensor(n).unwrap()))
            .collect();
        std::fs::write(path, safetensors::serialize(tensors, Some(meta)).unwrap()).unwrap();
    }

    #[test]
    fn adam_step_counts_keep_64_bits_per_parameter_and_a_larger_count_is_refused() {
        let dir = std::env::temp_dir().join(format!("ckpt-steps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.safetensors");
        let model = Linear::new(3, 2, 0);
        // Per-parameter counts past 2^32 round-trip whole.
        let adam = AdamState {
            steps: vec![4_294_967_301, 7],
            moments: vec![(vec![0.5; 6], vec![0.25; 6]), (vec![1.0; 2], vec![2.0; 2])],
        };
        let at = Position {
            epochs_done: 2,
            steps: 9,
            seed: 1,
            batch: Some(1),
            lr: Some(1e-3),
        };
        save_checkpoint(&model, Some(&adam), at, &path).unwrap();
        let (_, loaded) = load_checkpoint(&Linear::new(3, 2, 1), &path).unwrap();
        assert_eq!(loaded.unwrap().steps, vec![4_294_967_301, 7]);
        // One count, as older checkpoints hold, applies to every parameter, whole.
        with_adam_steps(&path, "4294967301");
        let (_, loaded) = load_checkpoint(&Linear::new(3, 2, 1), &path).unwrap();
        assert_eq!(loaded.unwrap().steps, vec![4_294_967_301; 2]);
        // A count past 2^64, or the wrong number of counts: an error naming the field, and
        // the model is unchanged.
        for bad in ["18446744073709551616", "5,6,7", "5,x"] {
            with_adam_steps(&path, bad);
            let fresh = Linear::new(3, 2, 1);
            let before = fresh.parameters()[0].get().to_vec();
            let e = load_checkpoint(&fresh, &path).unwrap_err().to_string();
            assert!(
                e.contains("adam_steps") && e.contains("run.safetensors"),
                "{bad}: {e}"
            );
            assert_eq!(fresh.parameters()[0].get().to_vec(), before);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
