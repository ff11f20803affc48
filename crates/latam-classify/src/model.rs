//! The model: an input matrix of hashed features (`buckets × dim`), averaged into a hidden
//! vector, and an output matrix (`labels × dim`); softmax or one-vs-all sigmoid losses; SGD
//! with a learning rate decaying linearly to zero, as fastText trains. Training runs on one
//! thread, so a seed gives the same model, byte for byte.

use std::collections::BTreeSet;
use std::io::{Read, Write};

use latam_core::Rng;
use serde::{Deserialize, Serialize};

use crate::ClassifyError;
use crate::features::FeatureConfig;

/// The file's first bytes.
const MAGIC: &[u8; 8] = b"LTMCLASS";
/// The file format's version.
const VERSION: u32 = 1;

/// How labels compete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// One label per text: probabilities sum to one.
    Softmax,
    /// Any number of labels: one independent probability each.
    OneVsAll,
}

/// Training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Features.
    pub features: FeatureConfig,
    /// Size of the hidden vector.
    pub dim: usize,
    /// Passes over the training set.
    pub epochs: usize,
    /// Initial learning rate.
    pub lr: f32,
    /// `softmax` or `one_vs_all`.
    pub loss: Loss,
    /// Seed of the initial weights and of the order of examples.
    pub seed: u64,
    /// Store the input rows as 8-bit integers with one scale per row (4× smaller).
    pub quantize: bool,
}

impl Default for TrainConfig {
    /// 25 epochs at a learning rate of 1.0 (fastText's advice for small supervised sets): 5 at
    /// 0.5 left a few hundred examples predicted as one label (`scripts/classifier_defaults.py`).
    fn default() -> Self {
        Self {
            features: FeatureConfig::default(),
            dim: 16,
            epochs: 25,
            lr: 1.0,
            loss: Loss::Softmax,
            seed: 1,
            quantize: true,
        }
    }
}

/// A labelled text.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The text.
    pub text: String,
    /// Its labels (one for softmax).
    pub labels: Vec<String>,
}

/// What the model file says of itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The labels, in output order.
    pub labels: Vec<String>,
    /// The settings it was trained with.
    pub config: TrainConfig,
    /// Training examples.
    pub examples: usize,
    /// Free text: sources and licences of the training data, for the model's card.
    pub card: String,
}

/// A trained classifier.
#[derive(Debug, Clone)]
pub struct Classifier {
    header: Header,
    /// Row of each bucket plus one (0: the bucket was never seen).
    index: Vec<u32>,
    /// The input rows that training touched, `dim` values each.
    rows: Rows,
    /// The output matrix, `labels × dim`.
    output: Vec<f32>,
}

/// The input rows, as the model file holds them: floats, or 8-bit integers with a scale per
/// row (4× less memory for the lookups of every feature to miss in the caches).
#[derive(Debug, Clone)]
enum Rows {
    F32(Vec<f32>),
    /// Per row, its scale (`f32`, little-endian) and then its `dim` values (`i8`): one place
    /// in memory to fetch per feature.
    Q8(Vec<u8>),
}

impl Rows {
    /// Rows rounded to 8 bits: the model in memory holds what its file holds, and predicts as
    /// the one read back.
    fn quantized(rows: &[f32], dim: usize) -> Self {
        let mut packed = Vec::with_capacity(rows.len() / dim * (dim + 4));
        for row in rows.chunks_exact(dim) {
            let (scale, q) = quantize(row);
            packed.extend_from_slice(&scale.to_le_bytes());
            packed.extend(q.iter().map(|v| v.cast_unsigned()));
        }
        Self::Q8(packed)
    }

    /// Row `row` of 8-bit rows as stored: its scale's 4 bytes, then its values.
    fn q8_record(packed: &[u8], row: usize, dim: usize) -> &[u8] {
        &packed[row * (dim + 4)..(row + 1) * (dim + 4)]
    }

    /// Row `row` of 8-bit rows: its scale and values.
    fn q8_row(packed: &[u8], row: usize, dim: usize) -> (f32, &[u8]) {
        let (scale, values) = Self::q8_record(packed, row, dim).split_at(4);
        (
            f32::from_le_bytes(scale.try_into().expect("4 bytes")),
            values,
        )
    }

    /// Adds row `row` (from 0) to `acc`, from column `start` on for `acc.len()` columns.
    #[allow(
        clippy::inline_always,
        reason = "pulp applies the CPU features only to code inlined into its dispatch"
    )]
    #[inline(always)]
    fn add_to(&self, row: usize, dim: usize, start: usize, acc: &mut [f32]) {
        let width = acc.len();
        match self {
            Self::F32(rows) => {
                let at = row * dim + start;
                acc.iter_mut()
                    .zip(&rows[at..at + width])
                    .for_each(|(h, r)| *h += r);
            }
            Self::Q8(packed) => {
                let (scale, values) = Self::q8_row(packed, row, dim);
                acc.iter_mut()
                    .zip(&values[start..start + width])
                    .for_each(|(h, q)| *h += f32::from(q.cast_signed()) * scale);
            }
        }
    }
}

/// Columns of the hidden vector summed at a time, in registers.
const LANES: usize = 16;

/// `hidden = Σ rows[known]`, 16 columns at a time in registers (each column adds its rows in
/// feature order, whatever the width), compiled for the widest SIMD the CPU has.
struct SumRows<'a> {
    rows: &'a Rows,
    known: &'a [usize],
    dim: usize,
    hidden: &'a mut [f32],
}

impl pulp::WithSimd for SumRows<'_> {
    type Output = ();

    #[allow(
        clippy::inline_always,
        reason = "pulp applies the CPU features only to code inlined into its dispatch"
    )]
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for (c, out) in self.hidden.chunks_mut(LANES).enumerate() {
            let mut acc = [0.0f32; LANES];
            if out.len() == LANES {
                // A constant width: the sum stays in registers.
                for &row in self.known {
                    self.rows.add_to(row, self.dim, c * LANES, &mut acc);
                }
            } else {
                for &row in self.known {
                    self.rows
                        .add_to(row, self.dim, c * LANES, &mut acc[..out.len()]);
                }
            }
            out.copy_from_slice(&acc[..out.len()]);
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Softmax of `scores`, in place.
fn softmax(scores: &mut [f32]) {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    for s in scores.iter_mut() {
        *s /= sum;
    }
}

/// The weights being trained, and the buffers of one update.
struct Sgd {
    dim: usize,
    loss: Loss,
    input: Vec<f32>,
    output: Vec<f32>,
    /// Buckets some example used: the rows the model keeps.
    used: Vec<bool>,
    hidden: Vec<f32>,
    grad: Vec<f32>,
    scores: Vec<f32>,
}

impl Sgd {
    /// One example: forward, loss gradient, and the updates of the output and input rows.
    fn update(&mut self, features: &[u32], targets: &[usize], lr: f32) {
        let dim = self.dim;
        if features.is_empty() || targets.is_empty() {
            return;
        }
        self.hidden.fill(0.0);
        for &f in features {
            let row = &self.input[f as usize * dim..(f as usize + 1) * dim];
            self.hidden.iter_mut().zip(row).for_each(|(h, r)| *h += r);
            self.used[f as usize] = true;
        }
        let n = features.len() as f32;
        self.hidden.iter_mut().for_each(|h| *h /= n);
        for (j, s) in self.scores.iter_mut().enumerate() {
            *s = dot(&self.output[j * dim..(j + 1) * dim], &self.hidden);
        }
        self.grad.fill(0.0);
        match self.loss {
            Loss::Softmax => softmax(&mut self.scores),
            Loss::OneVsAll => self.scores.iter_mut().for_each(|s| *s = sigmoid(*s)),
        }
        for (j, &p) in self.scores.iter().enumerate() {
            let target = match (targets.contains(&j), self.loss) {
                (false, _) => 0.0,
                (true, Loss::Softmax) => 1.0 / targets.len() as f32,
                (true, Loss::OneVsAll) => 1.0,
            };
            let g = lr * (target - p);
            let out = &mut self.output[j * dim..(j + 1) * dim];
            for ((grad, o), h) in self.grad.iter_mut().zip(out).zip(&self.hidden) {
                *grad += g * *o;
                *o += g * h;
            }
        }
        self.grad.iter_mut().for_each(|g| *g /= n);
        for &f in features {
            let row = &mut self.input[f as usize * dim..(f as usize + 1) * dim];
            row.iter_mut().zip(&self.grad).for_each(|(r, g)| *r += g);
        }
    }
}

impl Classifier {
    /// Trains on `examples`; `card` describes the training data for the model file.
    pub fn train(
        examples: &[Example],
        config: &TrainConfig,
        card: &str,
    ) -> Result<Self, ClassifyError> {
        if examples.is_empty() {
            return Err(ClassifyError::Data("no training examples".into()));
        }
        if config.dim == 0 || config.epochs == 0 || config.features.buckets == 0 {
            return Err(ClassifyError::Data(
                "`dim`, `epochs` and `buckets` must be at least 1".into(),
            ));
        }
        if config.features.buckets as usize > MAX_BUCKETS {
            return Err(ClassifyError::Data(format!(
                "`buckets` must be at most {MAX_BUCKETS}"
            )));
        }
        let labels: Vec<String> = examples
            .iter()
            .flat_map(|e| e.labels.iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if labels.len() < 2 {
            return Err(ClassifyError::Data(format!(
                "training needs two labels or more; found {labels:?}"
            )));
        }
        let dim = config.dim;
        let buckets = config.features.buckets as usize;
        let mut rng = Rng::new(config.seed);
        let bound = 1.0 / dim as f32;
        let input: Vec<f32> = (0..buckets * dim)
            .map(|_| (rng.unit_f32() * 2.0 - 1.0) * bound)
            .collect();
        let output = vec![0.0f32; labels.len() * dim];
        let prepared: Vec<(Vec<u32>, Vec<usize>)> = examples
            .iter()
            .map(|e| {
                let mut f = Vec::new();
                config.features.features(&e.text, &mut f);
                let y = e
                    .labels
                    .iter()
                    .map(|l| labels.binary_search(l).expect("a known label"))
                    .collect();
                (f, y)
            })
            .collect();
        let mut sgd = Sgd {
            dim,
            loss: config.loss,
            input,
            output,
            used: vec![false; buckets],
            hidden: vec![0.0; dim],
            grad: vec![0.0; dim],
            scores: vec![0.0; labels.len()],
        };
        let total = (config.epochs * prepared.len()) as f32;
        let mut order: Vec<usize> = (0..prepared.len()).collect();
        let mut step = 0usize;
        for _ in 0..config.epochs {
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            for &e in &order {
                let (features, targets) = &prepared[e];
                let lr = config.lr * (1.0 - step as f32 / total);
                step += 1;
                sgd.update(features, targets, lr);
            }
        }
        let Sgd {
            input,
            output,
            used,
            ..
        } = sgd;
        let mut index = vec![0u32; buckets];
        let mut rows = Vec::new();
        for (b, _) in used.iter().enumerate().filter(|(_, u)| **u) {
            rows.extend_from_slice(&input[b * dim..(b + 1) * dim]);
            index[b] = (rows.len() / dim) as u32;
        }
        let rows = if config.quantize {
            Rows::quantized(&rows, dim)
        } else {
            Rows::F32(rows)
        };
        Ok(Self {
            header: Header {
                labels,
                config: config.clone(),
                examples: examples.len(),
                card: card.to_owned(),
            },
            index,
            rows,
            output,
        })
    }

    /// The header: labels, settings, data card.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The labels, in output order.
    pub fn labels(&self) -> &[String] {
        &self.header.labels
    }

    /// Probability of every label for `text`, in label order; `None` when the text has no
    /// feature the model knows.
    pub fn probabilities(&self, text: &str) -> Option<Vec<f32>> {
        let dim = self.header.config.dim;
        let mut features = Vec::new();
        self.header.config.features.features(text, &mut features);
        // The rows of the known features, then their sum.
        let known: Vec<usize> = features
            .iter()
            .filter_map(|&f| match self.index[f as usize] {
                0 => None,
                row => Some(row as usize - 1),
            })
            .collect();
        if known.is_empty() {
            return None;
        }
        let mut hidden = vec![0.0f32; dim];
        pulp::Arch::new().dispatch(SumRows {
            rows: &self.rows,
            known: &known,
            dim,
            hidden: &mut hidden,
        });
        for h in &mut hidden {
            *h /= known.len() as f32;
        }
        let mut scores: Vec<f32> = self
            .output
            .chunks_exact(dim)
            .map(|w| dot(w, &hidden))
            .collect();
        match self.header.config.loss {
            Loss::Softmax => softmax(&mut scores),
            Loss::OneVsAll => scores.iter_mut().for_each(|s| *s = sigmoid(*s)),
        }
        Some(scores)
    }

    /// The `k` most probable labels with their probabilities, best first.
    pub fn predict(&self, text: &str, k: usize) -> Vec<(&str, f32)> {
        let Some(probs) = self.probabilities(text) else {
            return Vec::new();
        };
        let mut ranked: Vec<(usize, f32)> = probs.into_iter().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
            .into_iter()
            .take(k)
            .map(|(i, p)| (self.header.labels[i].as_str(), p))
            .collect()
    }

    /// Writes the model: magic, version, header (JSON), rows, output.
    pub fn write(&self, out: &mut impl Write) -> Result<(), ClassifyError> {
        let dim = self.header.config.dim;
        let header = serde_json::to_vec(&self.header).expect("plain data");
        out.write_all(MAGIC)?;
        out.write_all(&VERSION.to_le_bytes())?;
        out.write_all(&(header.len() as u32).to_le_bytes())?;
        out.write_all(&header)?;
        let used: Vec<(u32, u32)> = self
            .index
            .iter()
            .enumerate()
            .filter(|(_, r)| **r > 0)
            .map(|(b, r)| (b as u32, *r))
            .collect();
        out.write_all(&(used.len() as u32).to_le_bytes())?;
        for &(bucket, row) in &used {
            out.write_all(&bucket.to_le_bytes())?;
            let row = row as usize - 1;
            match &self.rows {
                Rows::Q8(packed) => out.write_all(Rows::q8_record(packed, row, dim))?,
                Rows::F32(rows) => {
                    for v in &rows[row * dim..(row + 1) * dim] {
                        out.write_all(&v.to_le_bytes())?;
                    }
                }
            }
        }
        for v in &self.output {
            out.write_all(&v.to_le_bytes())?;
        }
        Ok(())
    }

    /// The model as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out).expect("writing into memory");
        out
    }

    /// Reads a model written by [`Classifier::write`] from the rest of `input`.
    pub fn read(input: &mut impl Read) -> Result<Self, ClassifyError> {
        let mut bytes = Vec::new();
        input.read_to_end(&mut bytes)?;
        Self::from_bytes(&bytes)
    }

    /// Reads a model from bytes, every size in its header checked against their number before
    /// anything is allocated for it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ClassifyError> {
        let bad = |what: &str| ClassifyError::Format(what.to_owned());
        let mut input = Bytes(bytes);
        let magic = input.take(8).map_err(|_| bad("too short to be a model"))?;
        if magic != MAGIC {
            return Err(bad(
                "not a latam classifier model (it does not start with LTMCLASS)",
            ));
        }
        let version = input.u32()?;
        if version != VERSION {
            return Err(ClassifyError::Format(format!(
                "model format version {version}; this tool reads version {VERSION}"
            )));
        }
        let len = input.u32()? as usize;
        let header: Header =
            serde_json::from_slice(input.take(len)?).map_err(|e| bad(&format!("header: {e}")))?;
        let dim = header.config.dim;
        let buckets = header.config.features.buckets as usize;
        if dim == 0 || header.labels.len() < 2 || buckets == 0 {
            return Err(bad("header: no dimension, buckets or labels"));
        }
        if buckets > MAX_BUCKETS {
            return Err(ClassifyError::Format(format!(
                "header: {buckets} buckets (at most {MAX_BUCKETS})"
            )));
        }
        let used = input.u32()? as usize;
        if used > buckets {
            return Err(bad("more rows than buckets"));
        }
        let quantize = header.config.quantize;
        // A row: its bucket (4 bytes), then a scale (4) and `dim` bytes, or `dim` floats.
        let row_bytes = if quantize {
            dim.checked_add(8)
        } else {
            dim.checked_mul(4).and_then(|b| b.checked_add(4))
        };
        let need = row_bytes
            .and_then(|r| r.checked_mul(used))
            .and_then(|b| b.checked_add(header.labels.len().checked_mul(dim)?.checked_mul(4)?));
        match need {
            Some(need) if need == input.0.len() => {}
            Some(need) if need < input.0.len() => {
                return Err(bad("bytes after the end of the model"));
            }
            _ => return Err(truncated()),
        }
        let mut index = vec![0u32; buckets];
        let mut rows = if quantize {
            Rows::Q8(Vec::with_capacity(used * (dim + 4)))
        } else {
            Rows::F32(Vec::with_capacity(used * dim))
        };
        for r in 0..used {
            let bucket = input.u32()? as usize;
            match index.get_mut(bucket) {
                Some(slot @ 0) => *slot = r as u32 + 1,
                Some(_) => return Err(bad("a bucket with two rows")),
                None => return Err(bad("a row outside the buckets")),
            }
            match &mut rows {
                Rows::Q8(packed) => packed.extend_from_slice(input.take(dim + 4)?),
                Rows::F32(rows) => rows.extend(input.f32s(dim)?),
            }
        }
        let output = input.f32s(header.labels.len() * dim)?;
        Ok(Self {
            header,
            index,
            rows,
            output,
        })
    }
}

/// The most hash buckets a model may have: its index holds 4 bytes per bucket (64 MiB here);
/// fastText's default is 2 million.
const MAX_BUCKETS: usize = 1 << 24;

/// What is left of a model file.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ClassifyError> {
        if n > self.0.len() {
            return Err(truncated());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, ClassifyError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f32(&mut self) -> Result<f32, ClassifyError> {
        self.u32().map(f32::from_bits)
    }

    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, ClassifyError> {
        (0..n).map(|_| self.f32()).collect()
    }
}

fn truncated() -> ClassifyError {
    ClassifyError::Format("the model file is truncated".into())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A row as 8-bit integers and the scale that brings them back.
fn quantize(row: &[f32]) -> (f32, Vec<i8>) {
    let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = if max == 0.0 { 1.0 } else { max / 127.0 };
    let q = row
        .iter()
        .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (scale, q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples() -> Vec<Example> {
        let es = [
            "el perro come carne en la casa",
            "la niña lee un libro de historia",
            "los estudiantes viajan a la ciudad",
            "mañana llueve en el sur del país",
        ];
        let pt = [
            "o cachorro come carne em casa",
            "a menina lê um livro de história",
            "os estudantes viajam para a cidade",
            "amanhã chove no sul do país",
        ];
        es.iter()
            .map(|t| ("spa", t))
            .chain(pt.iter().map(|t| ("por", t)))
            .map(|(l, t)| Example {
                text: (*t).to_owned(),
                labels: vec![l.to_owned()],
            })
            .collect()
    }

    fn small() -> TrainConfig {
        TrainConfig {
            features: FeatureConfig {
                buckets: 1 << 12,
                ..Default::default()
            },
            epochs: 100,
            ..Default::default()
        }
    }

    #[test]
    fn learns_and_round_trips() {
        let model = Classifier::train(&examples(), &small(), "test").unwrap();
        assert_eq!(model.predict("o livro da menina", 1)[0].0, "por");
        assert_eq!(model.predict("el libro de la niña", 1)[0].0, "spa");
        let bytes = model.to_bytes();
        let back = Classifier::from_bytes(&bytes).unwrap();
        for e in examples() {
            assert_eq!(model.probabilities(&e.text), back.probabilities(&e.text));
        }
        assert_eq!(
            back.to_bytes(),
            bytes,
            "read back, the model writes the same bytes"
        );
        assert_eq!(back.header().card, "test");
        assert!(model.predict("", 1).is_empty());
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        let a = Classifier::train(&examples(), &small(), "")
            .unwrap()
            .to_bytes();
        let b = Classifier::train(&examples(), &small(), "")
            .unwrap()
            .to_bytes();
        assert_eq!(a, b);
        let other = TrainConfig { seed: 2, ..small() };
        let c = Classifier::train(&examples(), &other, "")
            .unwrap()
            .to_bytes();
        assert_ne!(a, c);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let bytes = Classifier::train(&examples(), &small(), "")
            .unwrap()
            .to_bytes();
        let err = |b: &[u8]| Classifier::from_bytes(b).unwrap_err().to_string();
        assert!(err(b"hello").contains("too short"));
        assert!(err(b"NOTMODEL12345678").contains("LTMCLASS"));
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert!(err(&v2).contains("version 2"));
        assert!(err(&bytes[..bytes.len() - 3]).contains("truncated"));
    }

    #[test]
    fn one_vs_all_gives_independent_probabilities() {
        let mut data = examples();
        data.push(Example {
            text: "el cachorro y el perro".into(),
            labels: vec!["spa".into(), "por".into()],
        });
        let config = TrainConfig {
            loss: Loss::OneVsAll,
            epochs: 200,
            lr: 1.0,
            ..small()
        };
        let model = Classifier::train(&data, &config, "").unwrap();
        // Labels in order: por, spa.
        let p = model
            .probabilities("os estudantes viajam para a cidade")
            .unwrap();
        assert!(p[0] > 0.5 && p[1] < 0.5, "{p:?}");
        let both = model.probabilities("el cachorro y el perro").unwrap();
        assert!(both[0] > 0.5 && both[1] > 0.5, "{both:?}");
    }
}
