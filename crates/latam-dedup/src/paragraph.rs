//! `dedup_paragraph`: lines (paragraphs) already seen in `max_copies` earlier documents are
//! removed, as dolma and CCNet remove boilerplate, navigation text and repeated disclaimers;
//! documents left too short are rejected. The memory is an exact set of line hashes, or a
//! Bloom filter of fixed size whose false-positive rate is reported.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use latam_core::{CorpusStep, Document, Position, StepError, Verdict};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use xxhash_rust::xxh3::xxh3_64;

use crate::DedupError;
use crate::error::{at, corrupt};

/// How lines seen are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineMemory {
    /// A hash map of 64-bit line hashes and their counts (about 32 bytes a distinct line).
    Exact,
    /// A Bloom filter of `bloom_mb` megabytes: bounded memory, a few false "seen" answers.
    Bloom,
}

/// Settings of the `dedup_paragraph` step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupParagraphConfig {
    /// A line is removed from a document once this many earlier documents held it (the first
    /// `max_copies` copies stay). `bloom` remembers only "seen": it needs 1.
    pub max_copies: u32,
    /// Lines with fewer characters (after trimming) are never removed.
    pub min_line_chars: usize,
    /// Documents left with fewer characters are rejected (`too_short_after_dedup`).
    pub min_doc_chars: usize,
    /// Compare lines lowercased, with runs of whitespace as one space.
    pub normalize: bool,
    /// `exact` or `bloom`.
    pub memory: LineMemory,
    /// Size of the Bloom filter in MB (10^6 bytes).
    pub bloom_mb: u64,
    /// Distinct lines expected, to choose the Bloom filter's number of hashes.
    pub expected_lines: u64,
}

impl Default for DedupParagraphConfig {
    fn default() -> Self {
        Self {
            max_copies: 1,
            min_line_chars: 40,
            min_doc_chars: 200,
            normalize: true,
            memory: LineMemory::Exact,
            bloom_mb: 1024,
            expected_lines: 1_000_000_000,
        }
    }
}

impl DedupParagraphConfig {
    /// Checks the settings and builds the step.
    pub fn build(&self) -> Result<DedupParagraph, DedupError> {
        let invalid = |message: &str| Err(DedupError::Config(message.to_owned()));
        if self.max_copies == 0 {
            return invalid("`max_copies` must be at least 1");
        }
        if self.memory == LineMemory::Bloom {
            if self.max_copies != 1 {
                return invalid(
                    "`memory = \"bloom\"` remembers only whether a line was seen: set \
                     `max_copies = 1`, or use `memory = \"exact\"`",
                );
            }
            if self.bloom_mb == 0 || self.expected_lines == 0 {
                return invalid("`bloom_mb` and `expected_lines` must be at least 1");
            }
        }
        Ok(DedupParagraph {
            config: self.clone(),
            seen: Seen::new(self),
            drops: FxHashMap::default(),
            summary: ParagraphSummary::default(),
            dir: PathBuf::new(),
        })
    }
}

/// A Bloom filter over 64-bit hashes, with `k` probes by double hashing.
pub struct Bloom {
    bits: Vec<u64>,
    hashes: u32,
}

impl Bloom {
    /// A filter of `bytes` bytes sized for `expected` items: `k = ln 2 · m / n` probes.
    pub fn new(bytes: u64, expected: u64) -> Self {
        let words = (bytes / 8).max(1);
        let m = (words * 64) as f64;
        let hashes = ((m / expected as f64) * std::f64::consts::LN_2)
            .round()
            .clamp(1.0, 32.0) as u32;
        Self {
            bits: vec![0; words as usize],
            hashes,
        }
    }

    /// Probes per item.
    pub fn hashes(&self) -> u32 {
        self.hashes
    }

    /// Size in bits.
    pub fn bit_len(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    /// The false-positive rate after `items` insertions: `(1 − e^(−k·n/m))^k`.
    pub fn false_positive_rate(&self, items: u64) -> f64 {
        let k = f64::from(self.hashes);
        (1.0 - (-k * items as f64 / self.bit_len() as f64).exp()).powf(k)
    }

    /// The bits of `hash`: word index and mask of each probe.
    fn probes(&self, hash: u64) -> impl Iterator<Item = (usize, u64)> + use<> {
        let m = self.bit_len();
        let step = hash.rotate_left(32).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..u64::from(self.hashes)).map(move |i| {
            let bit = hash.wrapping_add(i.wrapping_mul(step)) % m;
            ((bit / 64) as usize, 1u64 << (bit % 64))
        })
    }

    /// Whether `hash` was (probably) inserted.
    pub fn contains(&self, hash: u64) -> bool {
        self.probes(hash).all(|(w, mask)| self.bits[w] & mask != 0)
    }

    /// Inserts `hash`; returns whether it was (probably) there already.
    pub fn insert(&mut self, hash: u64) -> bool {
        let mut present = true;
        for (w, mask) in self.probes(hash) {
            present &= self.bits[w] & mask != 0;
            self.bits[w] |= mask;
        }
        present
    }
}

/// What the step remembers of the lines seen.
enum Seen {
    Exact(FxHashMap<u64, u32>),
    Bloom(Bloom),
}

impl Seen {
    fn new(config: &DedupParagraphConfig) -> Self {
        match config.memory {
            LineMemory::Exact => Self::Exact(FxHashMap::default()),
            LineMemory::Bloom => Self::Bloom(Bloom::new(
                config.bloom_mb * 1_000_000,
                config.expected_lines,
            )),
        }
    }

    /// Counts one more document holding the line; returns the documents that held it before.
    fn count(&mut self, hash: u64) -> u32 {
        match self {
            Self::Exact(map) => {
                let n = map.entry(hash).or_default();
                *n = n.saturating_add(1);
                *n - 1
            }
            Self::Bloom(bloom) => u32::from(bloom.insert(hash)),
        }
    }
}

/// What the scan found, saved as `paragraphs.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ParagraphSummary {
    /// Lines looked at (not blank, not too short).
    pub lines: u64,
    /// Lines to remove.
    pub lines_removed: u64,
    /// Documents losing lines.
    pub documents_changed: u64,
    /// With a Bloom filter: its bits, probes and estimated false-positive rate at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bloom: Option<BloomSummary>,
}

/// The Bloom filter of a scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BloomSummary {
    /// Bits.
    pub bits: u64,
    /// Probes per line.
    pub hashes: u32,
    /// Estimated probability that a new line was taken for one seen, at the end of the scan.
    pub false_positive_rate: f64,
}

/// The `dedup_paragraph` step.
pub struct DedupParagraph {
    config: DedupParagraphConfig,
    seen: Seen,
    /// Indices of the lines each changed document loses.
    drops: FxHashMap<Position, Vec<u32>>,
    summary: ParagraphSummary,
    dir: PathBuf,
}

/// The value of a line that is never removed (blank or short).
const SKIP: u64 = 0;

impl DedupParagraph {
    /// The hash of each line of `text` (split at `\n`), or [`SKIP`].
    pub fn line_hashes(&self, text: &str) -> Vec<u64> {
        let mut buf = String::new();
        text.split('\n')
            .map(|line| {
                let line = line.trim();
                if line.chars().take(self.config.min_line_chars).count()
                    < self.config.min_line_chars
                    || line.is_empty()
                {
                    return SKIP;
                }
                let h = if self.config.normalize {
                    buf.clear();
                    for (i, word) in line.split_whitespace().enumerate() {
                        if i > 0 {
                            buf.push(' ');
                        }
                        buf.push_str(word);
                    }
                    buf.make_ascii_lowercase();
                    if !buf.is_ascii() {
                        buf = buf.to_lowercase();
                    }
                    xxh3_64(buf.as_bytes())
                } else {
                    xxh3_64(line.as_bytes())
                };
                h.max(1)
            })
            .collect()
    }

    /// What the scan found.
    pub fn summary(&self) -> &ParagraphSummary {
        &self.summary
    }

    fn plan_path(&self) -> PathBuf {
        self.dir.join("paragraphs.jsonl")
    }
}

impl CorpusStep for DedupParagraph {
    fn open(&mut self, dir: &Path) -> Result<bool, StepError> {
        dir.clone_into(&mut self.dir);
        std::fs::create_dir_all(dir).map_err(at(dir))?;
        let path = self.plan_path();
        if !path.exists() {
            return Ok(false);
        }
        let file = std::io::BufReader::new(std::fs::File::open(&path).map_err(at(&path))?);
        for (n, line) in file.lines().enumerate() {
            let line = line.map_err(at(&path))?;
            let (pos, lines): (Position, Vec<u32>) = serde_json::from_str(&line)
                .map_err(|e| corrupt(&path, format!("line {}: {e}", n + 1)))?;
            self.drops.insert(pos, lines);
        }
        Ok(true)
    }

    fn sketch(&self, doc: &Document) -> Vec<u64> {
        self.line_hashes(&doc.text)
    }

    fn observe(&mut self, at: Position, _id: &str, sketch: Vec<u64>) -> Result<(), StepError> {
        let mut dropped = Vec::new();
        for (i, &hash) in sketch.iter().enumerate() {
            if hash == SKIP {
                continue;
            }
            self.summary.lines += 1;
            if self.seen.count(hash) >= self.config.max_copies {
                dropped.push(i as u32);
            }
        }
        if !dropped.is_empty() {
            self.summary.lines_removed += dropped.len() as u64;
            self.summary.documents_changed += 1;
            self.drops.insert(at, dropped);
        }
        Ok(())
    }

    fn plan(&mut self) -> Result<(), StepError> {
        if let Seen::Bloom(bloom) = &self.seen {
            let summary = BloomSummary {
                bits: bloom.bit_len(),
                hashes: bloom.hashes(),
                false_positive_rate: bloom.false_positive_rate(self.summary.lines),
            };
            tracing::info!(
                "dedup_paragraph: Bloom filter of {} bits, {} probes; estimated false-positive \
                 rate {:.2e}",
                summary.bits,
                summary.hashes,
                summary.false_positive_rate
            );
            self.summary.bloom = Some(summary);
        }
        self.seen = Seen::new(&self.config);
        let mut positions: Vec<&Position> = self.drops.keys().collect();
        positions.sort_unstable();
        let path = self.plan_path();
        let mut out = latam_io::AtomicFile::create(&path).map_err(DedupError::from)?;
        for pos in positions {
            serde_json::to_writer(&mut out, &(pos, &self.drops[pos]))
                .map_err(|e| at(&path)(e.into()))?;
            out.write_all(b"\n").map_err(at(&path))?;
        }
        let json = serde_json::to_vec_pretty(&self.summary).expect("plain data");
        latam_io::write_atomic(&self.dir.join("paragraphs.json"), &json)
            .map_err(DedupError::from)?;
        // The plan file last: it marks the scan finished.
        Ok(out.commit().map_err(DedupError::from)?)
    }

    fn apply(&self, doc: &mut Document, at: Position) -> Verdict {
        let Some(drops) = self.drops.get(&at) else {
            return Verdict::Keep;
        };
        let mut text = String::with_capacity(doc.text.len());
        let mut next = drops.iter().peekable();
        for (i, line) in doc.text.split('\n').enumerate() {
            if next.peek().is_some_and(|&&d| d as usize == i) {
                next.next();
                continue;
            }
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(line);
        }
        doc.text = text;
        doc.metadata
            .insert("dup_lines_removed".into(), Value::from(drops.len()));
        if doc.text.trim().chars().count() < self.config.min_doc_chars {
            Verdict::reject("too_short_after_dedup")
        } else {
            Verdict::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(config: &DedupParagraphConfig, texts: &[&str]) -> Vec<(Verdict, String)> {
        let mut step = config.build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        assert!(!step.open(dir.path()).unwrap());
        for (i, t) in texts.iter().enumerate() {
            let sketch = step.sketch(&Document::new("", *t));
            step.observe(i as u64, "", sketch).unwrap();
        }
        step.plan().unwrap();
        // A resumed run loads the same plan.
        let mut reloaded = config.build().unwrap();
        assert!(reloaded.open(dir.path()).unwrap());
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut doc = Document::new("", *t);
                let verdict = reloaded.apply(&mut doc, i as u64);
                (verdict, doc.text)
            })
            .collect()
    }

    #[test]
    fn later_copies_of_a_line_are_removed() {
        let config = DedupParagraphConfig {
            min_doc_chars: 5,
            min_line_chars: 10,
            ..Default::default()
        };
        let out = run(
            &config,
            &[
                "Noticia uno.\nSuscríbase al boletín",
                "Noticia dos.\n  SUSCRÍBASE   al boletín \n\nFin",
                "suscríbase al boletín",
            ],
        );
        assert_eq!(
            out[0],
            (Verdict::Keep, "Noticia uno.\nSuscríbase al boletín".into())
        );
        assert_eq!(out[1], (Verdict::Keep, "Noticia dos.\n\nFin".into()));
        assert_eq!(out[2].0, Verdict::reject("too_short_after_dedup"));
    }

    #[test]
    fn max_copies_and_bloom() {
        let texts = ["aviso legal\nuno", "aviso legal\ndos", "aviso legal\ntres"];
        let two = DedupParagraphConfig {
            max_copies: 2,
            min_doc_chars: 1,
            min_line_chars: 1,
            ..Default::default()
        };
        let kept: Vec<_> = run(&two, &texts).into_iter().map(|(_, t)| t).collect();
        assert_eq!(kept, ["aviso legal\nuno", "aviso legal\ndos", "tres"]);
        let bloom = DedupParagraphConfig {
            memory: LineMemory::Bloom,
            bloom_mb: 1,
            expected_lines: 1000,
            min_doc_chars: 1,
            min_line_chars: 1,
            ..Default::default()
        };
        let kept: Vec<_> = run(&bloom, &texts).into_iter().map(|(_, t)| t).collect();
        assert_eq!(kept, ["aviso legal\nuno", "dos", "tres"]);
        assert!(
            DedupParagraphConfig {
                max_copies: 2,
                ..bloom
            }
            .build()
            .is_err()
        );
    }

    #[test]
    fn bloom_false_positive_rate_is_as_stated() {
        let mut bloom = Bloom::new(12_500, 10_000); // 100,000 bits for 10,000 items: k = 7
        assert_eq!(bloom.hashes(), 7);
        for i in 0..10_000u64 {
            assert!(!bloom.contains(xxh3_64(&i.to_le_bytes())) || i > 0);
            bloom.insert(xxh3_64(&i.to_le_bytes()));
        }
        assert!((0..10_000u64).all(|i| bloom.contains(xxh3_64(&i.to_le_bytes()))));
        let stated = bloom.false_positive_rate(10_000);
        let probes = 200_000u64;
        let hits = (1_000_000..1_000_000 + probes)
            .filter(|i| bloom.contains(xxh3_64(&i.to_le_bytes())))
            .count();
        let measured = hits as f64 / probes as f64;
        assert!(
            (measured - stated).abs() < stated * 0.2,
            "{measured} vs {stated}"
        );
    }
}
