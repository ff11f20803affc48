//! Near-duplicate detection measured against the truth (`latam dedup eval`). Real documents
//! are copied with known edits (word substitutions, insertions, deletions, boilerplate headers
//! and footers, paragraph shuffles) at several rates; the stages of `dedup_minhash` run over the
//! originals and the copies; the pairs they put in one cluster are compared with the pairs
//! whose exact Jaccard similarity, on the same shingles, reaches each threshold.

use std::collections::BTreeMap;
use std::path::Path;

use latam_core::{Position, Rng};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::{
    ClusterSummary, Decisions, DedupMinhashConfig, Params, SignatureWriter, buckets, cluster,
    shingle_hashes, word_hashes,
};
use crate::DedupError;

/// Edit rates of the generated copies.
const RATES: [f64; 4] = [0.02, 0.05, 0.1, 0.2];
/// Thresholds of exact Jaccard similarity the pairs are judged at.
const THRESHOLDS: [f64; 5] = [0.5, 0.6, 0.7, 0.8, 0.9];
/// Sentences of the boilerplate that wraps copies.
const BOILERPLATE: [&str; 6] = [
    "Publicado por la Oficina de Prensa.",
    "Todos los derechos reservados.",
    "Suscríbase a nuestro boletín para recibir las novedades de la semana.",
    "Este contenido puede ser reproducido citando la fuente.",
    "Compartir en redes sociales: Facebook, X, WhatsApp.",
    "Volver al inicio | Mapa del sitio | Contacto | Política de privacidad",
];

/// The kinds of edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Edit {
    /// Words replaced by others of the corpus.
    Substitute,
    /// Words of the corpus inserted.
    Insert,
    /// Words deleted.
    Delete,
    /// A header and a footer of boilerplate sentences added.
    Boilerplate,
    /// Paragraphs swapped.
    Shuffle,
}

/// A copy of `text` with `edit` at `rate` (words drawn from `vocabulary`).
fn edit(text: &str, edit: Edit, rate: f64, vocabulary: &[&str], rng: &mut Rng) -> String {
    let word = |rng: &mut Rng| vocabulary[rng.below(vocabulary.len())];
    match edit {
        Edit::Substitute | Edit::Insert | Edit::Delete => {
            let mut out: Vec<&str> = Vec::new();
            for w in text.split(' ') {
                let hit = rng.chance(rate);
                match (edit, hit) {
                    (Edit::Substitute, true) => out.push(word(rng)),
                    (Edit::Delete, true) => {}
                    (Edit::Insert, true) => {
                        out.push(w);
                        out.push(word(rng));
                    }
                    _ => out.push(w),
                }
            }
            out.join(" ")
        }
        Edit::Boilerplate => {
            // Header and footer of about `rate` of the document's words.
            let target = (text.split_whitespace().count() as f64 * rate).ceil() as usize;
            let mut header = Vec::new();
            let mut words = 0;
            while words < target {
                let s = BOILERPLATE[rng.below(BOILERPLATE.len())];
                words += s.split_whitespace().count();
                header.push(s);
            }
            let split = header.len() / 2;
            format!(
                "{}\n\n{text}\n\n{}",
                header[..split].join(" "),
                header[split..].join(" ")
            )
        }
        Edit::Shuffle => {
            let mut paragraphs: Vec<&str> = text.split('\n').collect();
            // Swap a share `rate` of the paragraphs (at least one pair).
            let swaps = ((paragraphs.len() as f64 * rate).ceil() as usize).max(1);
            for _ in 0..swaps {
                let (a, b) = (rng.below(paragraphs.len()), rng.below(paragraphs.len()));
                paragraphs.swap(a, b);
            }
            paragraphs.join("\n")
        }
    }
}

/// One document of the evaluation set.
struct Item {
    /// The index of its original (itself for an original).
    original: usize,
    edit: Option<(Edit, f64)>,
    text: String,
}

/// Precision and recall at one threshold.
#[derive(Debug, Serialize)]
pub struct AtThreshold {
    /// The threshold of exact Jaccard similarity.
    pub jaccard_at_least: f64,
    /// Pairs whose exact Jaccard similarity reaches the threshold.
    pub true_pairs: u64,
    /// Of those, the pairs put in one cluster.
    pub found: u64,
    /// `found / true_pairs`.
    pub recall: f64,
    /// Of the documents removed, those whose exact similarity with the document kept for
    /// them reaches the threshold.
    pub removed_precision: f64,
    /// Of all pairs in one cluster, those whose exact similarity reaches the threshold.
    pub pair_precision: f64,
}

/// Detection of copies by kind and rate.
#[derive(Debug, Serialize)]
pub struct ByEdit {
    /// The kind of edit.
    pub edit: Edit,
    /// Its rate.
    pub rate: f64,
    /// Copies made so.
    pub copies: u64,
    /// Their mean exact Jaccard similarity with their original.
    pub mean_jaccard: f64,
    /// Share of the copies in the cluster of their original.
    pub found: f64,
}

/// What the evaluation measured.
#[derive(Debug, Serialize)]
pub struct EvalReport {
    /// Real documents taken.
    pub originals: usize,
    /// Originals and their copies.
    pub documents: usize,
    /// The settings evaluated.
    pub settings: DedupMinhashConfig,
    /// Documents removed.
    pub removed: u64,
    /// Clusters of two or more.
    pub clusters: u64,
    /// Precision and recall by threshold.
    pub thresholds: Vec<AtThreshold>,
    /// Detection by kind and rate of edit.
    pub by_edit: Vec<ByEdit>,
}

/// Runs the evaluation: near-copies of `originals` (real documents) with edits drawn from
/// `seed`, the stages of `dedup_minhash` with `settings` in the work directory `work`, and the
/// comparison with exact Jaccard similarity.
pub fn evaluate(
    originals: &[String],
    settings: &DedupMinhashConfig,
    seed: u64,
    work: &Path,
) -> Result<EvalReport, DedupError> {
    settings.validate()?;
    let items = near_copies(originals, seed);
    let (summary, decisions, sets) = detect(&items, settings, work)?;
    let (thresholds, by_edit) = score(&items, &decisions, &exact_jaccard(&sets));
    Ok(EvalReport {
        originals: originals.len(),
        documents: items.len(),
        settings: settings.clone(),
        removed: summary.to_remove,
        clusters: summary.clusters,
        thresholds,
        by_edit,
    })
}

/// Exact Jaccard similarity of every pair of documents sharing a shingle.
fn exact_jaccard(sets: &[FxHashSet<u64>]) -> FxHashMap<(usize, usize), f64> {
    let mut postings: FxHashMap<u64, Vec<usize>> = FxHashMap::default();
    for (i, set) in sets.iter().enumerate() {
        for &s in set {
            postings.entry(s).or_default().push(i);
        }
    }
    let mut shared: FxHashMap<(usize, usize), u32> = FxHashMap::default();
    for docs in postings.values() {
        for (k, &a) in docs.iter().enumerate() {
            for &b in &docs[k + 1..] {
                *shared.entry((a, b)).or_default() += 1;
            }
        }
    }
    shared
        .into_iter()
        .map(|((a, b), n)| {
            let union = sets[a].len() + sets[b].len() - n as usize;
            ((a, b), f64::from(n) / union as f64)
        })
        .collect()
}

/// The originals, each followed by its copies: every kind of edit at every rate.
fn near_copies(originals: &[String], seed: u64) -> Vec<Item> {
    let vocabulary: Vec<&str> = originals
        .iter()
        .flat_map(|t| t.split_whitespace())
        .take(200_000)
        .collect();
    let mut rng = Rng::new(seed);
    let mut items = Vec::new();
    for text in originals {
        let original = items.len();
        items.push(Item {
            original,
            edit: None,
            text: text.clone(),
        });
        for kind in [
            Edit::Substitute,
            Edit::Insert,
            Edit::Delete,
            Edit::Boilerplate,
            Edit::Shuffle,
        ] {
            for rate in RATES {
                items.push(Item {
                    original,
                    edit: Some((kind, rate)),
                    text: edit(text, kind, rate, &vocabulary, &mut rng),
                });
            }
        }
    }
    items
}

/// Runs the stages of `dedup_minhash` over the items; returns the clustering and the shingle
/// set of each item.
fn detect(
    items: &[Item],
    settings: &DedupMinhashConfig,
    work: &Path,
) -> Result<(ClusterSummary, Decisions, Vec<FxHashSet<u64>>), DedupError> {
    Params::create(work, settings, 1)?;
    let mut writer = SignatureWriter::new(work, 0)?;
    let mut sets = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let mut words = Vec::new();
        word_hashes(&item.text, &mut words);
        let mut shingles = Vec::new();
        shingle_hashes(&words, settings.n_grams, settings.seed, &mut shingles);
        let sig = writer.hasher().signature_of_shingles(&shingles);
        writer.add(i as Position, &i.to_string(), &sig)?;
        sets.push(shingles.into_iter().collect::<FxHashSet<u64>>());
    }
    writer.finish()?;
    for band in 0..settings.bands {
        buckets(work, band)?;
    }
    let summary = cluster(work)?;
    let decisions = Decisions::load(work)?;
    Ok((summary, decisions, sets))
}

/// Precision and recall by threshold, and detection by edit.
fn score(
    items: &[Item],
    decisions: &Decisions,
    jaccard: &FxHashMap<(usize, usize), f64>,
) -> (Vec<AtThreshold>, Vec<ByEdit>) {
    let cluster_of = |i: usize| decisions.get(i as Position).map_or(i as u64, |d| d.kept);
    let similarity =
        |a: usize, b: usize| jaccard.get(&(a.min(b), a.max(b))).copied().unwrap_or(0.0);
    // Pairs in one cluster.
    let mut members: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for i in 0..items.len() {
        if decisions.get(i as Position).is_some() {
            members.entry(cluster_of(i)).or_default().push(i);
        }
    }
    let clustered: Vec<(usize, usize)> = members
        .values()
        .flat_map(|m| {
            m.iter()
                .enumerate()
                .flat_map(move |(k, &a)| m[k + 1..].iter().map(move |&b| (a, b)))
        })
        .collect();
    let removed: Vec<(usize, usize)> = (0..items.len())
        .filter_map(|i| {
            let kept = cluster_of(i) as usize;
            (kept != i).then_some((i, kept))
        })
        .collect();
    let thresholds = THRESHOLDS
        .iter()
        .map(|&t| {
            let true_pairs: Vec<&(usize, usize)> = jaccard
                .iter()
                .filter(|(_, j)| **j >= t)
                .map(|(p, _)| p)
                .collect();
            let found = true_pairs
                .iter()
                .filter(|(a, b)| cluster_of(*a) == cluster_of(*b))
                .count() as u64;
            let share = |n: usize, of: usize| if of == 0 { 1.0 } else { n as f64 / of as f64 };
            AtThreshold {
                jaccard_at_least: t,
                true_pairs: true_pairs.len() as u64,
                found,
                recall: share(found as usize, true_pairs.len()),
                removed_precision: share(
                    removed
                        .iter()
                        .filter(|(a, b)| similarity(*a, *b) >= t)
                        .count(),
                    removed.len(),
                ),
                pair_precision: share(
                    clustered
                        .iter()
                        .filter(|(a, b)| similarity(*a, *b) >= t)
                        .count(),
                    clustered.len(),
                ),
            }
        })
        .collect();
    let mut by_edit: BTreeMap<(Edit, u64), (u64, f64, u64)> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        if let Some((kind, rate)) = item.edit {
            let o = item.original;
            let entry = by_edit.entry((kind, (rate * 1000.0) as u64)).or_default();
            entry.0 += 1;
            entry.1 += similarity(o, i);
            entry.2 += u64::from(cluster_of(o) == cluster_of(i));
        }
    }
    let by_edit = by_edit
        .into_iter()
        .map(|((edit, rate), (n, j, found))| ByEdit {
            edit,
            rate: rate as f64 / 1000.0,
            copies: n,
            mean_jaccard: j / n as f64,
            found: found as f64 / n as f64,
        })
        .collect();
    (thresholds, by_edit)
}
