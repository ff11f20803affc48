//! `latam corpus mix`: a training mix by any metadata key (language, country, topic, source)
//! under a token budget. Target shares come from `weights` (or, without weights, UniMax: the
//! budget spread evenly, no group repeated more than `max_epochs` times, what a small group
//! cannot take going to the others). Down-sampling keeps a document when a hash of the seed and
//! its id falls under the group's fraction; up-sampling repeats documents whole epochs, then
//! the fraction; the same inputs and seed give the same mix. Outputs one JSONL per group
//! (`<out>/documents/<group>.jsonl.zst`), the
//! token table before and after, and the `--data-path` blend Megatron-LM takes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use latam_core::Document;
use latam_io::{AtomicFile, ReadOptions, RecordReader};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{TokenizeError, Tokenizer};

/// A mix file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixConfig {
    /// Metadata key of the groups (`language`, `country`, `source`, `topic`, ...).
    pub key: String,
    /// Tokens of the mix.
    pub budget_tokens: u64,
    /// Most passes over any group.
    #[serde(default = "default_epochs")]
    pub max_epochs: f64,
    /// Target shares by group (normalized); groups left out get none. Empty: UniMax.
    #[serde(default)]
    pub weights: BTreeMap<String, f64>,
    /// Seed of the sampling hash.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Prefix of the tokenized groups in the blend (`<prefix><group>_text_document`).
    #[serde(default = "default_prefix")]
    pub data_prefix: String,
}

fn default_epochs() -> f64 {
    4.0
}
fn default_seed() -> u64 {
    1
}
fn default_prefix() -> String {
    "data/".into()
}

/// One group before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRow {
    /// Documents available.
    pub documents: u64,
    /// Tokens available.
    pub tokens: u64,
    /// Its share of the budget: by weight (evenly without weights), before any cap.
    pub share_tokens: u64,
    /// Tokens targeted: the share, capped at `max_epochs` passes, plus what capped groups left.
    pub target_tokens: u64,
    /// How far the target stays below the share: the group holds too few tokens for its share
    /// even at `max_epochs` passes (or none at all).
    pub shortfall_tokens: u64,
    /// Documents in the mix (repeats counted).
    pub mixed_documents: u64,
    /// Tokens in the mix.
    pub mixed_tokens: u64,
    /// Passes over the group (mixed / available tokens).
    pub epochs: f64,
    /// Share of the mix.
    pub share: f64,
}

/// What a mix did (`mix.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MixReport {
    /// The settings.
    pub config: MixConfig,
    /// Tokens asked for (`budget_tokens`).
    pub requested_tokens: u64,
    /// Tokens in the mix.
    pub delivered_tokens: u64,
    /// Tokens of the budget the data cannot supply even at `max_epochs` passes over every
    /// group (the delivered tokens differ from the rest of the budget only by the sampling's
    /// rounding).
    pub shortfall_tokens: u64,
    /// Per group.
    pub groups: BTreeMap<String, GroupRow>,
    /// `w1 prefix1 w2 prefix2 ...` for Megatron-LM's `--data-path`.
    pub blend: String,
    /// Files written.
    pub files: Vec<String>,
    /// Records that could not be read (`file:line: why`), left out.
    pub errors: Vec<String>,
}

/// The tokens each group is to give, and what the data cannot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// Tokens targeted by group.
    pub tokens: BTreeMap<String, u64>,
    /// Tokens of the budget no group can take: every group is at `max_epochs` passes.
    pub unmet: u64,
}

/// Targets by UniMax (no weights) or by weights, each capped at `max_epochs` passes; what a
/// capped group cannot take is shared among the others, by weight.
pub fn targets(sizes: &BTreeMap<String, u64>, config: &MixConfig) -> Targets {
    let weight = |g: &str| weight(config, g);
    let mut open: Vec<&String> = sizes
        .keys()
        .filter(|g| weight(g) > 0.0 && sizes[*g] > 0)
        .collect();
    let mut out: BTreeMap<String, u64> = sizes.keys().map(|g| (g.clone(), 0)).collect();
    let mut left = config.budget_tokens as f64;
    // Water-filling: a group whose share exceeds its cap takes the cap and leaves the game.
    while !open.is_empty() && left > 0.0 {
        let total: f64 = open.iter().map(|g| weight(g)).sum();
        let capped: Vec<&String> = open
            .iter()
            .copied()
            .filter(|g| left * weight(g) / total >= config.max_epochs * sizes[*g] as f64)
            .collect();
        if capped.is_empty() {
            for g in &open {
                out.insert((*g).clone(), (left * weight(g) / total).round() as u64);
            }
            left = 0.0;
            break;
        }
        for g in capped {
            let cap = (config.max_epochs * sizes[g] as f64).floor();
            out.insert(g.clone(), cap as u64);
            left -= cap;
            open.retain(|o| *o != g);
        }
    }
    Targets {
        tokens: out,
        unmet: left.max(0.0).round() as u64,
    }
}

/// A group's weight: 1 without weights (UniMax), else its weight (0 when left out).
fn weight(config: &MixConfig, group: &str) -> f64 {
    if config.weights.is_empty() {
        1.0
    } else {
        config.weights.get(group).copied().unwrap_or(0.0).max(0.0)
    }
}

/// Each group's share of the budget before any cap: by weight, groups the weights name but
/// the data lacks included; evenly over the groups present without weights.
pub fn shares(sizes: &BTreeMap<String, u64>, config: &MixConfig) -> BTreeMap<String, u64> {
    let mut groups: Vec<&String> = sizes.keys().collect();
    groups.extend(config.weights.keys().filter(|g| !sizes.contains_key(*g)));
    let total: f64 = groups.iter().map(|g| weight(config, g)).sum();
    groups
        .into_iter()
        .map(|g| {
            let share =
                config.budget_tokens as f64 * weight(config, g) / total.max(f64::MIN_POSITIVE);
            (g.clone(), share.round() as u64)
        })
        .collect()
}

/// How many times a document goes into the mix: whole passes, then one more when its hash falls
/// under the fraction left.
fn copies(ratio: f64, seed: u64, id: &str) -> u64 {
    let whole = ratio.floor();
    let h = sample_hash(seed, id) as f64 / u64::MAX as f64;
    whole as u64 + u64::from(h < ratio - whole)
}

fn sample_hash(seed: u64, id: &str) -> u64 {
    // FNV-1a of the id, finalized by SplitMix64: stable across platforms and versions.
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in id.as_bytes() {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A document's group and token count.
struct Sized {
    doc: Document,
    group: String,
    tokens: u64,
}

/// Every document of the inputs with its group and tokens (text and end-of-document);
/// unreadable records listed as `file:line: why`.
fn read_sized(
    tokenizer: &Tokenizer,
    inputs: &[String],
    key: &str,
) -> Result<(Vec<Sized>, Vec<String>), TokenizeError> {
    let files =
        latam_io::resolve_inputs(inputs).map_err(|e| TokenizeError::Usage(e.to_string()))?;
    let options = ReadOptions::default();
    let mut errors = Vec::new();
    let mut sized = Vec::new();
    for input in &files {
        let mut reader = RecordReader::open(input, &options);
        loop {
            let batch = crate::next_batch(&mut reader, &input.name, &options.fields, &mut errors);
            if batch.is_empty() {
                break;
            }
            sized.par_extend(batch.into_par_iter().map(|doc| {
                let group = doc.meta_str(key).unwrap_or("unknown").to_owned();
                let tokens = tokenizer.encode(&doc.text).len() as u64 + 1;
                Sized { doc, group, tokens }
            }));
        }
    }
    Ok((sized, errors))
}

/// Reads the inputs, counts tokens, samples, writes `<out>/documents/<group>.jsonl.zst` and
/// `<out>/mix.json`.
pub fn mix(
    tokenizer: &Tokenizer,
    inputs: &[String],
    config: &MixConfig,
    out: &Path,
) -> Result<MixReport, TokenizeError> {
    let (docs, errors) = read_sized(tokenizer, inputs, &config.key)?;
    let mut sizes: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for s in &docs {
        let e = sizes.entry(s.group.clone()).or_default();
        e.0 += 1;
        e.1 += s.tokens;
    }
    let token_sizes: BTreeMap<String, u64> =
        sizes.iter().map(|(g, (_, t))| (g.clone(), *t)).collect();
    let goal = targets(&token_sizes, config);
    let mut groups: BTreeMap<String, GroupRow> = shares(&token_sizes, config)
        .into_iter()
        .map(|(g, share)| {
            let (documents, tokens) = sizes.get(&g).copied().unwrap_or_default();
            let target = goal.tokens.get(&g).copied().unwrap_or_default();
            let row = GroupRow {
                documents,
                tokens,
                share_tokens: share,
                target_tokens: target,
                shortfall_tokens: share.saturating_sub(target),
                mixed_documents: 0,
                mixed_tokens: 0,
                epochs: 0.0,
                share: 0.0,
            };
            (g, row)
        })
        .collect();
    let shard_dir = out.join("documents");
    std::fs::create_dir_all(&shard_dir)
        .map_err(|e| TokenizeError::Output(shard_dir.clone(), e.to_string()))?;
    let mut writers: BTreeMap<String, zstd::Encoder<'static, AtomicFile>> = BTreeMap::new();
    let mut written = Vec::new();
    for s in &docs {
        let row = groups.get_mut(&s.group).expect("every group has a row");
        let ratio = row.target_tokens as f64 / row.tokens.max(1) as f64;
        let n = copies(ratio, config.seed, &s.doc.id);
        if n == 0 {
            continue;
        }
        row.mixed_documents += n;
        row.mixed_tokens += n * s.tokens;
        if !writers.contains_key(&s.group) {
            let path = shard_dir.join(format!("{}.jsonl.zst", file_name(&s.group)));
            let file = AtomicFile::create(&path)
                .map_err(|e| TokenizeError::Output(path.clone(), e.to_string()))?;
            let encoder = zstd::Encoder::new(file, 3)
                .map_err(|e| TokenizeError::Output(path.clone(), e.to_string()))?;
            written.push(path.display().to_string());
            writers.insert(s.group.clone(), encoder);
        }
        let writer = writers.get_mut(&s.group).expect("opened above");
        let mut line = Vec::new();
        s.doc.write_json_line(&mut line);
        for _ in 0..n {
            writer
                .write_all(&line)
                .map_err(|e| TokenizeError::Output(out.to_owned(), e.to_string()))?;
        }
    }
    for (_, w) in writers {
        let file = w
            .finish()
            .map_err(|e| TokenizeError::Output(out.to_owned(), e.to_string()))?;
        file.commit()
            .map_err(|e| TokenizeError::Output(out.to_owned(), e.to_string()))?;
    }
    let total: u64 = groups.values().map(|r| r.mixed_tokens).sum();
    for row in groups.values_mut() {
        row.epochs = row.mixed_tokens as f64 / row.tokens.max(1) as f64;
        row.share = row.mixed_tokens as f64 / total.max(1) as f64;
    }
    let blend = groups
        .iter()
        .filter(|(_, r)| r.mixed_tokens > 0)
        .map(|(g, r)| {
            format!(
                "{:.6} {}{}_text_document",
                r.share,
                config.data_prefix,
                file_name(g)
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let report = MixReport {
        config: config.clone(),
        requested_tokens: config.budget_tokens,
        delivered_tokens: total,
        shortfall_tokens: goal.unmet,
        groups,
        blend,
        files: written,
        errors,
    };
    let path = out.join("mix.json");
    latam_io::write_atomic(&path, &serde_json::to_vec_pretty(&report).expect("JSON"))
        .map_err(|e| TokenizeError::Output(path, e.to_string()))?;
    Ok(report)
}

/// A group's value as a file name: letters, digits, `-` and `_` kept, the rest `_`.
fn file_name(group: &str) -> String {
    group
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl MixReport {
    /// What the mix could not give, for a person; `None` when it gave what was asked. Either
    /// the data cannot fill the budget even at `max_epochs` passes over every group, or (with
    /// weights) groups stay below their weight's share and the others took the rest; each group
    /// short of its share is listed.
    pub fn shortfall_warning(&self) -> Option<String> {
        let max_epochs = self.config.max_epochs;
        let mut out = if self.shortfall_tokens > 0 {
            format!(
                "the mix holds {} tokens of the {} requested ({} short): the data cannot fill \
                 budget_tokens even at max_epochs = {max_epochs} passes over every group",
                self.delivered_tokens, self.requested_tokens, self.shortfall_tokens
            )
        } else if !self.config.weights.is_empty()
            && self.groups.values().any(|r| r.shortfall_tokens > 0)
        {
            format!(
                "groups below their weight's share of the budget even at max_epochs = \
                 {max_epochs} passes; the other groups took the rest"
            )
        } else {
            return None;
        };
        for (g, r) in self.groups.iter().filter(|(_, r)| r.shortfall_tokens > 0) {
            if r.documents == 0 {
                let _ = write!(out, "\n  {g}: no documents (share {})", r.share_tokens);
            } else {
                let _ = write!(
                    out,
                    "\n  {g}: {} of its {}-token share ({} tokens, {:.2} passes)",
                    r.mixed_tokens, r.share_tokens, r.tokens, r.epochs
                );
            }
        }
        out.push_str("\n  Lower budget_tokens, raise max_epochs, or add documents.");
        Some(out)
    }
}

/// The table before and after, in Markdown.
pub fn mix_markdown(report: &MixReport) -> String {
    let mut out = format!(
        "| {} | documents | tokens | share before | target | mixed tokens | share after | epochs |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
        report.config.key
    );
    let before: u64 = report.groups.values().map(|r| r.tokens).sum();
    for (g, r) in &report.groups {
        let _ = writeln!(
            out,
            "| {g} | {} | {} | {:.2}% | {} | {} | {:.2}% | {:.2} |",
            r.documents,
            r.tokens,
            100.0 * r.tokens as f64 / before.max(1) as f64,
            r.target_tokens,
            r.mixed_tokens,
            100.0 * r.share,
            r.epochs
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(weights: &[(&str, f64)]) -> MixConfig {
        MixConfig {
            key: "language".into(),
            budget_tokens: 1000,
            max_epochs: 2.0,
            weights: weights.iter().map(|(g, w)| ((*g).to_owned(), *w)).collect(),
            seed: 1,
            data_prefix: "data/".into(),
        }
    }

    #[test]
    fn unimax_spreads_the_budget_and_caps_small_groups() {
        let sizes = BTreeMap::from([
            ("spa".to_owned(), 5000),
            ("por".to_owned(), 400),
            ("gug".to_owned(), 50),
        ]);
        let t = targets(&sizes, &config(&[])).tokens;
        // gug: 333 wanted, 100 allowed (2 epochs); the rest split between spa and por (450 each).
        assert_eq!(t["gug"], 100);
        assert_eq!(t["spa"], 450);
        assert_eq!(t["por"], 450);
        let t = targets(&sizes, &config(&[("spa", 3.0), ("por", 1.0)]));
        assert_eq!(
            (t.tokens["spa"], t.tokens["por"], t.tokens["gug"]),
            (750, 250, 0)
        );
        assert_eq!(t.unmet, 0);
    }

    #[test]
    fn a_budget_larger_than_the_data_leaves_a_shortfall() {
        let sizes = BTreeMap::from([("spa".to_owned(), 300), ("gug".to_owned(), 50)]);
        // 2 epochs at most: 600 + 100 of the 1000 asked.
        let t = targets(&sizes, &config(&[]));
        assert_eq!((t.tokens["spa"], t.tokens["gug"], t.unmet), (600, 100, 300));
        let s = shares(&sizes, &config(&[]));
        assert_eq!((s["spa"], s["gug"]), (500, 500));
        // Weights naming a group the data lacks: its share is counted, and goes unmet.
        let c = config(&[("spa", 1.0), ("quy", 1.0)]);
        let t = targets(&sizes, &c);
        assert_eq!((t.tokens["spa"], t.tokens["gug"], t.unmet), (600, 0, 400));
        let s = shares(&sizes, &c);
        assert_eq!((s["spa"], s["quy"], s["gug"]), (500, 500, 0));
        // Rounding alone is no shortfall.
        let three = BTreeMap::from([
            ("a".to_owned(), 5000),
            ("b".to_owned(), 5000),
            ("c".to_owned(), 5000),
        ]);
        assert_eq!(targets(&three, &config(&[])).unmet, 0);
        assert_eq!(targets(&BTreeMap::new(), &config(&[])).unmet, 1000);
    }

    #[test]
    fn copies_follow_the_ratio() {
        let total: u64 = (0..10_000)
            .map(|i| copies(1.25, 7, &format!("doc-{i}")))
            .sum();
        assert!((12_300..12_700).contains(&total), "{total}");
        assert_eq!(copies(0.0, 7, "x"), 0);
        assert_eq!(copies(3.0, 7, "x"), 3);
    }
}
