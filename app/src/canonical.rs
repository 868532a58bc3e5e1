//! Safetensors bytes that depend on their contents alone.
//!
//! `safetensors::serialize` takes the file's metadata as a `HashMap`, whose order changes
//! from one run to the next, so two saves of the same weights and recipe gave different
//! bytes (a checksum or a `cmp` of two runs' files failed). [`serialize`] writes the header
//! again with every key in sorted order.

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::TensorView;

/// `safetensors::serialize(tensors, Some(metadata))` with the JSON header's keys (the
/// tensor names and the metadata's) sorted: equal tensors and metadata give equal bytes.
pub fn serialize<'a>(
    tensors: impl IntoIterator<Item = (impl AsRef<str>, TensorView<'a>)>,
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, String> {
    let tensors: Vec<(String, TensorView<'a>)> = tensors
        .into_iter()
        .map(|(name, view)| (name.as_ref().to_string(), view))
        .collect();
    let bytes = safetensors::serialize(tensors, Some(metadata)).map_err(|e| e.to_string())?;
    sort_header(&bytes)
}

/// `bytes`, a safetensors file, with its header's keys in sorted order and padded with
/// spaces to a multiple of 8 bytes as the format asks; the tensor data is unchanged (the
/// header gives each tensor's offsets explicitly, so its order is free).
fn sort_header(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let bad = || "safetensors wrote a file without a complete header".to_string();
    let len: [u8; 8] = bytes
        .get(..8)
        .ok_or_else(bad)?
        .try_into()
        .map_err(|_| bad())?;
    let end = usize::try_from(u64::from_le_bytes(len))
        .ok()
        .and_then(|n| n.checked_add(8))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(bad)?;
    let mut header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..end]).map_err(|e| e.to_string())?;
    if let Some(meta) = header.get_mut("__metadata__") {
        let sorted: BTreeMap<String, String> =
            serde_json::from_value(meta.take()).map_err(|e| e.to_string())?;
        *meta = serde_json::to_value(sorted).map_err(|e| e.to_string())?;
    }
    let mut text = serde_json::to_string(&header).map_err(|e| e.to_string())?;
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let mut out = Vec::with_capacity(8 + text.len() + bytes.len() - end);
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[end..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::{Dtype, SafeTensors};

    fn metadata(order: &[usize]) -> HashMap<String, String> {
        let pairs: Vec<(String, String)> =
            (0..8).map(|i| (format!("key{i}"), i.to_string())).collect();
        order.iter().map(|&i| pairs[i].clone()).collect()
    }

    #[test]
    fn equal_contents_give_equal_bytes_and_read_back() {
        let (a, b) = ([1.0f32, 2.0, 3.0], [4.0f32]);
        let raw = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let (ra, rb) = (raw(&a), raw(&b));
        let save = |order: &[usize]| {
            let views = [
                ("b", TensorView::new(Dtype::F32, vec![1], &rb).unwrap()),
                ("a", TensorView::new(Dtype::F32, vec![3], &ra).unwrap()),
            ];
            (
                serialize(views.clone(), metadata(order)).unwrap(),
                safetensors::serialize(views.iter().cloned(), Some(metadata(order))).unwrap(),
            )
        };
        let (first, _) = save(&[0, 1, 2, 3, 4, 5, 6, 7]);
        let mut raw_differed = false;
        for _ in 0..10 {
            let (again, raw_again) = save(&[7, 6, 5, 4, 3, 2, 1, 0]);
            assert_eq!(again, first);
            raw_differed |= raw_again != save(&[0, 1, 2, 3, 4, 5, 6, 7]).1;
        }
        // Without sorting, the bytes did change with the maps' order (what this fixes).
        assert!(
            raw_differed,
            "safetensors' own bytes never varied: nothing to fix"
        );
        assert_eq!((first.len() - 8) % 8, 0);
        let file = SafeTensors::deserialize(&first).unwrap();
        assert_eq!(file.tensor("a").unwrap().data(), &ra[..]);
        assert_eq!(file.tensor("b").unwrap().data(), &rb[..]);
        let (_, header) = SafeTensors::read_metadata(&first).unwrap();
        assert_eq!(
            header.metadata().as_ref().unwrap(),
            &metadata(&[0, 1, 2, 3, 4, 5, 6, 7])
        );
    }
}
