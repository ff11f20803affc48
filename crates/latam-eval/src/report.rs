//! `latam eval report`: several runs side by side — overall, then per country, category,
//! difficulty, topic and every other breakdown key — as Markdown and as one self-contained HTML
//! page (no scripts) that fits a laptop and a phone: the overall table a metric per row, bar
//! charts on one fixed axis per metric with n beside every bar, and breakdowns made mostly of
//! groups under 5 examples folded.

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

/// A run's value and number of examples in a group (`None`: the run has no such group).
type Cell = Option<(f64, usize)>;

/// A group's label and each run's cell.
type Row = (String, Vec<Cell>);

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

/// The breakdown keys shown (country, category, difficulty, topic first), and those left out for
/// having more than [`MAX_VALUES`] values in some run, with that number.
fn keys(entries: &[Entry]) -> (Vec<String>, Vec<(String, usize)>) {
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
    let values = |key: &str| {
        entries
            .iter()
            .filter_map(|e| e.summary.breakdowns.get(key).map(BTreeMap::len))
            .max()
            .unwrap_or(0)
    };
    let (shown, left_out): (Vec<String>, Vec<String>) =
        keys.into_iter().partition(|k| values(k) <= MAX_VALUES);
    let left_out = left_out
        .into_iter()
        .map(|k| {
            let n = values(&k);
            (k, n)
        })
        .collect();
    (shown, left_out)
}

/// `entity: 412, qid: 2000`.
fn left_out_list(left_out: &[(String, usize)]) -> String {
    left_out
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fmt(value: Option<f64>) -> String {
    value
        .filter(|v| v.is_finite())
        .map_or_else(|| "–".into(), |v| format!("{v:.4}"))
}

/// The values of a breakdown key in all runs, with the headline metric of each run and n.
fn table(entries: &[Entry], key: &str) -> BTreeMap<String, Vec<Cell>> {
    let mut rows: BTreeMap<String, Vec<Cell>> = BTreeMap::new();
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

/// The overall table, a row per metric (after `examples`) and a column per run: it stays narrow
/// however many metrics the runs have.
fn overall(entries: &[Entry]) -> Vec<(String, Vec<String>)> {
    let mut rows = vec![(
        "examples".to_owned(),
        entries
            .iter()
            .map(|e| e.summary.num_examples.to_string())
            .collect(),
    )];
    for m in metric_names(entries) {
        let cells = entries
            .iter()
            .map(|e| fmt(e.summary.metrics.get(&m).copied()))
            .collect();
        rows.push((m, cells));
    }
    rows
}

/// The report in Markdown.
pub fn markdown(entries: &[Entry]) -> String {
    let mut out = String::from("# Evaluation report\n\n## Overall\n\n");
    let runs: Vec<&str> = entries.iter().map(|e| e.label.as_str()).collect();
    let _ = writeln!(out, "| metric | {} |", runs.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(runs.len()));
    for (name, cells) in overall(entries) {
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    }
    let labels = columns(entries);
    let (keys, left_out) = keys(entries);
    for key in keys {
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
    if !left_out.is_empty() {
        let _ = writeln!(
            out,
            "\nNot shown: breakdowns with more than {MAX_VALUES} values ({}).",
            left_out_list(&left_out)
        );
    }
    out
}

const COLORS: [&str; 6] = [
    "#1b6ca8", "#e07a1f", "#2f9e44", "#c2255c", "#7048e8", "#868e96",
];

/// Groups with fewer examples than this are small; a breakdown mostly made of them is folded.
const SMALL: usize = 5;

/// The right end of a metric's axis: 1 when every value of it in the report lies in 0..=1 (scores,
/// accuracies), else a round number at or above its largest value (bits per byte, perplexity).
/// One axis per metric for the whole report, so that bars of different charts compare.
fn axis(entries: &[Entry], metric: &str) -> f64 {
    let max = entries
        .iter()
        .flat_map(|e| {
            let groups = e.summary.breakdowns.values().flat_map(BTreeMap::values);
            std::iter::once(&e.summary.metrics).chain(groups.map(|g| &g.metrics))
        })
        .filter_map(|m| m.get(metric).copied())
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    if max <= 1.0 {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|v| *v >= max)
        .unwrap_or(max)
}

/// `text` escaped, with break opportunities after `/`, `_` and `.` (run and metric names are
/// long words), and none before the ` · ` of `model · task`.
fn breakable(text: &str) -> String {
    let mut out = String::new();
    for c in text.replace(" · ", "\u{a0}· ").chars() {
        out.push_str(&escape(c.encode_utf8(&mut [0; 4])));
        if matches!(c, '/' | '_' | '.') {
            out.push_str("<wbr>");
        }
    }
    out
}

/// A value on a chart: three decimals, fewer digits for large numbers.
fn short(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// A bar chart of `metric` on its axis `0..=max`: for each group, one bar per run with its value
/// and n. `runs` are (index in the report, label), the index choosing the colour.
fn chart(metric: &str, max: f64, groups: &[Row], runs: &[(usize, &str)]) -> String {
    let mut out = format!(
        "<figure class=\"chart\"><figcaption><b>{}</b> (axis 0–{})",
        breakable(metric),
        short_axis(max)
    );
    for (i, label) in runs {
        let _ = write!(
            out,
            " <span class=\"key\"><i class=\"c{}\"></i>{}</span>",
            i % COLORS.len(),
            breakable(label)
        );
    }
    out.push_str("</figcaption>");
    let _ = write!(
        out,
        "<div class=\"g axis\"><div></div><div class=\"b\"><div class=\"ticks\"><span style=\"left:0%\">0</span><span style=\"left:50%\">{}</span><span style=\"left:100%\">{}</span></div><span></span></div></div>",
        short_axis(max / 2.0),
        short_axis(max)
    );
    for (label, cells) in groups {
        let _ = write!(
            out,
            "<div class=\"g\"><div class=\"l\">{}</div><div>",
            breakable(label)
        );
        for (i, _) in runs {
            let (width, value) = match cells[*i] {
                Some((v, n)) if v.is_finite() => (
                    (v / max * 100.0).clamp(0.0, 100.0),
                    format!("{} <small>n={n}</small>", short(v)),
                ),
                Some((_, n)) => (0.0, format!("– <small>n={n}</small>")),
                None => (0.0, "–".to_owned()),
            };
            let _ = write!(
                out,
                "<div class=\"b\"><div class=\"t\"><div class=\"c{}\" style=\"width:{width:.1}%\"></div></div><span class=\"v\">{value}</span></div>",
                i % COLORS.len()
            );
        }
        out.push_str("</div></div>");
    }
    out.push_str("</figure>");
    out
}

/// An axis bound: as short as it can be written.
fn short_axis(v: f64) -> String {
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Charts of a breakdown (or of the overall scores): one per headline metric, each with the
/// runs that lead with it and have values here, and the groups where one of them has a value.
fn charts(entries: &[Entry], groups: &[Row]) -> String {
    let mut metrics: Vec<&str> = Vec::new();
    for e in entries {
        if let Some(m) = headline(&e.summary).filter(|m| !metrics.contains(m)) {
            metrics.push(m);
        }
    }
    let mut out = String::new();
    for metric in metrics {
        let runs: Vec<(usize, &str)> = entries
            .iter()
            .enumerate()
            .filter(|(i, e)| {
                headline(&e.summary) == Some(metric) && groups.iter().any(|g| g.1[*i].is_some())
            })
            .map(|(i, e)| (i, e.label.as_str()))
            .collect();
        let shown: Vec<Row> = groups
            .iter()
            .filter(|g| runs.iter().any(|(i, _)| g.1[*i].is_some()))
            .cloned()
            .collect();
        if !runs.is_empty() {
            out.push_str(&chart(metric, axis(entries, metric), &shown, &runs));
        }
    }
    out
}

/// Whether most cells (a run's group) of a breakdown hold fewer than [`SMALL`] examples.
fn mostly_small(rows: &BTreeMap<String, Vec<Cell>>) -> bool {
    let counts: Vec<usize> = rows.values().flatten().flatten().map(|c| c.1).collect();
    counts.iter().filter(|n| **n < SMALL).count() * 2 > counts.len()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1em auto;padding:0 1em;max-width:1100px;line-height:1.4}\
.scroll{overflow-x:auto;max-width:100%}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;vertical-align:top}\
th{max-width:14em}td:first-child,th:first-child{text-align:left}\
.chart{margin:1em 0 1.5em}figcaption{margin-bottom:.4em}\
.key{white-space:nowrap;margin-left:.8em}.key i{display:inline-block;width:.8em;height:.8em;margin-right:.3em}\
.g{display:grid;grid-template-columns:minmax(0,14em) minmax(0,1fr);gap:0 .8em;align-items:center;margin:.25em 0}\
.l{font-size:13px;overflow-wrap:break-word}\
.b{display:grid;grid-template-columns:minmax(0,1fr) 8em;gap:.4em;align-items:center;font-size:12px}\
.t{height:12px;background:#f1f3f5 linear-gradient(to right,#ced4da 1px,transparent 1px) 0 0/25% 100%;border-right:1px solid #ced4da}\
.t div{height:100%}.v{white-space:nowrap}\
.ticks{position:relative;height:1.2em;color:#555}.ticks span{position:absolute;transform:translateX(-50%)}\
details summary{cursor:pointer}details summary h2{display:inline}.note{color:#555}\
@media (max-width:560px){.g{grid-template-columns:minmax(0,1fr)}.axis>div:first-child{display:none}.l{font-weight:600}table{font-size:14px}td,th{padding:2px 4px}}";

/// The report as one self-contained HTML page (no scripts).
pub fn html(entries: &[Entry]) -> String {
    let mut body = String::from("<h1>Evaluation report</h1><h2>Overall</h2>");
    body.push_str("<div class=\"scroll\"><table><tr><th>metric</th>");
    for e in entries {
        let _ = write!(body, "<th>{}</th>", breakable(&e.label));
    }
    body.push_str("</tr>");
    for (name, cells) in overall(entries) {
        let _ = write!(body, "<tr><td>{}</td>", breakable(&name));
        for cell in cells {
            let _ = write!(body, "<td>{cell}</td>");
        }
        body.push_str("</tr>");
    }
    body.push_str("</table></div>");
    let all: Vec<Cell> = entries
        .iter()
        .map(|e| {
            let metric = headline(&e.summary)?;
            Some((*e.summary.metrics.get(metric)?, e.summary.num_examples))
        })
        .collect();
    body.push_str(&charts(entries, &[("all examples".to_owned(), all)]));
    let (keys, left_out) = keys(entries);
    for key in keys {
        let rows = table(entries, &key);
        let groups: Vec<Row> = rows.clone().into_iter().collect();
        let title = format!("<h2>By {}</h2>", escape(&key));
        if mostly_small(&rows) {
            let _ = write!(
                body,
                "<details><summary>{title} <span class=\"note\">{} values, most with fewer than {SMALL} examples: folded</span></summary>{}</details>",
                rows.len(),
                charts(entries, &groups)
            );
        } else {
            body.push_str(&title);
            body.push_str(&charts(entries, &groups));
        }
    }
    if !left_out.is_empty() {
        let _ = write!(
            body,
            "<p class=\"note\">Not shown: breakdowns with more than {MAX_VALUES} values ({}).</p>",
            escape(&left_out_list(&left_out))
        );
    }
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>latam eval report</title><style>{STYLE}{}</style></head><body>{body}</body></html>\n",
        COLORS
            .iter()
            .enumerate()
            .fold(String::new(), |mut css, (i, c)| {
                let _ = write!(css, ".c{i}{{background:{c}}}");
                css
            })
    )
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;
    use crate::client::Usage;
    use crate::metrics::Group;

    fn group(count: usize, value: f64) -> Group {
        Group {
            count,
            metrics: BTreeMap::from([("accuracy".to_owned(), value)]),
        }
    }

    /// A run with 50 examples, a breakdown by country (two large groups, one of a single
    /// example) and one by entity (all single examples).
    fn entry() -> Entry {
        let country = BTreeMap::from([
            ("Chile".to_owned(), group(30, 0.2)),
            ("Perú".to_owned(), group(19, 0.3)),
            (
                "San Vicente y las Granadinas del Caribe Oriental".to_owned(),
                group(1, 0.5),
            ),
        ]);
        let entity = (0..6)
            .map(|i| (format!("entidad {i}"), group(1, 0.5)))
            .collect();
        let metrics = [
            "accuracy",
            "accuracy_strict",
            "accuracy_flexible",
            "token_f1",
        ]
        .into_iter()
        .map(|m| (m.to_owned(), 0.25))
        .collect();
        Entry {
            label: "meta-llama/Llama-3.1-8B-Instruct · mc".into(),
            summary: Summary {
                task: "mc".into(),
                model: "meta-llama/Llama-3.1-8B-Instruct".into(),
                num_examples: 50,
                metrics,
                usage: Usage::new(),
                judge_usage: Usage::new(),
                breakdowns: BTreeMap::from([
                    ("country".to_owned(), country),
                    ("entity".to_owned(), entity),
                ]),
                errors: 0,
                skipped: 0,
            },
        }
    }

    #[test]
    fn bars_share_a_fixed_axis_and_show_n() {
        let html = html(&[entry()]);
        // 0.5 of one example is half a bar, not a full one (the largest value of the chart).
        assert!(
            html.contains(
                "style=\"width:50.0%\"></div></div><span class=\"v\">0.500 <small>n=1</small>"
            ),
            "{html}"
        );
        assert!(html.contains(
            "style=\"width:20.0%\"></div></div><span class=\"v\">0.200 <small>n=30</small>"
        ));
        assert!(
            html.contains("0.250 <small>n=50</small>"),
            "the overall bar has its n"
        );
        assert!(html.contains("(axis 0–1)"));
    }

    #[test]
    fn labels_are_whole_and_small_breakdowns_folded() {
        let html = html(&[entry()]);
        assert!(html.contains("San Vicente y las Granadinas del Caribe Oriental"));
        assert!(html.contains("meta-llama/<wbr>Llama-3.<wbr>1-8B-Instruct\u{a0}· mc"));
        // Entities are all single examples: folded; countries mostly large: open.
        assert!(
            html.contains("<details><summary><h2>By entity</h2>"),
            "{html}"
        );
        assert!(!html.contains("<details><summary><h2>By country</h2>"));
        // The overall table: a metric per row, in a box of its own.
        assert!(html.contains("<div class=\"scroll\"><table><tr><th>metric</th>"));
        assert!(html.contains("<tr><td>accuracy_<wbr>strict</td><td>0.2500</td></tr>"));
    }

    #[test]
    fn axes_end_at_one_or_a_round_number() {
        let mut e = entry();
        assert_eq!(axis(std::slice::from_ref(&e), "accuracy"), 1.0);
        e.summary.metrics.insert("bits_per_byte".into(), 1.37);
        assert_eq!(axis(std::slice::from_ref(&e), "bits_per_byte"), 2.0);
        e.summary.metrics.insert("perplexity".into(), 312.0);
        assert_eq!(axis(std::slice::from_ref(&e), "perplexity"), 500.0);
    }
}
