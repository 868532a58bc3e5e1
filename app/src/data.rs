//! The digits data set (UCI "Optical Recognition of Handwritten Digits", see
//! `data/README.md`), embedded in the library so a fresh clone runs from any directory;
//! a seeded train/test split and shuffled mini-batches.

use backflow::{Error, Result, Tensor};
use flate2::read::GzDecoder;
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use std::io::Read;

/// The gzipped CSV: 1,797 rows of 64 pixels (0..16) then the label (0..9).
const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// Pixels per image (8×8).
pub const DIGITS_FEATURES: usize = 64;
/// Digit classes.
pub const DIGITS_CLASSES: usize = 10;

/// A labelled set of feature rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Row-major `[len, features]`.
    features: Vec<f32>,
    labels: Vec<usize>,
    width: usize,
}

/// One mini-batch: `x` is `[rows, features]`, `y` the rows' labels.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The features.
    pub x: Tensor,
    /// The labels.
    pub y: Vec<usize>,
}

/// The embedded digits set, pixels scaled by 1/16 into `[0, 1]`.
///
/// ```
/// let digits = backflow_app::data::digits().unwrap();
/// assert_eq!((digits.len(), digits.width()), (1797, 64));
/// ```
pub fn digits() -> Result<Dataset> {
    let mut csv = String::new();
    GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut csv)
        .map_err(|e| invalid(format!("digits.csv.gz: {e}")))?;
    let mut data = Dataset::parse_csv(&csv, DIGITS_FEATURES)?;
    data.features.iter_mut().for_each(|v| *v /= 16.0);
    Ok(data)
}

impl Dataset {
    /// A dataset from row-major features of `width` columns and one label per row.
    pub fn new(features: Vec<f32>, labels: Vec<usize>, width: usize) -> Result<Self> {
        if features.len() != labels.len() * width {
            return Err(invalid(format!(
                "{} feature values for {} rows of width {width}",
                features.len(),
                labels.len()
            )));
        }
        Ok(Self {
            features,
            labels,
            width,
        })
    }

    /// Parses CSV lines of `width` numbers followed by a label, a whole number from 0
    /// (`3` or `3.0`); a bad field is an error naming its line (counted from 1).
    pub fn parse_csv(text: &str, width: usize) -> Result<Self> {
        let (mut features, mut labels) = (Vec::new(), Vec::new());
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let bad = |what: &str| invalid(format!("line {}: {what}: {line:?}", n + 1));
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if fields.len() != width + 1 {
                return Err(bad(&format!("expected {} fields", width + 1)));
            }
            for f in &fields[..width] {
                features.push(f.parse::<f32>().map_err(|_| bad("not a number"))?);
            }
            labels
                .push(parse_label(fields[width]).ok_or_else(|| {
                    bad("the label is not a whole number from 0 (like 3 or 3.0)")
                })?);
        }
        Self::new(features, labels, width)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Features per row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The labels, in row order.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let w = self.width;
        let mut features = Vec::with_capacity(indices.len() * w);
        for &i in indices {
            features.extend_from_slice(&self.features[i * w..(i + 1) * w]);
        }
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        Dataset {
            features,
            labels,
            width: w,
        }
    }

    /// Shuffles the rows with `seed` and splits them: the first `train_fraction` for
    /// training, the rest for testing.
    pub fn split(&self, train_fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        let n_train = (train_fraction.clamp(0.0, 1.0) * self.len() as f64) as usize;
        (
            self.select(&order[..n_train]),
            self.select(&order[n_train..]),
        )
    }

    /// All rows as one batch.
    pub fn batch(&self) -> Batch {
        Batch {
            x: Tensor::from_vec(self.features.clone(), &[self.len(), self.width])
                .expect("rows fill the shape"),
            y: self.labels.clone(),
        }
    }

    /// Mini-batches of up to `size` rows in an order shuffled by `seed` (the last may be
    /// smaller).
    pub fn batches(&self, size: usize, seed: u64) -> impl Iterator<Item = Batch> + '_ {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        let size = size.max(1);
        (0..self.len().div_ceil(size)).map(move |b| {
            let rows = &order[b * size..((b + 1) * size).min(order.len())];
            self.select(rows).batch()
        })
    }
}

/// A label: a whole number from 0, written as an integer (`3`) or with a zero fraction
/// (`3.0`, as some exports write it); anything else (`-1`, `3.7`, `nan`, `1e30`) is `None`.
fn parse_label(field: &str) -> Option<usize> {
    if let Ok(n) = field.parse::<usize>() {
        return Some(n);
    }
    let x: f64 = field.parse().ok()?;
    // Below 2^53 every whole f64 is exact, so the cast below is too.
    let exact = x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x < 9_007_199_254_740_992.0;
    exact.then_some(x as usize)
}

fn invalid(message: String) -> Error {
    Error::Invalid {
        op: "data",
        message,
    }
}
