//! Saving and loading a module's parameters (and buffers, such as running statistics) in
//! the safetensors format, under their dotted
//! names (`branches.0.0.weight`), little-endian in the module's element type (F32 or F64),
//! so PyTorch's `safetensors.torch.load_file` opens them.

use super::module::Module;
use crate::{Element, Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::path::Path;

/// An `Error::Invalid` of `op` naming the first parameter name that appears twice (a file
/// holds one tensor per name, so such a module cannot round-trip).
fn check_unique<T: Element>(op: &'static str, params: &[(String, super::Param<T>)]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(params.len());
    for (name, p) in params {
        if !seen.insert(name.as_str()) {
            return Err(invalid(
                op,
                format!(
                    "two parameters are named `{name}` (the second of shape {:?}): give the \
                     module's children distinct names",
                    p.shape()
                ),
            ));
        }
    }
    Ok(())
}

/// The module's parameters as a safetensors file image.
///
/// An `Error::Invalid` of op `save_weights` names a parameter name that appears twice in
/// the module (for example two children pushed under one name).
///
/// ```
/// use backflow::nn::{to_safetensors, Linear, Sequential};
/// let twice = Sequential::new()
///     .push_named("fc", Linear::new(2, 2, 0))
///     .push_named("fc", Linear::new(2, 2, 1));
/// let e = to_safetensors(&twice).unwrap_err();
/// assert!(e.to_string().contains("two parameters are named `fc.weight`"));
/// ```
pub fn to_safetensors<T: Element, M: Module<T> + ?Sized>(module: &M) -> Result<Vec<u8>> {
    let params = saved(module);
    check_unique("save_weights", &params)?;
    let dtype = dtype::<T>();
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = params
        .into_iter()
        .map(|(name, p)| {
            let t = p.get();
            let bytes = t.data().iter().flat_map(|&v| le_bytes(v)).collect();
            (name, t.shape().to_vec(), bytes)
        })
        .collect();
    let views = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(dtype, shape.clone(), bytes)
                .map(|view| (name.as_str(), view))
                .map_err(|e| invalid("save_weights", format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, None).map_err(|e| invalid("save_weights", e.to_string()))
}

/// Writes the module's parameters to `path` as a safetensors file, atomically (see
/// [`crate::io::write_atomic`]): a save that fails part way leaves the previous file at
/// `path` as it was.
pub fn save_weights<T: Element, M: Module<T> + ?Sized>(
    module: &M,
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = to_safetensors(module)?;
    crate::io::write_atomic(path, bytes).map_err(|e| Error::io("save_weights", path, &e))
}

/// Sets the module's parameters from a safetensors file image. Strict, as PyTorch's
/// `load_state_dict`: every parameter must be present with its shape and the module's
/// dtype (F32 or F64), and the file may hold no other tensor.
pub fn from_safetensors<T: Element, M: Module<T> + ?Sized>(module: &M, bytes: &[u8]) -> Result<()> {
    let file =
        SafeTensors::deserialize(bytes).map_err(|e| invalid("load_weights", e.to_string()))?;
    let params = saved(module);
    check_unique("load_weights", &params)?;
    let mut unexpected: Vec<String> = file
        .names()
        .into_iter()
        .filter(|n| !params.iter().any(|(name, _)| name == n))
        .map(str::to_string)
        .collect();
    if !unexpected.is_empty() {
        unexpected.sort();
        return Err(invalid(
            "load_weights",
            format!("unexpected tensors in the file: {unexpected:?}"),
        ));
    }
    // Check everything before changing anything, so a bad file leaves the module as it was.
    let mut values = Vec::with_capacity(params.len());
    for (name, p) in &params {
        let view = file
            .tensor(name)
            .map_err(|_| invalid("load_weights", format!("missing tensor `{name}`")))?;
        if view.dtype() != dtype::<T>() || view.shape() != p.shape().as_slice() {
            return Err(invalid(
                "load_weights",
                format!(
                    "`{name}` is {:?} {:?} in the file; the module needs {:?} {:?}",
                    view.dtype(),
                    view.shape(),
                    dtype::<T>(),
                    p.shape()
                ),
            ));
        }
        let data: Vec<T> = from_le_bytes(view.data());
        values.push(data);
    }
    for ((_, p), data) in params.iter().zip(values) {
        p.set_data(data)?;
    }
    Ok(())
}

/// Sets the module's parameters from the safetensors file at `path`; see
/// [`from_safetensors`].
pub fn load_weights<T: Element, M: Module<T> + ?Sized>(
    module: &M,
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io("load_weights", path, &e))?;
    from_safetensors(module, &bytes)
}

/// The safetensors dtype of `T`: F64 for 8-byte elements, else F32.
fn dtype<T: Element>() -> Dtype {
    if std::mem::size_of::<T>() == 8 {
        Dtype::F64
    } else {
        Dtype::F32
    }
}

/// `v`'s little-endian bytes in [`dtype`]'s width (exact: `T` is f32 or f64).
fn le_bytes<T: Element>(v: T) -> Vec<u8> {
    match dtype::<T>() {
        Dtype::F64 => v.to_f64().to_le_bytes().to_vec(),
        _ => (v.to_f64() as f32).to_le_bytes().to_vec(),
    }
}

/// The values of little-endian bytes in [`dtype`]'s width.
fn from_le_bytes<T: Element>(bytes: &[u8]) -> Vec<T> {
    match dtype::<T>() {
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| T::from_f64(f64::from_le_bytes(b.try_into().expect("8 bytes"))))
            .collect(),
        _ => bytes
            .chunks_exact(4)
            .map(|b| {
                T::from_f64(f64::from(f32::from_le_bytes(
                    b.try_into().expect("4 bytes"),
                )))
            })
            .collect(),
    }
}

/// What a weights file holds: the parameters, then the buffers ([`Module::named_buffers`]).
fn saved<T: Element, M: Module<T> + ?Sized>(module: &M) -> Vec<(String, super::Param<T>)> {
    let mut all = module.named_parameters();
    all.extend(module.named_buffers());
    all
}

fn invalid(op: &'static str, message: String) -> Error {
    Error::Invalid { op, message }
}
