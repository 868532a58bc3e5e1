//! Weights that `backflow train --save` writes: the model's parameters as
//! [`backflow::nn::save_weights`] writes them, with the run's recipe in the safetensors
//! metadata (the model, the split seed, epochs, batch, learning rate, T1's size), so that
//! `backflow eval` scores the test split the model was trained without. A file without
//! that metadata (written by `save_weights` directly) still loads; it has no recipe.

use crate::models::ModelName;
use backflow::nn::{to_safetensors, Module};
use backflow::{Error, Result};
use safetensors::tensor::{SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

const FORMAT: &str = "backflow-trained-weights-1";

/// How a saved model was trained.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainedRecipe {
    /// The model.
    pub model: ModelName,
    /// The `--seed`: it chose the train/test split.
    pub seed: u64,
    /// Passes over the training set.
    pub epochs: usize,
    /// Rows per (global) mini-batch.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// T1's branches and hidden units; `None` for the other models.
    pub t1_size: Option<(usize, usize)>,
}

impl TrainedRecipe {
    fn to_metadata(&self) -> HashMap<String, String> {
        let mut meta = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("model".to_string(), self.model.name().to_string()),
            ("seed".to_string(), self.seed.to_string()),
            ("epochs".to_string(), self.epochs.to_string()),
            ("batch".to_string(), self.batch.to_string()),
            ("lr".to_string(), self.lr.to_string()),
        ]);
        if let Some((branches, hidden)) = self.t1_size {
            meta.insert("branches".to_string(), branches.to_string());
            meta.insert("hidden".to_string(), hidden.to_string());
        }
        meta
    }

    fn from_metadata(meta: &HashMap<String, String>) -> std::result::Result<Self, String> {
        fn field<T: std::str::FromStr>(
            meta: &HashMap<String, String>,
            key: &str,
        ) -> std::result::Result<T, String> {
            let value = meta
                .get(key)
                .ok_or_else(|| format!("no `{key}` in its metadata"))?;
            value
                .parse()
                .map_err(|_| format!("its metadata's `{key}` is `{value}`, not a valid value"))
        }
        let name: String = field(meta, "model")?;
        let model = ModelName::parse(&name).ok_or_else(|| {
            format!("its metadata names the model `{name}`, not one backflow trains")
        })?;
        let t1_size = match model {
            ModelName::T1 => Some((field(meta, "branches")?, field(meta, "hidden")?)),
            _ => None,
        };
        let recipe = Self {
            model,
            seed: field(meta, "seed")?,
            epochs: field(meta, "epochs")?,
            batch: field(meta, "batch")?,
            lr: field(meta, "lr")?,
            t1_size,
        };
        // What `train` cannot have run: `train --save` never writes it.
        let sizes = [
            ("epochs", recipe.epochs),
            ("batch", recipe.batch),
            ("branches", t1_size.map_or(1, |s| s.0)),
            ("hidden", t1_size.map_or(1, |s| s.1)),
        ];
        if let Some((key, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(format!("its metadata's `{key}` is 0, not a valid value"));
        }
        if !(recipe.lr.is_finite() && recipe.lr > 0.0) {
            return Err(format!(
                "its metadata's `lr` is `{}`, not a valid value",
                recipe.lr
            ));
        }
        Ok(recipe)
    }

    /// Checks that this recipe describes `model`, the `name` model loaded from the same
    /// file: the model it names, and T1's branches and hidden units against its shapes.
    ///
    /// ```
    /// use backflow_app::models::ModelName;
    /// use backflow_app::train::wide_model;
    /// use backflow_app::trained_weights::TrainedRecipe;
    /// let recipe = TrainedRecipe {
    ///     model: ModelName::T1,
    ///     seed: 0,
    ///     epochs: 1,
    ///     batch: 64,
    ///     lr: 0.01,
    ///     t1_size: Some((2, 8)),
    /// };
    /// assert!(recipe.check_model(ModelName::T1, &wide_model(64, 2, 8, 10, 0)).is_ok());
    /// let e = recipe.check_model(ModelName::T1, &wide_model(64, 3, 8, 10, 0)).unwrap_err();
    /// assert!(e.contains("2 branches x hidden 8") && e.contains("3 branches x hidden 8"), "{e}");
    /// assert!(recipe.check_model(ModelName::Moe, &wide_model(64, 2, 8, 10, 0)).is_err());
    /// ```
    pub fn check_model<M: Module + ?Sized>(
        &self,
        name: ModelName,
        model: &M,
    ) -> std::result::Result<(), String> {
        if self.model != name {
            return Err(format!(
                "its metadata names the model `{}`, but its tensors are a {} model",
                self.model.name(),
                name.name()
            ));
        }
        let Some((branches, hidden)) = self.t1_size else {
            return Ok(());
        };
        let shapes: HashMap<String, Vec<usize>> = model
            .named_parameters()
            .into_iter()
            .map(|(n, p)| (n, p.shape()))
            .collect();
        let actual = match (
            shapes.get("branches.0.0.weight").map(Vec::as_slice),
            shapes.get("head.weight").map(Vec::as_slice),
        ) {
            (Some(&[h, _]), Some(&[_, width])) if h > 0 => (width / h, h),
            _ => return Err("its tensors are not a T1 model's".to_string()),
        };
        if actual != (branches, hidden) {
            return Err(format!(
                "its metadata says {branches} branches x hidden {hidden}, but its tensors \
                 are {} branches x hidden {}",
                actual.0, actual.1
            ));
        }
        Ok(())
    }
}

/// Writes `model`'s weights to `path` atomically (as [`backflow::nn::save_weights`]) with
/// `recipe` in the file's metadata.
///
/// ```
/// use backflow_app::models::ModelName;
/// use backflow_app::train::wide_model;
/// use backflow_app::trained_weights::{read_recipe, save_trained, TrainedRecipe};
/// let path = std::env::temp_dir().join(format!("trained-doc-{}.safetensors", std::process::id()));
/// let recipe = TrainedRecipe {
///     model: ModelName::T1,
///     seed: 7,
///     epochs: 2,
///     batch: 64,
///     lr: 0.01,
///     t1_size: Some((2, 8)),
/// };
/// save_trained(&wide_model(64, 2, 8, 10, 0), &recipe, &path).unwrap();
/// assert_eq!(read_recipe(&std::fs::read(&path).unwrap(), &path).unwrap(), Some(recipe));
/// // The weights load as any safetensors file does.
/// backflow::nn::load_weights(&wide_model(64, 2, 8, 10, 1), &path).unwrap();
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn save_trained<M: Module + ?Sized>(
    model: &M,
    recipe: &TrainedRecipe,
    path: &Path,
) -> Result<()> {
    let invalid = |message: String| Error::Invalid {
        op: "save_weights",
        message,
    };
    let plain = to_safetensors(model)?;
    let file = SafeTensors::deserialize(&plain).map_err(|e| invalid(e.to_string()))?;
    let tensors: Vec<(String, TensorView)> = file.tensors();
    let bytes = crate::canonical::serialize(tensors, recipe.to_metadata()).map_err(invalid)?;
    backflow::io::write_atomic(path, bytes).map_err(|e| Error::io("save_weights", path, &e))
}

/// The recipe in a weights file's bytes (read from `path`, which errors name): `None` for a
/// file without one (written by [`backflow::nn::save_weights`]); an error for a file whose
/// recipe is damaged.
pub fn read_recipe(bytes: &[u8], path: &Path) -> Result<Option<TrainedRecipe>> {
    let bad = |message: String| Error::Invalid {
        op: "load",
        message: format!("{}: {message}", path.display()),
    };
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
    let Some(meta) = header.metadata() else {
        return Ok(None);
    };
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Ok(None);
    }
    TrainedRecipe::from_metadata(meta).map(Some).map_err(bad)
}
