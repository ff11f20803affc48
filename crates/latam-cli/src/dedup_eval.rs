//! `latam dedup eval`: near-duplicate detection measured against exact Jaccard similarity on
//! real documents and near-copies of them (the measurement is `latam_dedup::minhash::evaluate`).

use std::path::PathBuf;

use clap::Args;
use latam_dedup::DedupMinhashConfig;
use latam_dedup::minhash::{EvalReport, evaluate};

use crate::Failure;
use crate::corpus::read_documents;

#[derive(Args)]
pub(crate) struct EvalArgs {
    /// Real documents (JSONL, Parquet, text), as for `latam corpus run`.
    #[arg(short, long = "input", value_name = "PATH")]
    inputs: Vec<String>,
    /// Originals taken (documents of 100 words or more, in input order).
    #[arg(long, default_value_t = 300)]
    docs: usize,
    /// Seed of the edits.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Estimated similarity a candidate pair needs (the step's `threshold`).
    #[arg(long, default_value_t = 0.8)]
    threshold: f64,
    /// Join candidate pairs without checking their estimated similarity (as datatrove does).
    #[arg(long)]
    no_verify: bool,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub(crate) fn run(args: &EvalArgs) -> Result<u8, Failure> {
    let originals: Vec<String> = read_documents(
        &args.inputs,
        |doc| doc.text.split_whitespace().count() >= 100,
        args.docs,
    )?
    .into_iter()
    .map(|doc| doc.text)
    .collect();
    if originals.is_empty() {
        return Err(Failure::usage(anyhow::anyhow!(
            "no document of 100 words or more in the inputs"
        )));
    }
    let settings = DedupMinhashConfig {
        verify: !args.no_verify,
        threshold: args.threshold,
        ..Default::default()
    };
    settings.validate().map_err(Failure::usage)?;
    let work = tempfile::tempdir()?;
    let report = evaluate(&originals, &settings, args.seed, work.path())?;
    print_report(&report);
    if let Some(path) = &args.json {
        latam_io::write_atomic(path, &serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(0)
}

fn print_report(r: &EvalReport) {
    println!(
        "{} originals + {} copies = {} documents; {} clusters, {} removed",
        r.originals,
        r.documents - r.originals,
        r.documents,
        r.clusters,
        r.removed
    );
    println!(
        "settings: {}-grams, {} bands x {} rows, verify {} at {}\n",
        r.settings.n_grams,
        r.settings.bands,
        r.settings.rows,
        r.settings.verify,
        r.settings.threshold
    );
    println!(
        "| exact Jaccard ≥ | true pairs | recall | precision (removed vs kept) | precision (all pairs in a cluster) |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for t in &r.thresholds {
        println!(
            "| {:.1} | {} | {:.1}% | {:.1}% | {:.1}% |",
            t.jaccard_at_least,
            t.true_pairs,
            t.recall * 100.0,
            t.removed_precision * 100.0,
            t.pair_precision * 100.0
        );
    }
    println!("\n| edit | rate | mean exact Jaccard with the original | found |");
    println!("|---|---:|---:|---:|");
    for e in &r.by_edit {
        println!(
            "| {:?} | {:.2} | {:.3} | {:.1}% |",
            e.edit,
            e.rate,
            e.mean_jaccard,
            e.found * 100.0
        );
    }
}
