//! `latam eval report`: several runs side by side — overall, then per country, category,
//! difficulty, topic and every other breakdown key — as Markdown and as one self-contained HTML
//! page with bar charts (inline SVG, no scripts).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use latam_core::html_escape as escape;

use crate::run::Summary;

/// Metrics shown first, in this order, when present.
const ORDER: [&str; 14] = [
    "judge_overall",
    "judge_correct",
    "judge_not_attempted",
    "accuracy",
    "accuracy_loglik",
    "accuracy_strict",
    "accuracy_flexible",
    "normalized_exact_match",
    "token_f1",
    "char_similarity",
    "answered",
    "bits_per_byte",
    "perplexity",
    "judge_correctness",
];

/// Breakdown keys with more values than this (entities, ids) are left out of the report.
const MAX_VALUES: usize = 60;

/// A run in the report: its label and summary.
pub struct Entry {
    /// `model · task` (or the directory name).
    pub label: String,
    /// Its summary.
    pub summary: Summary,
}

/// The metric that leads a run's breakdowns: the judge's overall grade, else accuracy, bits per
/// byte, token F1.
pub fn headline(summary: &Summary) -> Option<&'static str> {
    ["judge_overall", "accuracy", "bits_per_byte", "token_f1"]
        .into_iter()
        .find(|m| summary.metrics.contains_key(*m))
}

/// Column labels of the breakdowns: each run with its headline metric.
fn columns(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| format!("{} ({})", e.label, headline(&e.summary).unwrap_or("–")))
        .collect()
}

fn metric_names(entries: &[Entry]) -> Vec<String> {
    let all: BTreeSet<&String> = entries
        .iter()
        .flat_map(|e| e.summary.metrics.keys())
        .collect();
    let mut names: Vec<String> = ORDER
        .iter()
        .filter(|m| all.iter().any(|a| a == *m))
        .map(|m| (*m).to_owned())
        .collect();
    names.extend(
        all.into_iter()
            .filter(|a| !ORDER.contains(&a.as_str()))
            .cloned(),
    );
    names
}

fn keys(entries: &[Entry]) -> Vec<String> {
    let all: BTreeSet<&String> = entries
        .iter()
        .flat_map(|e| e.summary.breakdowns.keys())
        .collect();
    let first = ["country", "category", "difficulty", "topic"];
    let mut keys: Vec<String> = first
        .iter()
        .filter(|k| all.iter().any(|a| a == *k))
        .map(|k| (*k).to_owned())
        .collect();
    keys.extend(
        all.into_iter()
            .filter(|k| !first.contains(&k.as_str()))
            .cloned(),
    );
    keys.retain(|k| {
        entries.iter().all(|e| {
            e.summary
                .breakdowns
                .get(k)
                .is_none_or(|v| v.len() <= MAX_VALUES)
        })
    });
    keys
}

fn fmt(value: Option<f64>) -> String {
    value
        .filter(|v| v.is_finite())
        .map_or_else(|| "–".into(), |v| format!("{v:.4}"))
}

/// The values of a breakdown key in all runs, with the headline metric of each run.
fn table(entries: &[Entry], key: &str) -> BTreeMap<String, Vec<Option<(f64, usize)>>> {
    let mut rows: BTreeMap<String, Vec<Option<(f64, usize)>>> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        let Some(metric) = headline(&e.summary) else {
            continue;
        };
        for (value, group) in e.summary.breakdowns.get(key).into_iter().flatten() {
            let row = rows
                .entry(value.clone())
                .or_insert_with(|| vec![None; entries.len()]);
            row[i] = group.metrics.get(metric).map(|m| (*m, group.count));
        }
    }
    rows
}

/// The report in Markdown.
pub fn markdown(entries: &[Entry]) -> String {
    let mut out = String::from("# Evaluation report\n\n## Overall\n\n");
    let names = metric_names(entries);
    let _ = writeln!(out, "| run | examples | {} |", names.join(" | "));
    let _ = writeln!(out, "|---|---:|{}", "---:|".repeat(names.len()));
    for e in entries {
        let cells: Vec<String> = names
            .iter()
            .map(|m| fmt(e.summary.metrics.get(m).copied()))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            e.label,
            e.summary.num_examples,
            cells.join(" | ")
        );
    }
    let labels = columns(entries);
    for key in keys(entries) {
        let _ = writeln!(out, "\n## By {key}\n");
        let _ = writeln!(out, "| {key} | {} |", labels.join(" | "));
        let _ = writeln!(out, "|---|{}", "---:|".repeat(labels.len()));
        for (value, cells) in table(entries, &key) {
            let cells: Vec<String> = cells
                .iter()
                .map(|c| c.map_or_else(|| "–".into(), |(m, n)| format!("{m:.4} (n={n})")))
                .collect();
            let _ = writeln!(out, "| {value} | {} |", cells.join(" | "));
        }
    }
    out
}

const COLORS: [&str; 6] = [
    "#1b6ca8", "#e07a1f", "#2f9e44", "#c2255c", "#7048e8", "#868e96",
];

/// A horizontal bar chart: one group of bars (one per run) for each label.
fn chart(groups: &[(String, Vec<Option<f64>>)], runs: &[&str]) -> String {
    let max = groups
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(0.0f64, |a, b| a.max(*b))
        .max(1e-9);
    let bar = 14;
    let group_h = bar * runs.len() + 8;
    let height = groups.len() * group_h + 24 + 18 * runs.len();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"760\" height=\"{height}\" role=\"img\">"
    );
    for (g, (label, values)) in groups.iter().enumerate() {
        let y0 = g * group_h;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text>",
            y0 + bar,
            escape(&label.chars().take(28).collect::<String>())
        );
        for (r, v) in values.iter().enumerate() {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                let w = (v / max * 440.0).max(1.0);
                let y = y0 + r * bar;
                let _ = write!(
                    svg,
                    "<rect x=\"200\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"><title>{}: {v:.4}</title></rect><text x=\"{:.1}\" y=\"{}\" font-size=\"11\">{v:.3}</text>",
                    bar - 2,
                    COLORS[r % COLORS.len()],
                    escape(runs[r]),
                    204.0 + w,
                    y + bar - 3
                );
            }
        }
    }
    for (r, run) in runs.iter().enumerate() {
        let y = groups.len() * group_h + 16 + r * 18;
        let _ = write!(
            svg,
            "<rect x=\"200\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"218\" y=\"{}\" font-size=\"12\">{}</text>",
            y - 10,
            COLORS[r % COLORS.len()],
            y,
            escape(run)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The report as one self-contained HTML page.
pub fn html(entries: &[Entry]) -> String {
    let mut body = String::from("<h1>Evaluation report</h1><h2>Overall</h2>");
    let names = metric_names(entries);
    body.push_str("<table><tr><th>run</th><th>examples</th>");
    for m in &names {
        let _ = write!(body, "<th>{}</th>", escape(m));
    }
    body.push_str("</tr>");
    for e in entries {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td>",
            escape(&e.label),
            e.summary.num_examples
        );
        for m in &names {
            let _ = write!(body, "<td>{}</td>", fmt(e.summary.metrics.get(m).copied()));
        }
        body.push_str("</tr>");
    }
    body.push_str("</table>");
    let labels = columns(entries);
    let runs: Vec<&str> = labels.iter().map(String::as_str).collect();
    {
        let overall: Vec<(String, Vec<Option<f64>>)> = vec![(
            "headline metric".to_owned(),
            entries
                .iter()
                .map(|e| headline(&e.summary).and_then(|m| e.summary.metrics.get(m).copied()))
                .collect(),
        )];
        body.push_str(&chart(&overall, &runs));
        for key in keys(entries) {
            let _ = write!(body, "<h2>By {}</h2>", escape(&key));
            let rows = table(entries, &key);
            let groups: Vec<(String, Vec<Option<f64>>)> = rows
                .iter()
                .map(|(v, cells)| (v.clone(), cells.iter().map(|c| c.map(|(m, _)| m)).collect()))
                .collect();
            body.push_str(&chart(&groups, &runs));
            let _ = write!(body, "<table><tr><th>{}</th>", escape(&key));
            for r in &runs {
                let _ = write!(body, "<th>{}</th>", escape(r));
            }
            body.push_str("</tr>");
            for (value, cells) in &rows {
                let _ = write!(body, "<tr><td>{}</td>", escape(value));
                for c in cells {
                    let _ = write!(
                        body,
                        "<td>{}</td>",
                        c.map_or_else(
                            || "–".into(),
                            |(m, n)| format!("{m:.4} <small>n={n}</small>")
                        )
                    );
                }
                body.push_str("</tr>");
            }
            body.push_str("</table>");
        }
    }
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>latam eval report</title><style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}svg{{display:block;margin:1em 0}}</style></head><body>{body}</body></html>\n"
    )
}
