//! `dedup_minhash`: near-duplicate documents by MinHash-LSH, as FineWeb/datatrove do it,
//! staged so that a cluster can run each stage as many tasks:
//!
//! ```text
//! signatures (task per input slice) ─► bands/band-BBB/task-TTTTT.bin  sorted (band key, position)
//!                                      sigs/task-TTTTT.sig, .ids      signatures and ids
//! buckets    (task per band)        ─► pairs/band-BBB.bin             candidate pairs
//! cluster    (one task)             ─► clusters.jsonl                 who is kept, who goes
//! filter     (task per input slice) ─► the documents, less the duplicates
//! ```
//!
//! A document's signature is the minimum, under `bands × rows` random bijections of 64-bit
//! values, of the hashes of its word n-grams ([`shingles`]). Two documents whose signatures agree
//! on all `rows` values of some band are a candidate pair; with `verify` the pair counts only if
//! the signatures agree on at least `threshold` of all values (the estimated Jaccard
//! similarity). Pairs join clusters (union-find); each cluster keeps its document first in corpus
//! order and rejects the others, with the id of the document kept and the estimated similarity.

mod eval;
pub(crate) mod shingles;
mod stages;
mod step;

use latam_core::Rng;
use serde::{Deserialize, Serialize};

use crate::DedupError;

pub use eval::{AtThreshold, ByEdit, Edit, EvalReport, evaluate};
pub use shingles::{shingle_hashes, word_hashes};
pub use stages::{ClusterSummary, Decision, Decisions, Params, SignatureWriter, buckets, cluster};
pub use step::{DedupMinhash, SignatureTask};

/// Settings of the `dedup_minhash` step. The defaults are FineWeb's (datatrove): 5-gram
/// shingles, 14 bands of 8 rows (112 hashes of 64 bits), seed 1; a pair of Jaccard
/// similarity 0.8 becomes a candidate with probability 1 − (1 − 0.8⁸)¹⁴ = 0.92, one of 0.5
/// with probability 0.05.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupMinhashConfig {
    /// Words per shingle.
    pub n_grams: usize,
    /// LSH bands.
    pub bands: usize,
    /// Hashes per band.
    pub rows: usize,
    /// Seed of the hash functions (recorded; every task must use the same).
    pub seed: u64,
    /// Count a candidate pair only if its estimated Jaccard similarity reaches `threshold`
    /// (datatrove does not verify: set `false` to match it).
    pub verify: bool,
    /// The estimated similarity a verified pair needs.
    pub threshold: f64,
}

impl Default for DedupMinhashConfig {
    fn default() -> Self {
        Self {
            n_grams: 5,
            bands: 14,
            rows: 8,
            seed: 1,
            verify: true,
            threshold: 0.8,
        }
    }
}

impl DedupMinhashConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), DedupError> {
        if self.n_grams == 0 || self.bands == 0 || self.rows == 0 {
            return Err(DedupError::Config(
                "`n_grams`, `bands` and `rows` must be at least 1".into(),
            ));
        }
        if self.bands * self.rows > 1024 {
            return Err(DedupError::Config(format!(
                "{} bands × {} rows = {} hashes: at most 1024",
                self.bands,
                self.rows,
                self.bands * self.rows
            )));
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(DedupError::Config(format!(
                "`threshold` {} is not in 0..1",
                self.threshold
            )));
        }
        Ok(())
    }

    /// The hasher of these settings.
    pub fn hasher(&self) -> MinHasher {
        MinHasher::new(self)
    }

    /// The step, once its settings are checked.
    pub fn build(&self) -> Result<DedupMinhash, DedupError> {
        self.validate()?;
        Ok(DedupMinhash::new(self))
    }
}

/// Computes signatures: `bands × rows` bijections `x ↦ a·x + b (mod 2⁶⁴)`, `a` odd, drawn
/// from the seed.
#[derive(Debug, Clone)]
pub struct MinHasher {
    n_grams: usize,
    rows: usize,
    seed: u64,
    a: Vec<u64>,
    b: Vec<u64>,
}

impl MinHasher {
    fn new(config: &DedupMinhashConfig) -> Self {
        let k = config.bands * config.rows;
        let mut rng = Rng::new(config.seed);
        let a = (0..k).map(|_| rng.next_u64() | 1).collect();
        let b = (0..k).map(|_| rng.next_u64()).collect();
        Self {
            n_grams: config.n_grams,
            rows: config.rows,
            seed: config.seed,
            a,
            b,
        }
    }

    /// The signature of a text; `None` when it has no word.
    pub fn signature(&self, text: &str) -> Option<Vec<u64>> {
        let mut words = Vec::with_capacity(text.len() / 5);
        word_hashes(text, &mut words);
        let mut shingles = Vec::with_capacity(words.len());
        shingle_hashes(&words, self.n_grams, self.seed, &mut shingles);
        (!shingles.is_empty()).then(|| self.signature_of_shingles(&shingles))
    }

    /// The signature of a set of shingle hashes.
    pub fn signature_of_shingles(&self, shingles: &[u64]) -> Vec<u64> {
        let mut sig = vec![u64::MAX; self.a.len()];
        pulp::Arch::new().dispatch(MinOver {
            a: &self.a,
            b: &self.b,
            shingles,
            sig: &mut sig,
        });
        sig
    }

    /// The key of band `band` of a signature: a hash of its `rows` values.
    pub fn band_key(&self, sig: &[u64], band: usize) -> u64 {
        let values = &sig[band * self.rows..(band + 1) * self.rows];
        let mut bytes = Vec::with_capacity(values.len() * 8);
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        xxhash_rust::xxh3::xxh3_64_with_seed(&bytes, band as u64)
    }

    /// Bands per signature.
    pub fn bands(&self) -> usize {
        self.a.len() / self.rows
    }
}

/// `sig[k] = min(sig[k], a[k]·x + b[k])` over the shingles `x`, compiled for the widest SIMD
/// the CPU has (AVX-512 multiplies 8 lanes of 64 bits at once), chosen at run time.
struct MinOver<'a> {
    a: &'a [u64],
    b: &'a [u64],
    shingles: &'a [u64],
    sig: &'a mut [u64],
}

impl pulp::WithSimd for MinOver<'_> {
    type Output = ();

    #[allow(
        clippy::inline_always,
        reason = "pulp applies the CPU features only to code inlined into its dispatch"
    )]
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        const LANES: usize = 8;
        // Lanes outside, shingles inside: each group of 8 stays in registers over all shingles.
        let groups = self.sig.len() / LANES * LANES;
        let (sig, sig_rest) = self.sig.split_at_mut(groups);
        for ((s, a), b) in sig
            .chunks_exact_mut(LANES)
            .zip(self.a.chunks_exact(LANES))
            .zip(self.b.chunks_exact(LANES))
        {
            let mut acc = [0u64; LANES];
            acc.copy_from_slice(s);
            let (mut av, mut bv) = ([0u64; LANES], [0u64; LANES]);
            av.copy_from_slice(a);
            bv.copy_from_slice(b);
            for &x in self.shingles {
                for i in 0..LANES {
                    acc[i] = acc[i].min(av[i].wrapping_mul(x).wrapping_add(bv[i]));
                }
            }
            s.copy_from_slice(&acc);
        }
        for ((s, a), b) in sig_rest
            .iter_mut()
            .zip(&self.a[groups..])
            .zip(&self.b[groups..])
        {
            for &x in self.shingles {
                *s = (*s).min(a.wrapping_mul(x).wrapping_add(*b));
            }
        }
    }
}

/// The estimated Jaccard similarity of two signatures: the share of equal values.
pub fn similarity<T: PartialEq>(a: &[T], b: &[T]) -> f64 {
    let equal = a.iter().zip(b).filter(|(x, y)| x == y).count();
    equal as f64 / a.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_jaccard() {
        let hasher = DedupMinhashConfig {
            bands: 32,
            rows: 8,
            ..Default::default()
        }
        .hasher();
        // Two sets of 1,000 shingle hashes sharing 600: Jaccard 600 / 1400 = 0.43.
        let shingle = |i: u64| xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes());
        let a: Vec<u64> = (0..1000).map(shingle).collect();
        let b: Vec<u64> = (400..1400).map(shingle).collect();
        let s = similarity(
            &hasher.signature_of_shingles(&a),
            &hasher.signature_of_shingles(&b),
        );
        assert!((s - 600.0 / 1400.0).abs() < 0.08, "estimate {s}");
    }

    #[test]
    fn simd_signature_equals_the_definition() {
        // 15 hashes: one group of 8 lanes and 7 left over.
        for (bands, rows) in [(14, 8), (3, 5)] {
            let hasher = DedupMinhashConfig {
                bands,
                rows,
                ..Default::default()
            }
            .hasher();
            let shingles: Vec<u64> = (0..777u64)
                .map(|i| xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()))
                .collect();
            let expected: Vec<u64> = (0..bands * rows)
                .map(|k| {
                    shingles
                        .iter()
                        .map(|&x| hasher.a[k].wrapping_mul(x).wrapping_add(hasher.b[k]))
                        .min()
                        .unwrap()
                })
                .collect();
            assert_eq!(hasher.signature_of_shingles(&shingles), expected);
        }
    }

    #[test]
    fn same_text_same_signature_and_bands() {
        let hasher = DedupMinhashConfig::default().hasher();
        let a = hasher
            .signature("La ley 27.275 de acceso a la información pública.")
            .unwrap();
        let b = hasher
            .signature("la LEY 27275 de acceso a la informacion publica")
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(hasher.band_key(&a, 3), hasher.band_key(&b, 3));
        assert_ne!(hasher.band_key(&a, 3), hasher.band_key(&a, 4));
        assert!(hasher.signature(" ¿? ").is_none());
    }
}
