//! `report.html`: the data card of a run, one self-contained page (inline CSS and SVG charts,
//! no JavaScript, no network), readable offline.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use crate::stats::{GroupCounts, RunStats};

const COLORS: [&str; 2] = ["#9db4d6", "#1f5fa8"];

use latam_core::html_escape as esc;

use crate::human_size as size;

/// Thousands separated with thin spaces: 1 234 567.
fn num(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{2009}');
        }
        out.push(c);
    }
    out
}

/// A horizontal bar chart: one row per label, one bar per series (drawn over each other,
/// widest first), values printed at the right.
fn bar_chart(rows: &[(String, Vec<u64>)], series: &[&str], unit: fn(u64) -> String) -> String {
    if rows.is_empty() {
        return "<p class=\"muted\">nothing to show</p>".into();
    }
    // The last series is the result (kept, out): dark; an earlier one is the whole (read, in).
    let color = |s: usize| COLORS[usize::from(s + 1 == series.len())];
    let max = rows
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (label_w, bar_w, value_w, row_h) = (190.0, 460.0, 230.0, 24.0);
    let height = row_h * rows.len() as f64 + 28.0;
    let width = label_w + bar_w + value_w;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (i, (label, values)) in rows.iter().enumerate() {
        let y = i as f64 * row_h;
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"label\">{}</text>",
            label_w - 8.0,
            y + 16.0,
            esc(label)
        );
        for (s, value) in values.iter().enumerate() {
            let w = (*value as f64 / max * bar_w).max(if *value > 0 { 1.0 } else { 0.0 });
            let inset = if s == 0 { 0.0 } else { 4.0 };
            let _ = write!(
                svg,
                "<rect x=\"{label_w}\" y=\"{}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"><title>{}: {}</title></rect>",
                y + 3.0 + inset,
                row_h - 6.0 - 2.0 * inset,
                color(s),
                esc(series[s]),
                unit(*value)
            );
        }
        let text: Vec<String> = values.iter().map(|v| unit(*v)).collect();
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" class=\"value\">{}</text>",
            label_w + bar_w + 8.0,
            y + 16.0,
            esc(&text.join(" → "))
        );
    }
    let legend_y = row_h * rows.len() as f64 + 18.0;
    for (s, name) in series.iter().enumerate() {
        let x = label_w + s as f64 * 120.0;
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" y=\"{legend_y}\" class=\"value\">{}</text>",
            legend_y - 10.0,
            color(s),
            x + 16.0,
            esc(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn group_section(title: &str, groups: &BTreeMap<String, GroupCounts>) -> String {
    let mut rows: Vec<_> = groups.iter().collect();
    rows.sort_by(|a, b| b.1.read.cmp(&a.1.read).then(a.0.cmp(b.0)));
    let docs: Vec<(String, Vec<u64>)> = rows
        .iter()
        .map(|(k, c)| ((*k).clone(), vec![c.read, c.kept]))
        .collect();
    let bytes: Vec<(String, Vec<u64>)> = rows
        .iter()
        .map(|(k, c)| ((*k).clone(), vec![c.read_bytes, c.kept_bytes]))
        .collect();
    format!(
        "<section><h2>{}</h2><h3>Documents</h3>{}<h3>Text</h3>{}</section>",
        esc(title),
        bar_chart(&docs, &["read", "kept"], num),
        bar_chart(&bytes, &["read", "kept"], size)
    )
}

/// The steps: a funnel chart and a table of drop reasons.
fn steps_section(stats: &RunStats) -> String {
    let mut html = String::new();
    let funnel: Vec<(String, Vec<u64>)> = stats
        .steps
        .iter()
        .map(|s| (s.name.clone(), vec![s.input, s.out]))
        .collect();
    let _ = write!(
        html,
        "<section><h2>Steps</h2><p>Documents in and out of each step, in order.</p>{}",
        bar_chart(&funnel, &["in", "out"], num)
    );
    // No timings here: the data card describes the data, and is the same for the same run.
    html.push_str("<table><tr><th>step</th><th>in</th><th>out</th><th>dropped</th><th>reason</th><th>documents</th></tr>");
    for s in &stats.steps {
        let reasons: Vec<_> = s.dropped_by_reason.iter().collect();
        let span = reasons.len().max(1);
        let _ = write!(
            html,
            "<tr><td rowspan=\"{span}\">{}</td><td class=\"n\" rowspan=\"{span}\">{}</td><td class=\"n\" rowspan=\"{span}\">{}</td><td class=\"n\" rowspan=\"{span}\">{}</td>",
            esc(&s.name),
            num(s.input),
            num(s.out),
            num(s.dropped)
        );
        if reasons.is_empty() {
            html.push_str("<td class=\"muted\">—</td><td></td></tr>");
        }
        for (i, (reason, n)) in reasons.iter().enumerate() {
            let open = if i == 0 { "" } else { "<tr>" };
            let _ = write!(
                html,
                "{open}<td>{}</td><td class=\"n\">{}</td></tr>",
                esc(reason),
                num(**n)
            );
        }
    }
    html.push_str("</table></section>");

    html
}

/// What the anonymizer redacted, by type: counts only, never a value.
fn personal_data_section(stats: &RunStats) -> String {
    let steps: Vec<_> = stats
        .steps
        .iter()
        .filter(|s| s.kind == "anonymize")
        .collect();
    if steps.is_empty() {
        return "<section><h2>Personal data</h2><p class=\"muted\">This pipeline has no \
                <code>anonymize</code> step: personal data was not looked for.</p></section>"
            .into();
    }
    let mut html = String::from(
        "<section><h2>Personal data</h2><p>Redacted by the anonymizer, by type (counts only). \
         Documents rejected before the anonymizer reached them are redacted too before they \
         are written to <code>rejected/</code>.</p>",
    );
    for step in steps {
        let mut kinds: BTreeMap<&str, [u64; 2]> = BTreeMap::new();
        for (kind, n) in step.findings.iter() {
            kinds.entry(kind).or_default()[0] += n;
        }
        for (kind, n) in step.findings_in_rejected.iter() {
            kinds.entry(kind).or_default()[1] += n;
        }
        let mut rows: Vec<_> = kinds.into_iter().collect();
        rows.sort_by(|a, b| (b.1[0] + b.1[1]).cmp(&(a.1[0] + a.1[1])).then(a.0.cmp(b.0)));
        let _ = write!(
            html,
            "<h3>{}: {} in kept documents, {} in rejected ones</h3>",
            esc(&step.name),
            num(step.findings.total()),
            num(step.findings_in_rejected.total())
        );
        if rows.is_empty() {
            html.push_str("<p class=\"muted\">nothing found</p>");
            continue;
        }
        html.push_str(
            "<table><tr><th>type</th><th>in kept documents</th><th>in rejected documents</th></tr>",
        );
        for (kind, [kept, rejected]) in rows {
            let _ = write!(
                html,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(kind),
                num(kept),
                num(rejected)
            );
        }
        html.push_str("</table>");
    }
    html.push_str("</section>");
    html
}

/// Inputs with their hashes, and the output parts.
fn files_section(manifest: &Value) -> String {
    let mut html = String::new();
    html.push_str(
        "<section><h2>Inputs</h2><table><tr><th>file</th><th>size</th><th>sha256</th></tr>",
    );
    for input in manifest["inputs"].as_array().into_iter().flatten() {
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"n\">{}</td><td><code>{}</code></td></tr>",
            esc(input["name"].as_str().unwrap_or("")),
            size(input["size"].as_u64().unwrap_or(0)),
            esc(input["sha256"].as_str().unwrap_or("—"))
        );
    }
    html.push_str(
        "</table><h2>Outputs</h2><table><tr><th>part</th><th>documents</th><th>size</th></tr>",
    );
    for output in manifest["outputs"].as_array().into_iter().flatten() {
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(output["path"].as_str().unwrap_or("")),
            num(output["documents"].as_u64().unwrap_or(0)),
            size(output["size"].as_u64().unwrap_or(0))
        );
    }
    html.push_str("</table></section>");
    html
}

/// Renders the data card.
pub(crate) fn render(stats: &RunStats, manifest: &Value, errors: usize) -> String {
    let d = &stats.documents;
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>latam corpus data card</title><style>\
         body{font:15px/1.45 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#1b1b1b}\
         h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd}table{border-collapse:collapse;margin:.5em 0}\
         td,th{padding:.25em .7em;border-bottom:1px solid #eee;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\
         .cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:8em}\
         .card b{display:block;font-size:1.4em}.muted{color:#777}svg text{font-size:12px;fill:#333}\
         pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}</style></head><body>",
    );
    let _ = write!(
        html,
        "<h1>Corpus data card</h1><p class=\"muted\">latam {} · {} shard(s) · pipeline sha256 {}</p>",
        esc(manifest["version"].as_str().unwrap_or("")),
        manifest["shards"],
        esc(&manifest["config_sha256"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(12)
            .collect::<String>())
    );
    let _ = write!(
        html,
        "<div class=\"cards\"><div class=\"card\">read<b>{}</b>{}</div><div class=\"card\">kept<b>{}</b>{}</div>\
         <div class=\"card\">rejected<b>{}</b>{:.1}%</div><div class=\"card\">unreadable records<b>{}</b>see errors.jsonl</div></div>",
        num(d.read),
        size(stats.bytes.read),
        num(d.kept),
        size(stats.bytes.kept),
        num(d.rejected),
        if d.read > 0 {
            d.rejected as f64 * 100.0 / d.read as f64
        } else {
            0.0
        },
        num(errors as u64),
    );

    html.push_str(&steps_section(stats));

    html.push_str(&personal_data_section(stats));
    html.push_str(&group_section(
        "By language (as last labelled)",
        &stats.by_language,
    ));
    html.push_str(&group_section("By country", &stats.by_country));
    html.push_str(&group_section("By source", &stats.by_source));

    html.push_str(&files_section(manifest));
    let config = serde_json::to_string_pretty(&manifest["config"]).unwrap_or_default();
    let _ = writeln!(
        html,
        "<section><h2>Pipeline</h2><details><summary>configuration</summary><pre>{}</pre></details></section></body></html>",
        esc(&config)
    );
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() {
        assert_eq!(
            esc("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(num(1_234_567), "1\u{2009}234\u{2009}567");
        assert_eq!(num(999), "999");
        assert_eq!(size(812), "812 B");
        assert_eq!(size(4_216), "4.2 kB");
        assert_eq!(size(4_600_000), "4.6 MB");
        assert_eq!(size(1_234_000_000), "1.23 GB");
    }

    #[test]
    fn charts_are_inline_svg() {
        let svg = bar_chart(&[("spa".into(), vec![10, 7])], &["read", "kept"], num);
        assert!(svg.starts_with("<svg") && svg.contains("<title>kept: 7</title>"));
    }
}
