//! Scores of one answer, as latamgpt-benchmark computes them, and their summaries: means over
//! all rows and per value of every metadata key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::canonical_combining_class;

/// Lowercase, accents removed (NFKD, combining marks dropped), punctuation as spaces,
/// whitespace collapsed.
pub fn normalize_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.to_lowercase().nfkd() {
        if canonical_combining_class(c) != 0 {
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            out.push(c);
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out.trim().to_owned()
}

/// F1 of the normalized tokens (bag of words) of the prediction against the reference.
pub fn token_f1(reference: &str, prediction: &str) -> f64 {
    let reference = normalize_text(reference);
    let prediction = normalize_text(prediction);
    let r: Vec<&str> = reference.split_whitespace().collect();
    let p: Vec<&str> = prediction.split_whitespace().collect();
    if r.is_empty() && p.is_empty() {
        return 1.0;
    }
    if r.is_empty() || p.is_empty() {
        return 0.0;
    }
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for t in &r {
        counts.entry(t).or_default().0 += 1;
    }
    for t in &p {
        counts.entry(t).or_default().1 += 1;
    }
    let overlap: usize = counts.values().map(|(a, b)| a.min(b)).copied().sum();
    if overlap == 0 {
        return 0.0;
    }
    let precision = overlap as f64 / p.len() as f64;
    let recall = overlap as f64 / r.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// `difflib.SequenceMatcher(a=normalized reference, b=normalized prediction).ratio()`.
pub fn char_similarity(reference: &str, prediction: &str) -> f64 {
    crate::difflib::ratio(&normalize_text(reference), &normalize_text(prediction))
}

/// The four deterministic scores of an open answer.
pub fn open_answer_scores(reference: &str, prediction: &str) -> BTreeMap<String, f64> {
    let r = normalize_text(reference);
    let p = normalize_text(prediction);
    BTreeMap::from([
        ("normalized_exact_match".into(), f64::from(u8::from(r == p))),
        ("token_f1".into(), token_f1(reference, prediction)),
        ("char_similarity".into(), crate::difflib::ratio(&r, &p)),
        ("answered".into(), f64::from(u8::from(!p.is_empty()))),
    ])
}

/// Breakdowns: metadata key → value → group.
pub type Breakdowns = BTreeMap<String, BTreeMap<String, Group>>;

/// A row's metadata and metrics.
pub type Scored<'a> = (&'a Map<String, Value>, &'a BTreeMap<String, f64>);

/// A group's size and the means of its metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Rows in the group.
    pub count: usize,
    /// Summary of its metrics ([`summarize`]).
    pub metrics: BTreeMap<String, f64>,
}

/// Summary of rows' metrics: the mean of each (non-finite values skipped); for perplexity rows
/// (`nll_nats`, `tokens`, `bytes`) the corpus-level `bits_per_byte` (total nats / ln 2 / total
/// bytes) and `perplexity` (e^(total nats / total tokens)) instead of means, as lm-evaluation-harness
/// weighs them.
pub fn summarize<'a>(
    rows: impl IntoIterator<Item = &'a BTreeMap<String, f64>>,
) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for metrics in rows {
        for (name, value) in metrics {
            if value.is_finite() {
                let entry = sums.entry(name.clone()).or_default();
                entry.0 += value;
                entry.1 += 1;
            }
        }
    }
    let total = |k: &str| sums.get(k).map(|(s, _)| *s);
    let corpus = match (total("nll_nats"), total("tokens"), total("bytes")) {
        (Some(nll), Some(tokens), Some(bytes)) if tokens > 0.0 && bytes > 0.0 => {
            Some((nll / std::f64::consts::LN_2 / bytes, (nll / tokens).exp()))
        }
        _ => None,
    };
    let mut out: BTreeMap<String, f64> = sums
        .into_iter()
        .filter(|(name, _)| !matches!(name.as_str(), "nll_nats" | "tokens" | "bytes"))
        .map(|(name, (sum, n))| (name, sum / n as f64))
        .collect();
    if let Some((bpb, ppl)) = corpus {
        out.insert("bits_per_byte".into(), bpb);
        out.insert("perplexity".into(), ppl);
    }
    out
}

/// Breakdowns by every metadata key: for each value, the count and metric means. Values of
/// keys in `multi_label` are comma-separated lists (Trueque's `topic`), each counted.
pub fn breakdowns(rows: &[Scored<'_>], multi_label: &[&str]) -> Breakdowns {
    type Members<'a> = BTreeMap<String, Vec<&'a BTreeMap<String, f64>>>;
    let mut groups: BTreeMap<String, Members<'_>> = BTreeMap::new();
    for (metadata, metrics) in rows {
        for (key, value) in *metadata {
            let text = match value {
                Value::String(s) => s.trim().to_owned(),
                Value::Null => continue,
                other => other.to_string(),
            };
            if text.is_empty() {
                continue;
            }
            let values: Vec<String> = if multi_label.contains(&key.as_str()) {
                text.split(',')
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .collect()
            } else {
                vec![text]
            };
            for v in values {
                groups
                    .entry(key.clone())
                    .or_default()
                    .entry(v)
                    .or_default()
                    .push(metrics);
            }
        }
    }
    groups
        .into_iter()
        .map(|(key, by_value)| {
            let by_value = by_value
                .into_iter()
                .map(|(value, rows)| {
                    let count = rows.len();
                    (
                        value,
                        Group {
                            count,
                            metrics: summarize(rows),
                        },
                    )
                })
                .collect();
            (key, by_value)
        })
        .collect()
}

/// The letter a generated answer gives, read strictly: the whole answer is the letter (with
/// optional parentheses, period or colon), or it says "Respuesta: X" / "Resposta: X" /
/// "Answer: X".
pub fn strict_letter(answer: &str, letters: usize) -> Option<usize> {
    let answer = answer.trim();
    let tail = ["respuesta", "resposta", "answer", "alternativa"]
        .iter()
        .find_map(|key| {
            let lower = answer.to_lowercase();
            lower.rfind(key).map(|at| {
                answer[at + key.len()..]
                    .trim_start_matches([':', ' ', '*'])
                    .trim()
            })
        })
        .unwrap_or(answer);
    let core = tail.trim_matches(|c: char| {
        c == '(' || c == ')' || c == '.' || c == ':' || c == '*' || c.is_whitespace()
    });
    let mut chars = core.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => letter_index(c, letters),
        _ => None,
    }
}

/// The letter a generated answer gives, read flexibly: the first standalone capital letter
/// among the choices (`A`, `(B)`, `C)`), else the choice whose text the answer contains.
pub fn flexible_letter(answer: &str, choices: &[String]) -> Option<usize> {
    if let Some(found) = strict_letter(answer, choices.len()) {
        return Some(found);
    }
    let chars: Vec<char> = answer.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let alone_before = i == 0 || !chars[i - 1].is_alphanumeric();
        let alone_after = i + 1 == chars.len() || !chars[i + 1].is_alphanumeric();
        if alone_before
            && alone_after
            && let Some(index) = letter_index(*c, choices.len())
        {
            return Some(index);
        }
    }
    let normalized = normalize_text(answer);
    let mut hits = choices
        .iter()
        .enumerate()
        .filter(|(_, choice)| {
            let choice = normalize_text(choice);
            !choice.is_empty() && normalized.contains(&choice)
        })
        .map(|(i, _)| i);
    match (hits.next(), hits.next()) {
        (Some(i), None) => Some(i),
        _ => None,
    }
}

fn letter_index(c: char, letters: usize) -> Option<usize> {
    let index = (c.to_ascii_uppercase() as usize).checked_sub('A' as usize)?;
    (c.is_ascii_alphabetic() && index < letters).then_some(index)
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    /// Values printed by latamgpt-benchmark's `deterministic_scores` (Python 3.11).
    #[test]
    fn the_same_values_as_latamgpt_benchmark() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        for (reference, prediction, exact, f1, sim, answered) in [
            ("Santiago de Chile", "santiago", 0.0, 0.5, 0.64, 1.0),
            (
                "un programa de telerrealidad peruano",
                "Es un programa de telerrealidad de Perú.",
                0.0,
                0.666_666_666_666_666_6,
                0.88,
                1.0,
            ),
            ("", "", 1.0, 1.0, 1.0, 0.0),
            ("Café", "cafe", 1.0, 1.0, 1.0, 1.0),
            (
                "Gabriel García Márquez",
                "No lo sé",
                0.0,
                0.0,
                0.066_666_666_666_666_67,
                1.0,
            ),
            (
                "El Niño es un fenómeno climático del Pacífico que altera lluvias y temperaturas en América del Sur, con efectos en la pesca peruana y la agricultura; ocurre cada dos a siete años aproximadamente y dura varios meses.",
                "Es un fenómeno climático que calienta el océano Pacífico y cambia las lluvias en Sudamérica; afecta a la pesca en Perú y a la agricultura, y aparece cada 2 a 7 años.",
                0.0,
                0.579_710_144_927_536_3,
                0.609_625_668_449_197_9,
                1.0,
            ),
        ] {
            let s = open_answer_scores(reference, prediction);
            assert!(close(s["normalized_exact_match"], exact), "{reference}");
            assert!(close(s["token_f1"], f1), "{reference}: {}", s["token_f1"]);
            assert!(
                close(s["char_similarity"], sim),
                "{reference}: {}",
                s["char_similarity"]
            );
            assert!(close(s["answered"], answered), "{reference}");
        }
        // Long second sequences: difflib's popular-character heuristic (autojunk) applies.
        let a = "a".repeat(150) + &"b".repeat(150);
        assert!(close(
            char_similarity(&a, &"ab".repeat(150)),
            0.003_333_333_333_333_333_5
        ));
        let long = "El Niño es un fenómeno climático del Pacífico que altera lluvias y temperaturas en América del Sur, con efectos en la pesca peruana y la agricultura; ocurre cada dos a siete años aproximadamente y dura varios meses.";
        let short = "Es un fenómeno climático que calienta el océano Pacífico y cambia las lluvias en Sudamérica; afecta a la pesca en Perú y a la agricultura, y aparece cada 2 a 7 años.";
        assert!(close(
            char_similarity(short, long),
            0.181_818_181_818_181_82
        ));
        assert!(close(
            char_similarity(
                "Lima",
                "La capital del Perú es Lima, fundada por Francisco Pizarro en 1535 como Ciudad de los Reyes, a orillas del río Rímac, en la costa central del país; hoy es la ciudad más poblada del Perú y una de las más grandes de América del Sur."
            ),
            0.008_733_624_454_148_471
        ));
    }

    #[test]
    fn letters_strict_and_flexible() {
        let choices: Vec<String> = ["Lima", "Cusco", "Arequipa", "Trujillo"]
            .map(String::from)
            .to_vec();
        assert_eq!(strict_letter("B", 4), Some(1));
        assert_eq!(strict_letter(" (c). ", 4), Some(2));
        assert_eq!(strict_letter("Respuesta: D", 4), Some(3));
        assert_eq!(strict_letter("**Resposta:** A", 4), Some(0));
        assert_eq!(strict_letter("E", 4), None);
        assert_eq!(
            strict_letter("La respuesta correcta es la B, Cusco", 4),
            None
        );
        assert_eq!(
            flexible_letter("La respuesta correcta es la B, Cusco", &choices),
            Some(1)
        );
        assert_eq!(flexible_letter("Es Arequipa.", &choices), Some(2));
        assert_eq!(flexible_letter("No lo sé", &choices), None);
    }

    #[test]
    fn breakdowns_split_multi_label_keys() {
        let m1 = Map::from_iter([
            ("country".to_owned(), Value::from("Chile")),
            ("topic".to_owned(), Value::from("historia, política")),
        ]);
        let m2 = Map::from_iter([("country".to_owned(), Value::from("Perú"))]);
        let s1 = BTreeMap::from([("token_f1".to_owned(), 1.0)]);
        let s2 = BTreeMap::from([("token_f1".to_owned(), 0.0)]);
        let b = breakdowns(&[(&m1, &s1), (&m2, &s2)], &["topic"]);
        assert_eq!(b["country"]["Chile"].count, 1);
        assert_eq!(b["topic"]["política"].metrics["token_f1"], 1.0);
        assert_eq!(b["topic"].len(), 2);
        assert_eq!(summarize([&s1, &s2])["token_f1"], 0.5);
        let p1 = BTreeMap::from([
            ("nll_nats".to_owned(), 2.0),
            ("tokens".to_owned(), 2.0),
            ("bytes".to_owned(), 4.0),
            ("bits_per_byte".to_owned(), 9.0),
        ]);
        let p2 = BTreeMap::from([
            ("nll_nats".to_owned(), 4.0),
            ("tokens".to_owned(), 1.0),
            ("bytes".to_owned(), 2.0),
            ("bits_per_byte".to_owned(), 9.0),
        ]);
        let s = summarize([&p1, &p2]);
        assert!((s["bits_per_byte"] - 6.0 / std::f64::consts::LN_2 / 6.0).abs() < 1e-12);
        assert!((s["perplexity"] - 2f64.exp()).abs() < 1e-12);
        assert!(!s.contains_key("nll_nats"));
    }
}
